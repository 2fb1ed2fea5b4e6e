#include "devcycle/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace devcycle {

Micros SystemClock::now() const {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::shared_ptr<Clock> SystemClock::instance() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

std::string format_rfc3339(Micros t) {
  // Floor division so that times before 1970 still format correctly.
  Micros secs = t / 1'000'000;
  Micros frac = t % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));
  return buf;
}

}  // namespace devcycle
