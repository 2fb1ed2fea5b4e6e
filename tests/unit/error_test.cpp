#include "devcycle/common/error.h"

#include <gtest/gtest.h>

#include <set>

namespace devcycle {
namespace {

TEST(ErrorTest, CarriesCodeAndMessage) {
  const Error e(ErrorCode::kNotFound, "agent \"builder\" not found");
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_STREQ(e.what(), "agent \"builder\" not found");
  EXPECT_EQ(to_string(e.code()), "not_found");
}

TEST(ErrorTest, OnlyTransientCodesAreRetryable) {
  const std::pair<ErrorCode, bool> cases[] = {
      {ErrorCode::kInvalidArgument, false},  {ErrorCode::kNotFound, false},
      {ErrorCode::kAlreadyExists, false},    {ErrorCode::kConflict, true},
      {ErrorCode::kUnauthenticated, false},  {ErrorCode::kPermissionDenied, false},
      {ErrorCode::kResourceExhausted, true}, {ErrorCode::kUnavailable, true},
      {ErrorCode::kDeadlineExceeded, true},  {ErrorCode::kInternal, false},
  };
  for (const auto& [code, retryable] : cases) {
    EXPECT_EQ(Error(code, "x").retryable(), retryable) << to_string(code);
  }
}

TEST(ErrorTest, EveryCodeHasADistinctName) {
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    names.insert(to_string(static_cast<ErrorCode>(c)));
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(ErrorCode::kInternal) + 1);
}

TEST(ErrorTest, IsARuntimeError) {
  try {
    throw Error(ErrorCode::kInternal, "boom");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
}

}  // namespace
}  // namespace devcycle
