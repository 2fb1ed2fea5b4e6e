#include "devcycle/common/duration.h"

#include <cstdint>
#include <limits>

#include "devcycle/common/error.h"

namespace devcycle {

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view field) {
  auto fail = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 std::string(field) + ": \"" + std::string(text.substr(0, 64)) +
                     "\" is not a duration (" + why + "; e.g. 250ms, 30s, 5m, 2h, 1d, 1h30m)");
  };
  if (text.empty()) throw fail("empty");
  if (text.size() > 64) throw fail("too long");
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (std::numeric_limits<std::int64_t>::max() - 9) / 10) throw fail("too large");
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    if (i == start) throw fail("expected a number at character " + std::to_string(i + 1));
    std::size_t j = i;
    while (j < text.size() && text[j] >= 'a' && text[j] <= 'z') ++j;
    const auto unit = text.substr(i, j - i);
    std::int64_t ms;
    if (unit == "ms")
      ms = 1;
    else if (unit == "s")
      ms = 1000;
    else if (unit == "m")
      ms = 60'000;
    else if (unit == "h")
      ms = 3'600'000;
    else if (unit == "d")
      ms = 86'400'000;
    else
      throw fail(unit.empty() ? "a number needs a unit"
                              : "unknown unit \"" + std::string(unit) + "\"");
    std::int64_t part;
    if (__builtin_mul_overflow(n, ms, &part) || __builtin_add_overflow(total, part, &total)) {
      throw fail("too large");
    }
    i = j;
  }
  return std::chrono::milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const std::pair<std::int64_t, const char*> units[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& [size, name] : units) {
    if (ms >= size) {
      out += std::to_string(ms / size) + name;
      ms %= size;
    }
  }
  return out;
}

}  // namespace devcycle
