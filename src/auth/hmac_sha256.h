// HMAC-SHA256 with the key's inner and outer pads absorbed once, so that
// each MAC costs only the message's blocks plus one. OpenSSL's SHA-256 uses
// the CPU's SHA extensions where present, which libsodium's portable code
// does not. Internal.
#pragma once

#include <array>
#include <memory>
#include <string_view>

namespace devcycle::internal {

class HmacSha256 {
 public:
  static constexpr std::size_t kSize = 32;
  explicit HmacSha256(std::string_view key);
  ~HmacSha256();
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  std::array<unsigned char, kSize> mac(std::string_view message) const noexcept;
  // Constant-time comparison of mac(message) with `expected` (kSize bytes).
  bool verify(std::string_view message, const unsigned char* expected) const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace devcycle::internal
