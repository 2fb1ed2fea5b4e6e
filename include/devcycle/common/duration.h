// Durations as people write them in definitions and settings: "250ms",
// "30s", "5m", "2h", "1d", and sums such as "1h30m".
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace devcycle {

// Throws Error{kInvalidArgument} "<field>: \"<text>\" is not a duration ...".
// Zero ("0s") is allowed; negative values and overflows are not.
std::chrono::milliseconds parse_duration(std::string_view text,
                                         std::string_view field = "duration");

// The shortest exact form: 90000 ms -> "1m30s", 250 ms -> "250ms", 0 -> "0s".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace devcycle
