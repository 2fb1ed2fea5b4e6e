// Rendered answers of a hot read route (the agent list), kept for a short
// time so that dashboards and load balancers polling it do not each cost a
// database read and a serialisation. A change this process hears of drops
// every entry at once; a change made through another server on the same
// database shows within `ttl`.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "devcycle/common/clock.h"

namespace devcycle::server {

class ResponseCache {
 public:
  // `ttl` 0: nothing is kept.
  ResponseCache(std::chrono::milliseconds ttl, std::shared_ptr<Clock> clock,
                std::size_t max_entries = 256);

  bool enabled() const noexcept { return ttl_us_ > 0; }
  // Taken before reading what put() will store: an invalidation in between
  // makes that put() a no-op, so a read that raced a change is not kept.
  std::uint64_t generation() const;
  // The body stored under `key`, while it is fresh.
  std::optional<std::string> get(const std::string& key) const;
  void put(const std::string& key, std::string body, std::uint64_t generation);
  // Drops every entry.
  void invalidate();

 private:
  struct Entry {
    std::string body;
    Micros stored_at = 0;
  };
  Micros ttl_us_;
  std::shared_ptr<Clock> clock_;
  std::size_t max_entries_;
  mutable std::shared_mutex mu_;
  std::uint64_t generation_ = 0;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace devcycle::server
