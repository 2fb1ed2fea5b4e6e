// The cache: short-lived shared state — keys with a time to live, atomic
// counters, compare-and-set and token buckets for rate limits.
//
// memory:// keeps it in this process; redis://host:port/db shares it between
// processes. Both pass one conformance suite (tests/conformance/cache_test.cpp).
// Nothing in the cache is durable: the Database holds what must survive.
//
// Thread-safety: a Cache may be used from any number of threads; every
// operation is atomic with respect to the others on the same key.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "devcycle/common/clock.h"

namespace devcycle {

using Ttl = std::optional<std::chrono::milliseconds>;  // nullopt: never expires

struct CacheOptions {
  // Time source for TTLs and token buckets of the memory backend.
  std::shared_ptr<Clock> clock = SystemClock::instance();
};

struct TokenBucketResult {
  bool allowed = false;
  double remaining = 0;                      // tokens left after this take
  std::chrono::milliseconds retry_after{0};  // when `allowed` is false: until enough tokens
};

class Cache {
 public:
  virtual ~Cache() = default;

  // Opens memory:// or redis://host:port[/db]. Throws Error{kInvalidArgument}
  // naming the URL when it is malformed or its scheme unknown, kUnavailable
  // when the server cannot be reached.
  static std::unique_ptr<Cache> open(const std::string& url, const CacheOptions& = {});

  // Every key must be non-empty (Error{kInvalidArgument} naming "key").
  // Every TTL must be positive (Error{kInvalidArgument} naming "ttl").

  virtual std::optional<std::string> get(std::string_view key) = 0;
  virtual void set(std::string_view key, std::string_view value, Ttl ttl = std::nullopt) = 0;
  // Sets only when the key is absent; returns whether it did.
  virtual bool set_if_absent(std::string_view key, std::string_view value,
                             Ttl ttl = std::nullopt) = 0;
  // Removes the key; returns whether it existed.
  virtual bool erase(std::string_view key) = 0;
  // Adds `delta` to the integer at `key` (absent counts as 0) and returns the
  // new value. `ttl` applies only when this call creates the key. Throws
  // Error{kInvalidArgument} when the key holds something that is not an
  // integer or the result would overflow.
  virtual std::int64_t increment(std::string_view key, std::int64_t delta = 1,
                                 Ttl ttl = std::nullopt) = 0;
  // Replaces the value when it equals `expected` (nullopt: when absent);
  // returns whether it did.
  virtual bool compare_and_set(std::string_view key, const std::optional<std::string>& expected,
                               std::string_view desired, Ttl ttl = std::nullopt) = 0;
  // Takes `tokens` from the bucket at `key`, which refills at `rate` tokens per
  // second up to `burst`, and starts full. Throws Error{kInvalidArgument}
  // naming the argument unless rate > 0, burst >= 1 and 0 < tokens <= burst.
  // Bucket keys live apart from the string keys above.
  virtual TokenBucketResult take(std::string_view key, double rate, double burst,
                                 double tokens = 1) = 0;
};

}  // namespace devcycle
