#include "devcycle/cache/cache.h"

#include <cmath>

#include "cache/cache_args.h"
#include "cache/memory_cache.h"
#ifdef DEVCYCLE_WITH_REDIS
#include "cache/redis_cache.h"
#endif
#include "common/url.h"
#include "devcycle/common/error.h"

namespace devcycle {
namespace internal {

void check_key(std::string_view key) {
  if (key.empty()) throw Error(ErrorCode::kInvalidArgument, "cache key: must not be empty");
  if (key.size() > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "cache key: longer than 1024 bytes");
  }
}

void check_ttl(const Ttl& ttl) {
  if (ttl && ttl->count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "cache ttl: must be positive, got " + std::to_string(ttl->count()) + " ms");
  }
}

void check_bucket(double rate, double burst, double tokens) {
  if (!(rate > 0) || !std::isfinite(rate)) {
    throw Error(ErrorCode::kInvalidArgument, "token bucket rate: must be a positive number");
  }
  if (!(burst >= 1) || !std::isfinite(burst)) {
    throw Error(ErrorCode::kInvalidArgument, "token bucket burst: must be at least 1");
  }
  if (!(tokens > 0) || tokens > burst) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "token bucket tokens: must be above 0 and at most burst (" + std::to_string(burst) + ")");
  }
}

}  // namespace internal

namespace internal {

CacheKind check_cache_url(const std::string& url, std::string_view label) {
  const auto parsed = parse_url(url, label);
  if (parsed.scheme == "memory") {
    require_bare(parsed, url, label);
    return CacheKind::kMemory;
  }
  if (parsed.scheme == "redis") {
    if (parsed.hosts.size() != 1)
      fail_setting(label, url, "must name one host: redis://host:port/db");
    if (!parsed.path.empty() && parsed.path != "/") {
      const auto db = std::string_view(parsed.path).substr(1);
      const bool digits = !db.empty() && db.size() <= 2 &&
                          db.find_first_not_of("0123456789") == std::string_view::npos;
      if (!digits)
        fail_setting(
            label, url,
            "names database \"" + std::string(db) + "\", which is not a number from 0 to 99");
    }
    return CacheKind::kRedis;
  }
  fail_setting(label, url,
               "has an unknown scheme \"" + parsed.scheme +
                   "\" (expected memory:// or redis://host:port/db)");
}

}  // namespace internal

std::unique_ptr<Cache> Cache::open(const std::string& url, const CacheOptions& options) {
  if (!options.clock) throw Error(ErrorCode::kInvalidArgument, "cache options: clock is null");
  switch (internal::check_cache_url(url, "cache")) {
    case internal::CacheKind::kMemory:
      return internal::make_memory_cache(options);
    case internal::CacheKind::kRedis:
#ifdef DEVCYCLE_WITH_REDIS
      return internal::make_redis_cache(url);
#else
      break;
#endif
  }
  internal::fail_setting("cache", url,
                         "needs the Redis backend, which this build leaves out (configure with "
                         "-DDEVCYCLE_WITH_REDIS=ON); use memory://");
}

}  // namespace devcycle
