// The in-process Cache backend (memory://). Internal.
#pragma once

#include <memory>

#include "devcycle/cache/cache.h"

namespace devcycle::internal {

std::unique_ptr<Cache> make_memory_cache(const CacheOptions& options);

}  // namespace devcycle::internal
