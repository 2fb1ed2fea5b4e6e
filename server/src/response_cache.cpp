#include "response_cache.h"

#include <mutex>

namespace devcycle::server {

ResponseCache::ResponseCache(std::chrono::milliseconds ttl, std::shared_ptr<Clock> clock,
                             std::size_t max_entries)
    : ttl_us_(std::chrono::duration_cast<std::chrono::microseconds>(ttl).count()),
      clock_(std::move(clock)),
      max_entries_(max_entries) {}

std::uint64_t ResponseCache::generation() const {
  std::shared_lock lock(mu_);
  return generation_;
}

std::optional<std::string> ResponseCache::get(const std::string& key) const {
  if (!enabled()) return std::nullopt;
  const Micros now = clock_->now();
  std::shared_lock lock(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end() || now - it->second.stored_at >= ttl_us_) return std::nullopt;
  return it->second.body;
}

void ResponseCache::put(const std::string& key, std::string body, std::uint64_t generation) {
  if (!enabled()) return;
  const Micros now = clock_->now();
  std::unique_lock lock(mu_);
  if (generation != generation_) return;
  // Query strings are the caller's to vary: the map is bounded by starting over.
  if (entries_.size() >= max_entries_ && !entries_.count(key)) entries_.clear();
  entries_[key] = {std::move(body), now};
}

void ResponseCache::invalidate() {
  std::unique_lock lock(mu_);
  ++generation_;
  entries_.clear();
}

}  // namespace devcycle::server
