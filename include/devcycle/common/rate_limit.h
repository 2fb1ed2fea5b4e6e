// A token-bucket rate: `per_second` tokens a second, at most `burst` saved
// up. Used for capability rate limits (EngineOptions, settings); taken
// from Cache::take(). A plain value.
#pragma once

namespace devcycle {

struct RateLimit {
  double per_second = 1;
  double burst = 1;
};

}  // namespace devcycle
