// YAML definitions for `workflows apply|validate -f file.yaml`: read into the
// JSON the API takes. Plain scalars keep YAML 1.2's core types (null, bools,
// integers, floats); quoted ones stay strings.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace devcycle::cli {

// Throws CliError(kDataErr) naming `what`, the line and the column of a
// syntax error.
nlohmann::json yaml_to_json(const std::string& text, const std::string& what);

}  // namespace devcycle::cli
