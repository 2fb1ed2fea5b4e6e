// JSON Schema validation over parsed JSON (bounded parsing: bounded_json.h). Internal.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/bounded_json.h"
#include "devcycle/common/json_schema.h"

namespace devcycle::internal {

std::vector<SchemaViolation> validate(const JsonSchema& schema, const nlohmann::json& doc);

// "$.a.b", "$[\"odd key\"]", "$[3]"
std::string json_path_child(const std::string& parent, const std::string& key);

}  // namespace devcycle::internal
