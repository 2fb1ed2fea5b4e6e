// UTF-8 checks. Internal.
#pragma once

#include <cstddef>
#include <string_view>

namespace devcycle::internal {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or values
// above U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

// Code points in well-formed UTF-8 `s`.
std::size_t utf8_length(std::string_view s) noexcept;

}  // namespace devcycle::internal
