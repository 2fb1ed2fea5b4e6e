#include "common/field_checks.h"

#include <gtest/gtest.h>

#include "common/utf8.h"
#include "support/error_matchers.h"

namespace devcycle::internal {
namespace {

TEST(Utf8Test, AcceptsWellFormedAndRefusesMalformed) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("naïve 日本 🚀"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_EQ(utf8_length("naïve 🚀"), 7u);
}

TEST(FieldChecksTest, TextChecksSizeEncodingAndControls) {
  EXPECT_NO_THROW(check_text("agent.description", "line one\n\tline two", 100));
  EXPECT_DEVCYCLE_ERROR(check_text("agent.owner", "", 10, true), ErrorCode::kInvalidArgument,
                        "agent.owner", "must not be empty");
  EXPECT_DEVCYCLE_ERROR(check_text("agent.description", std::string(11, 'x'), 10),
                        ErrorCode::kInvalidArgument, "agent.description", "11 bytes", "10 allowed");
  EXPECT_DEVCYCLE_ERROR(check_text("agent.description", "bad \xff", 10),
                        ErrorCode::kInvalidArgument, "agent.description", "UTF-8");
  EXPECT_DEVCYCLE_ERROR(check_text("x", std::string("nul\0here", 8), 10),
                        ErrorCode::kInvalidArgument, "control character");
}

TEST(FieldChecksTest, NamesFollowTheirRule) {
  EXPECT_NO_THROW(check_lower_name("type", "code-gen.v2_x", 64));
  EXPECT_DEVCYCLE_ERROR(check_lower_name("type", "Code", 64), ErrorCode::kInvalidArgument, "type",
                        "[a-z0-9][a-z0-9._-]*");
  EXPECT_DEVCYCLE_ERROR(check_lower_name("type", "-x", 64), ErrorCode::kInvalidArgument, "type");
  EXPECT_DEVCYCLE_ERROR(check_lower_name("type", std::string(65, 'a'), 64),
                        ErrorCode::kInvalidArgument, "longer than 64");
  EXPECT_DEVCYCLE_ERROR(check_lower_name("type", "", 64), ErrorCode::kInvalidArgument, "empty");
}

}  // namespace
}  // namespace devcycle::internal
