// The master key and what it seals: token-signing keys and secrets are
// stored as libsodium secretboxes under it. Internal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace devcycle::internal {

// `n` random bytes.
std::string random_bytes(std::size_t n);
// 32 raw bytes from 64 hex digits, standard base64, or 32 raw bytes. Throws
// Error{kInvalidArgument} naming `source` for anything else, or a known
// default or example key.
std::string master_key_bytes(std::string_view text, const std::string& source);
// nonce || secretbox(plain) under the 32-byte `master`.
std::string seal(const std::string& master, const std::string& plain);
// The plain text, or nothing when `sealed` was not sealed under `master`.
std::optional<std::string> open_box(const std::string& master, const std::string& sealed);

}  // namespace devcycle::internal
