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

TEST(PgArrayTest, QuotesTextAndWritesNulls) {
  PgArray texts;
  texts.add(std::string_view("a \"b\" \\ {c,d}"));
  texts.add_or_null("");
  texts.add_or_null("NULL");
  texts.add_optional(std::nullopt);
  texts.add_optional(std::string());
  EXPECT_EQ(texts.str(), R"({"a \"b\" \\ {c,d}",NULL,"NULL",NULL,""})");
  PgArray numbers;
  numbers.add(std::int64_t{-7});
  numbers.add(std::optional<std::int64_t>());
  numbers.add(std::optional<std::int64_t>(42));
  EXPECT_EQ(numbers.str(), "{-7,NULL,42}");
  EXPECT_EQ(PgArray().str(), "{}");
}

TEST(OptionalTextTest, EmptyTextIsNullBothWays) {
  EXPECT_TRUE(null_if_empty("").is_null());
  EXPECT_EQ(null_if_empty("x").as_text(), "x");
  EXPECT_EQ(text_or_empty(Value()), "");
  EXPECT_EQ(text_or_empty(Value("y")), "y");
}

}  // namespace
}  // namespace devcycle::internal
