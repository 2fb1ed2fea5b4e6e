#include "auth/sealed_box.h"

#include <sodium.h>

#include "devcycle/common/error.h"

namespace devcycle::internal {

namespace {

std::string hex_decode(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (hex.size() % 2 != 0 ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &len, &end) != 0 ||
      end != hex.data() + hex.size()) {
    return {};
  }
  out.resize(len);
  return out;
}

}  // namespace

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

// 32 raw bytes from 64 hex digits, standard base64, or 32 raw bytes.
std::string master_key_bytes(std::string_view text, const std::string& source) {
  std::string key;
  if (text.size() == 32) {
    key = std::string(text);
  } else if (text.size() == 64) {
    key = hex_decode(text);
  } else {
    std::string out(text.size(), '\0');
    std::size_t len = 0;
    const char* end = nullptr;
    if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                          text.size(), "\n", &len, &end, sodium_base64_VARIANT_ORIGINAL) == 0) {
      out.resize(len);
      key = out;
    }
  }
  if (key.size() != crypto_secretbox_KEYBYTES) {
    throw Error(ErrorCode::kInvalidArgument,
                source + ": the master key must be 32 bytes, written as 64 hex digits or base64");
  }
  if (key.find_first_not_of(key[0]) == std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument,
                source + ": the master key is a known default (all bytes equal); generate one");
  }
  if (text == "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" ||
      text == "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff") {
    throw Error(ErrorCode::kInvalidArgument,
                source + ": the master key is a known example value; generate one");
  }
  return key;
}

std::string seal(const std::string& master, const std::string& plain) {
  std::string nonce = random_bytes(crypto_secretbox_NONCEBYTES);
  std::string box(plain.size() + crypto_secretbox_MACBYTES, '\0');
  crypto_secretbox_easy(reinterpret_cast<unsigned char*>(box.data()),
                        reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                        reinterpret_cast<const unsigned char*>(nonce.data()),
                        reinterpret_cast<const unsigned char*>(master.data()));
  return nonce + box;
}

std::optional<std::string> open_box(const std::string& master, const std::string& sealed) {
  if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) return std::nullopt;
  std::string plain(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(
          reinterpret_cast<unsigned char*>(plain.data()),
          reinterpret_cast<const unsigned char*>(sealed.data()) + crypto_secretbox_NONCEBYTES,
          sealed.size() - crypto_secretbox_NONCEBYTES,
          reinterpret_cast<const unsigned char*>(sealed.data()),
          reinterpret_cast<const unsigned char*>(master.data())) != 0) {
    return std::nullopt;
  }
  return plain;
}

}  // namespace devcycle::internal
