// The low-level SHA256_* calls are deprecated in OpenSSL 3 in favour of EVP,
// whose per-call context set-up costs more than hashing a JWT does.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "auth/hmac_sha256.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstring>

namespace devcycle::internal {

struct HmacSha256::State {
  SHA256_CTX inner;  // after absorbing key ^ ipad
  SHA256_CTX outer;  // after absorbing key ^ opad
};

HmacSha256::HmacSha256(std::string_view key) : state_(std::make_unique<State>()) {
  unsigned char block[SHA256_CBLOCK] = {};
  if (key.size() > SHA256_CBLOCK) {
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[SHA256_CBLOCK];
  for (std::size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&state_->inner);
  SHA256_Update(&state_->inner, pad, sizeof pad);
  for (std::size_t i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&state_->outer);
  SHA256_Update(&state_->outer, pad, sizeof pad);
  OPENSSL_cleanse(block, sizeof block);
  OPENSSL_cleanse(pad, sizeof pad);
}

HmacSha256::~HmacSha256() { OPENSSL_cleanse(state_.get(), sizeof(State)); }

std::array<unsigned char, HmacSha256::kSize> HmacSha256::mac(
    std::string_view message) const noexcept {
  std::array<unsigned char, kSize> out{};
  SHA256_CTX ctx = state_->inner;
  SHA256_Update(&ctx, message.data(), message.size());
  SHA256_Final(out.data(), &ctx);
  ctx = state_->outer;
  SHA256_Update(&ctx, out.data(), out.size());
  SHA256_Final(out.data(), &ctx);
  return out;
}

bool HmacSha256::verify(std::string_view message, const unsigned char* expected) const noexcept {
  const auto actual = mac(message);
  return CRYPTO_memcmp(actual.data(), expected, kSize) == 0;
}

}  // namespace devcycle::internal
