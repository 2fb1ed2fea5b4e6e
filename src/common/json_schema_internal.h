// JSON Schema validation over parsed JSON, and bounded JSON parsing. Internal.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "devcycle/json_schema.h"

namespace devcycle::internal {

inline constexpr int kMaxJsonDepth = 64;

// Parses JSON text nested at most kMaxJsonDepth deep. Throws
// Error{kInvalidArgument} "<field>: <reason>" for invalid JSON (invalid UTF-8
// included) or deeper nesting.
nlohmann::json parse_json(std::string_view text, std::string_view field);

std::vector<SchemaViolation> validate(const JsonSchema& schema, const nlohmann::json& doc);

// "$.a.b", "$[\"odd key\"]", "$[3]"
std::string json_path_child(const std::string& parent, const std::string& key);

}  // namespace devcycle::internal
