// Parsing untrusted JSON text within the bounds of devcycle/common/json_limits.h.
// Internal: every JSON text the library takes goes through parse_json().
// The depth is checked before the parser builds anything, by a linear scan
// that costs far less than the parse.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "devcycle/common/json_limits.h"

namespace devcycle::internal {

// Parses JSON text nested at most kMaxJsonDepth deep whose numbers are all
// finite doubles or integers. Throws Error{kInvalidArgument}
// "<field>: <reason>" for invalid JSON (invalid UTF-8 included), deeper
// nesting ("nested deeper than 64 levels, the limit") or a number out of
// range (1e400).
nlohmann::json parse_json(std::string_view text, std::string_view field);

}  // namespace devcycle::internal
