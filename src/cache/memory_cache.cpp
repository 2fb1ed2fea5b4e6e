#include "cache/memory_cache.h"

#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "cache/cache_args.h"
#include "common/string_hash.h"
#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

struct Entry {
  std::string value;
  Micros expires_at = 0;  // 0: never
};

struct Bucket {
  double tokens = 0;
  Micros updated_at = 0;
  Micros idle_until = 0;  // full again from here on: may be dropped
};

// Keys are spread over shards so that threads working on different keys
// rarely wait for each other. Expired entries go lazily on access, plus a
// sweep of one shard every kSweepEvery writes so memory stays bounded.
class MemoryCache final : public Cache {
 public:
  explicit MemoryCache(std::shared_ptr<Clock> clock) : clock_(std::move(clock)) {}

  std::optional<std::string> get(std::string_view key) override {
    check_key(key);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const auto* e = live(s, key, clock_->now());
    if (!e) return std::nullopt;
    return e->value;
  }

  void set(std::string_view key, std::string_view value, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const Micros now = clock_->now();
    s.entries.insert_or_assign(std::string(key), Entry{std::string(value), expiry(now, ttl)});
    after_write(s, now);
  }

  bool set_if_absent(std::string_view key, std::string_view value, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const Micros now = clock_->now();
    if (live(s, key, now)) return false;
    s.entries.insert_or_assign(std::string(key), Entry{std::string(value), expiry(now, ttl)});
    after_write(s, now);
    return true;
  }

  bool erase(std::string_view key) override {
    check_key(key);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const bool existed = live(s, key, clock_->now()) != nullptr;
    if (auto it = s.entries.find(key); it != s.entries.end()) s.entries.erase(it);
    return existed;
  }

  std::int64_t increment(std::string_view key, std::int64_t delta, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const Micros now = clock_->now();
    Entry* e = live(s, key, now);
    std::int64_t current = 0;
    if (e) {
      const auto& v = e->value;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), current);
      if (ec != std::errc() || end != v.data() + v.size()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "cache key \"" + std::string(key) + "\": value is not an integer");
      }
    }
    std::int64_t next = 0;
    if (__builtin_add_overflow(current, delta, &next)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "cache key \"" + std::string(key) + "\": increment would overflow int64");
    }
    if (e) {
      e->value = std::to_string(next);
    } else {
      s.entries.insert_or_assign(std::string(key), Entry{std::to_string(next), expiry(now, ttl)});
      after_write(s, now);
    }
    return next;
  }

  bool compare_and_set(std::string_view key, const std::optional<std::string>& expected,
                       std::string_view desired, Ttl ttl) override {
    check_key(key);
    check_ttl(ttl);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const Micros now = clock_->now();
    const Entry* e = live(s, key, now);
    const bool matches = expected ? (e && e->value == *expected) : (e == nullptr);
    if (!matches) return false;
    s.entries.insert_or_assign(std::string(key), Entry{std::string(desired), expiry(now, ttl)});
    after_write(s, now);
    return true;
  }

  TokenBucketResult take(std::string_view key, double rate, double burst, double tokens) override {
    check_key(key);
    check_bucket(rate, burst, tokens);
    auto& s = shard(key);
    std::lock_guard lock(s.mu);
    const Micros now = clock_->now();
    auto it = s.buckets.find(key);
    if (it == s.buckets.end()) {
      it = s.buckets.emplace(std::string(key), Bucket{burst, now, now}).first;
    }
    Bucket& b = it->second;
    const double elapsed = static_cast<double>(std::max<Micros>(0, now - b.updated_at)) / 1e6;
    b.tokens = std::min(burst, b.tokens + elapsed * rate);
    b.updated_at = now;
    TokenBucketResult r;
    if (b.tokens >= tokens) {
      b.tokens -= tokens;
      r.allowed = true;
    } else {
      const double wait_s = (tokens - b.tokens) / rate;
      r.retry_after = std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_s * 1e3)));
    }
    r.remaining = b.tokens;
    b.idle_until = now + static_cast<Micros>(std::ceil((burst - b.tokens) / rate * 1e6));
    after_write(s, now);
    return r;
  }

 private:
  static constexpr std::size_t kShards = 16;
  static constexpr int kSweepEvery = 1024;

  struct Shard {
    std::mutex mu;
    StringMap<Entry> entries;
    StringMap<Bucket> buckets;
    int writes = 0;
  };

  Shard& shard(std::string_view key) { return shards_[StringHash{}(key) % kShards]; }

  static Micros expiry(Micros now, const Ttl& ttl) {
    return ttl ? now + std::chrono::duration_cast<std::chrono::microseconds>(*ttl).count() : 0;
  }

  // The entry at `key` unless it is absent or expired (then it is dropped).
  static Entry* live(Shard& s, std::string_view key, Micros now) {
    auto it = s.entries.find(key);
    if (it == s.entries.end()) return nullptr;
    if (it->second.expires_at != 0 && it->second.expires_at <= now) {
      s.entries.erase(it);
      return nullptr;
    }
    return &it->second;
  }

  static void after_write(Shard& s, Micros now) {
    if (++s.writes < kSweepEvery) return;
    s.writes = 0;
    std::erase_if(s.entries, [now](const auto& kv) {
      return kv.second.expires_at != 0 && kv.second.expires_at <= now;
    });
    std::erase_if(s.buckets, [now](const auto& kv) { return kv.second.idle_until <= now; });
  }

  std::shared_ptr<Clock> clock_;
  std::array<Shard, kShards> shards_;
};

}  // namespace

std::unique_ptr<Cache> make_memory_cache(const CacheOptions& options) {
  return std::make_unique<MemoryCache>(options.clock);
}

}  // namespace devcycle::internal
