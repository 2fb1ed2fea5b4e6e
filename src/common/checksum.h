// Content checksums for change detection (not for security). Internal.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace devcycle::internal {

// FNV-1a 64 as 16 lowercase hex digits.
inline std::string fnv1a64_hex(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace devcycle::internal
