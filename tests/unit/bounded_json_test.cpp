#include "common/bounded_json.h"

#include <gtest/gtest.h>

#include <string>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

std::string nested(int levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(BoundedJsonTest, SixtyFourLevelsParseAndSixtyFiveAreRefusedNamingTheLimit) {
  EXPECT_EQ(internal::parse_json(nested(kMaxJsonDepth), "input").dump(), nested(kMaxJsonDepth));
  EXPECT_DEVCYCLE_ERROR(internal::parse_json(nested(kMaxJsonDepth + 1), "input"),
                        ErrorCode::kInvalidArgument, "input: nested deeper than 64 levels",
                        "the limit");
}

// The attack of issue #20: 300,000 nested arrays (600 KB) used to parse and
// then overflow the stack of whoever wrote the document out.
TEST(BoundedJsonTest, ThreeHundredThousandNestedArraysAreRefusedBeforeParsing) {
  EXPECT_DEVCYCLE_ERROR(internal::parse_json(nested(300'000), "payload"),
                        ErrorCode::kInvalidArgument, "payload: nested deeper than 64");
  std::string objects;
  for (int i = 0; i < 100'000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(100'000, '}');
  EXPECT_DEVCYCLE_ERROR(internal::parse_json(objects, "output"), ErrorCode::kInvalidArgument,
                        "output: nested deeper than 64");
}

TEST(BoundedJsonTest, BracketsInsideStringsDoNotCount) {
  const std::string text = R"({"a": ")" + std::string(1000, '[') + R"(\"[[[", "b": [1]})";
  EXPECT_FALSE(json_deeper_than(text, 2));
  EXPECT_EQ(internal::parse_json(text, "x")["b"][0], 1);
  // An escaped quote does not end the string, an escaped backslash does not
  // escape the quote after it.
  EXPECT_TRUE(json_deeper_than(R"(["\\", [[[]]]])", 3));
  EXPECT_FALSE(json_deeper_than(R"(["\"[[[[[[", []])", 2));
}

TEST(BoundedJsonTest, ANumberBeyondADoubleIsAnInvalidArgumentNotAnInternalError) {
  EXPECT_DEVCYCLE_ERROR(internal::parse_json(R"({"n": 1e400})", "input"),
                        ErrorCode::kInvalidArgument, "input: a number is out of range");
  EXPECT_DEVCYCLE_ERROR(internal::parse_json("[-1e400]", "input"), ErrorCode::kInvalidArgument,
                        "out of range");
  // Large integers are kept as doubles, as before.
  EXPECT_TRUE(internal::parse_json("123456789012345678901234567890", "input").is_number());
}

TEST(BoundedJsonTest, MalformedTextNamesTheFieldAndThePlace) {
  EXPECT_DEVCYCLE_ERROR(internal::parse_json("{\"a\": }", "configuration"),
                        ErrorCode::kInvalidArgument, "configuration: not valid JSON", "column 7");
  // Unbalanced closers are refused whatever the scan made of them.
  EXPECT_DEVCYCLE_ERROR(internal::parse_json("]]]]" + nested(100), "x"),
                        ErrorCode::kInvalidArgument, "x: ");
  EXPECT_DEVCYCLE_ERROR(internal::parse_json("]]]]" + nested(62), "x"), ErrorCode::kInvalidArgument,
                        "x: not valid JSON");
}

}  // namespace
}  // namespace devcycle
