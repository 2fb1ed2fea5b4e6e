// Time as DevCycle sees it: int64 microseconds since the Unix epoch, UTC.
//
// Every component that reads time takes a Clock, so that tests drive leases,
// retries, TTLs and token expiry with a ManualClock instead of sleeping.
//
// Thread-safety: every Clock here may be used from any number of threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace devcycle {

using Micros = std::int64_t;  // microseconds since 1970-01-01T00:00:00Z

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Micros now() const = 0;
};

// The wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  Micros now() const override;
  // The process-wide instance; never destroyed.
  static std::shared_ptr<Clock> instance();
};

// A clock that moves only when told to. Starts at `start`.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Micros start = 1'700'000'000'000'000) : now_(start) {}
  Micros now() const override { return now_.load(); }
  void advance(std::chrono::microseconds by) { now_ += by.count(); }
  void set(Micros to) { now_ = to; }

 private:
  std::atomic<Micros> now_;
};

// RFC 3339 in UTC with microseconds: "2026-11-26T01:11:10.123456Z".
std::string format_rfc3339(Micros t);

// An RFC 3339 time ("2026-11-26T08:00:00Z"; fractions and offsets allowed)
// in microseconds since the epoch; nothing when malformed.
std::optional<Micros> parse_rfc3339(std::string_view text);

}  // namespace devcycle
