// Checks of caller-supplied fields that every module shares. Each throws
// Error{kInvalidArgument} "<field>: <reason>" and does nothing else. Internal.
#pragma once

#include <cstddef>
#include <string_view>

namespace devcycle::internal {

// Well-formed UTF-8 of at most `max_bytes`, with no control characters other
// than tab and newline; non-empty when `required`.
void check_text(std::string_view field, std::string_view value, std::size_t max_bytes,
                bool required = false);

// A name: 1..max_length characters, the first from `first`, the rest from
// `rest`; each argument is a set of characters where "a-z", "A-Z" and "0-9"
// stand for their ranges. `rule` describes the set in the error message.
void check_name(std::string_view field, std::string_view value, std::size_t max_length,
                std::string_view first, std::string_view rest, std::string_view rule);

// Convenience rules.
void check_lower_name(std::string_view field, std::string_view value,
                      std::size_t max_length);  // [a-z0-9][a-z0-9._-]*

}  // namespace devcycle::internal
