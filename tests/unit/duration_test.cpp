#include "devcycle/common/duration.h"

#include <gtest/gtest.h>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

TEST(DurationTest, ParsesUnitsAndSums) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("1d"), 24h);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("0s"), 0ms);
}

TEST(DurationTest, FormatsTheShortestExactForm) {
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(90'061'001)), "1d1h1m1s1ms");
  EXPECT_EQ(parse_duration(format_duration(std::chrono::milliseconds(123'456'789))),
            std::chrono::milliseconds(123'456'789));
}

TEST(DurationTest, RefusesBadTextNamingTheField) {
  for (const char* bad :
       {"", "10", "s", "1x", "1.5s", "-1s", "1 s", "1h-2m", "99999999999999999999d"}) {
    EXPECT_DEVCYCLE_ERROR(parse_duration(bad, "$.timeout"), ErrorCode::kInvalidArgument,
                          "$.timeout", "is not a duration");
  }
}

}  // namespace
}  // namespace devcycle
