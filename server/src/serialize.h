// The JSON shapes of the REST API (docs/api.md, server/openapi.json). Times
// are RFC 3339 UTC strings with microseconds; JSON documents stored as text
// (configurations, inputs, outputs) are embedded as JSON, not as strings.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "devcycle/auth/api_keys.h"
#include "devcycle/auth/auth.h"
#include "devcycle/auth/tokens.h"
#include "devcycle/messaging/agent_messages.h"
#include "devcycle/registry/registry.h"
#include "devcycle/workflow/engine.h"
#include "devcycle/workflow/workflow.h"
#include "json_out.h"

namespace devcycle::server {

using Json = nlohmann::json;

std::string format_time(Micros t);
// RFC 3339 ("2026-11-26T08:00:00Z", fractions and offsets allowed); nullopt
// when malformed.
std::optional<Micros> parse_time(std::string_view text);
// Stored JSON text as a value (null for empty text).
Json embedded(const std::string& json_text);

Json to_json(const User& u);
Json to_json(const TokenPair& p, Micros now);
Json to_json(const ApiKey& k);
Json to_json(const AgentType& t);
Json to_json(const Agent& a);
void write(JsonOut& out, const Agent& a);  // the same shape, without a tree
Json to_json(const AgentVersion& v);
Json to_json(const Deployment& d);
Json to_json(const CompatibilityReport& r);
Json to_json(const StoredWorkflow& w);
Json to_json(const WorkflowSummary& w);
Json to_json(const DefinitionReport& r);
Json to_json(const Run& r);
Json to_json(const TaskRun& t);
Json to_json(const RunDetail& d);
Json to_json(const TaskLogLine& l);
Json to_json(const Artifact& a);
Json to_json(const DirectMessage& m);

}  // namespace devcycle::server
