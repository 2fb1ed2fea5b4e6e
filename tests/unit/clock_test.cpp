#include "devcycle/common/clock.h"

#include <gtest/gtest.h>

namespace devcycle {
namespace {

TEST(ClockTest, FormatsRfc3339WithMicroseconds) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339(1'764'119'470'123'456), "2025-11-26T01:11:10.123456Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(1000);
  EXPECT_EQ(clock.now(), 1000);
  clock.advance(std::chrono::milliseconds(2));
  EXPECT_EQ(clock.now(), 3000);
  clock.set(5);
  EXPECT_EQ(clock.now(), 5);
}

TEST(ClockTest, SystemClockIsMicrosecondsSinceEpoch) {
  const auto now = SystemClock::instance()->now();
  EXPECT_GT(now, 1'700'000'000'000'000);  // after 2023
  EXPECT_LT(now, 4'100'000'000'000'000);  // before 2100
}

}  // namespace
}  // namespace devcycle
