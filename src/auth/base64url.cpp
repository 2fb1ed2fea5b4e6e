#include "auth/base64url.h"

#include <array>
#include <cstdint>

namespace devcycle::internal {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::uint8_t, 256> make_table() {
  std::array<std::uint8_t, 256> t{};
  for (auto& v : t) v = 0xff;
  for (std::uint8_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = i;
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const auto left = bytes.size() - i; left == 1) {
    out += kAlphabet[p[i] >> 2];
    out += kAlphabet[(p[i] & 3) << 4];
  } else if (left == 2) {
    const std::uint32_t v = (p[i] << 8) | p[i + 1];
    out += kAlphabet[(v >> 10) & 63];
    out += kAlphabet[(v >> 4) & 63];
    out += kAlphabet[(v & 15) << 2];
  }
  return out;
}

std::ptrdiff_t base64url_decode(std::string_view text, unsigned char* out) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  if (n % 4 == 1) return -1;
  std::size_t i = 0;
  unsigned char* o = out;
  for (; i + 4 <= n; i += 4) {
    const std::uint32_t a = kTable[s[i]], b = kTable[s[i + 1]], c = kTable[s[i + 2]],
                        d = kTable[s[i + 3]];
    if ((a | b | c | d) & 0x80) return -1;
    const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    *o++ = static_cast<unsigned char>(v >> 16);
    *o++ = static_cast<unsigned char>(v >> 8);
    *o++ = static_cast<unsigned char>(v);
  }
  if (const auto left = n - i; left == 2) {
    const std::uint32_t a = kTable[s[i]], b = kTable[s[i + 1]];
    if (((a | b) & 0x80) || (b & 15) != 0) return -1;
    *o++ = static_cast<unsigned char>((a << 2) | (b >> 4));
  } else if (left == 3) {
    const std::uint32_t a = kTable[s[i]], b = kTable[s[i + 1]], c = kTable[s[i + 2]];
    if (((a | b | c) & 0x80) || (c & 3) != 0) return -1;
    const std::uint32_t v = (a << 10) | (b << 4) | (c >> 2);
    *o++ = static_cast<unsigned char>(v >> 8);
    *o++ = static_cast<unsigned char>(v);
  }
  return o - out;
}

}  // namespace devcycle::internal
