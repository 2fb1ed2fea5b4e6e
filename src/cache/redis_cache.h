// The Redis Cache backend (hiredis). Internal; built with DEVCYCLE_WITH_REDIS
// and reached through Cache::open("redis://...").
//
// Every operation is one command or one Lua script (EVALSHA), so each is
// atomic on the server whatever the number of processes sharing it. Token
// buckets use the server's clock (TIME), so that clients with skewed clocks
// share one bucket fairly. Connections come from a small pool; a connection
// that fails is dropped, and a call that failed on a pooled connection that
// had been idle (the server restarted meanwhile) is tried once more on a new
// one. While Redis is down every call throws Error{kUnavailable}.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "devcycle/cache/cache.h"

namespace devcycle::internal {

struct RedisSettings {
  std::string host;
  int port = 6379;
  std::string password;
  int db = 0;
  std::string prefix = "devcycle:";         // every key lives under it
  std::chrono::milliseconds timeout{2000};  // connect and each command
  int pool = 8;                             // connections kept at most
  std::string display;                      // the URL without its password
};

// redis://[:password@]host[:port][/db][?prefix=P&timeout_ms=N&pool=N]. Throws
// Error{kInvalidArgument} "<label>: ..." naming the bad part.
RedisSettings parse_redis_url(const std::string& url, std::string_view label);

// Connects once to check the server; throws Error{kUnavailable} when it cannot.
std::unique_ptr<Cache> make_redis_cache(const std::string& url);

}  // namespace devcycle::internal
