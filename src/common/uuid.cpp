#include "devcycle/common/uuid.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>

namespace devcycle {
namespace {

// RFC 9562 method 3: the 12 bits of rand_a hold a counter that restarts at a
// random value below 2^11 each millisecond, so ids are strictly increasing
// within a process; on overflow the timestamp borrows the next millisecond.
class UuidV7Generator {
 public:
  UuidV7Generator() : rng_(std::random_device{}()) {}

  std::array<std::uint8_t, 16> next() {
    std::uint64_t ms;
    std::uint16_t counter;
    std::uint64_t rand_b;
    {
      std::lock_guard lock(mu_);
      const auto now =
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
      if (now > last_ms_) {
        last_ms_ = now;
        counter_ = static_cast<std::uint16_t>(rng_() & 0x7ff);
      } else if (++counter_ > 0xfff) {
        ++last_ms_;
        counter_ = static_cast<std::uint16_t>(rng_() & 0x7ff);
      }
      ms = last_ms_;
      counter = counter_;
      rand_b = rng_();
    }
    std::array<std::uint8_t, 16> b{};
    for (int i = 0; i < 6; ++i) b[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    b[6] = static_cast<std::uint8_t>(0x70 | ((counter >> 8) & 0x0f));
    b[7] = static_cast<std::uint8_t>(counter & 0xff);
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<std::uint8_t>(rand_b >> (56 - 8 * i));
    b[8] = static_cast<std::uint8_t>(0x80 | (b[8] & 0x3f));
    return b;
  }

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;
  std::uint64_t last_ms_ = 0;
  std::uint16_t counter_ = 0;
};

}  // namespace

std::string new_uuid_v7() {
  static UuidV7Generator generator;
  const auto b = generator.next();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0f]);
  }
  return out;
}

bool is_uuid(std::string_view text) noexcept {
  if (text.size() != 36) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace devcycle
