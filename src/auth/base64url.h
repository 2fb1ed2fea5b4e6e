// base64url without padding (RFC 4648 §5), as JWT uses it. Internal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace devcycle::internal {

std::string base64url_encode(std::string_view bytes);

// Decodes `text` into `out`, which must hold decoded_size(text.size()) bytes.
// Returns the number of bytes written, or -1 when `text` is not canonical
// base64url: a character outside the alphabet, padding, an impossible length,
// or non-zero unused bits in the last character (so that one byte string has
// exactly one encoding and a tampered token cannot pass as another).
std::ptrdiff_t base64url_decode(std::string_view text, unsigned char* out) noexcept;

constexpr std::size_t base64url_decoded_size(std::size_t chars) { return chars / 4 * 3 + 2; }

}  // namespace devcycle::internal
