#include "response_cache.h"

#include <gtest/gtest.h>

#include <chrono>

namespace devcycle::server {
namespace {

using namespace std::chrono_literals;

TEST(ResponseCacheTest, KeepsAnswersForTheTtlOnly) {
  auto clock = std::make_shared<ManualClock>();
  ResponseCache cache(1000ms, clock);
  EXPECT_FALSE(cache.get("limit=5"));
  cache.put("limit=5", "[1]", cache.generation());
  EXPECT_EQ(cache.get("limit=5"), "[1]");
  EXPECT_FALSE(cache.get("limit=6"));
  clock->advance(999ms);
  EXPECT_EQ(cache.get("limit=5"), "[1]");
  clock->advance(1ms);
  EXPECT_FALSE(cache.get("limit=5"));
}

TEST(ResponseCacheTest, AnInvalidationDropsEntriesAndRefusesReadsThatRacedIt) {
  auto clock = std::make_shared<ManualClock>();
  ResponseCache cache(1000ms, clock);
  cache.put("", "old", cache.generation());
  const auto before = cache.generation();  // a reader starts ...
  cache.invalidate();                      // ... a change commits ...
  EXPECT_FALSE(cache.get(""));
  cache.put("", "read before the change", before);  // ... and the reader's answer is not kept
  EXPECT_FALSE(cache.get(""));
  cache.put("", "new", cache.generation());
  EXPECT_EQ(cache.get(""), "new");
}

TEST(ResponseCacheTest, ZeroTtlKeepsNothingAndTheSizeIsBounded) {
  auto clock = std::make_shared<ManualClock>();
  ResponseCache off(0ms, clock);
  off.put("", "x", off.generation());
  EXPECT_FALSE(off.enabled());
  EXPECT_FALSE(off.get(""));

  ResponseCache small(1000ms, clock, 2);
  small.put("a", "1", small.generation());
  small.put("b", "2", small.generation());
  small.put("b", "2'", small.generation());  // replacing does not count
  EXPECT_EQ(small.get("a"), "1");
  small.put("c", "3", small.generation());  // a third key starts over
  EXPECT_FALSE(small.get("a"));
  EXPECT_EQ(small.get("c"), "3");
}

}  // namespace
}  // namespace devcycle::server
