// Argument and URL checks that every Cache backend shares. Internal.
#pragma once

#include <string>
#include <string_view>

#include "devcycle/cache/cache.h"

namespace devcycle::internal {

enum class CacheKind { kMemory, kRedis };

// Throws Error{kInvalidArgument} "<label>: ..." when `url` is malformed or its
// scheme unknown.
CacheKind check_cache_url(const std::string& url, std::string_view label);

void check_key(std::string_view key);
void check_ttl(const Ttl& ttl);
void check_bucket(double rate, double burst, double tokens);

}  // namespace devcycle::internal
