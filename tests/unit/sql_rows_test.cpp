#include "common/sql_rows.h"

#include <gtest/gtest.h>

namespace devcycle::internal {
namespace {

TEST(MultiRowStatementsTest, NumbersThePlaceholdersAcrossTheRows) {
  const auto all = multi_row_statements("INSERT INTO t (a, b, c) VALUES ", "(?, ?, 0)",
                                        " ON CONFLICT DO NOTHING");
  ASSERT_EQ(all.size(), 65u);
  EXPECT_TRUE(all[0].empty());
  EXPECT_EQ(all[1], "INSERT INTO t (a, b, c) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING");
  EXPECT_EQ(all[3],
            "INSERT INTO t (a, b, c) VALUES ($1, $2, 0), ($3, $4, 0), ($5, $6, 0) ON CONFLICT DO "
            "NOTHING");
  EXPECT_NE(all[64].find("($127, $128, 0) ON CONFLICT"), std::string::npos);
}

}  // namespace
}  // namespace devcycle::internal
