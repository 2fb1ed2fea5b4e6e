#include "devcycle/registry/semver.h"

#include <gtest/gtest.h>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

Version v(std::string_view s) { return Version::parse(s); }
bool in(std::string_view range, std::string_view version) {
  return VersionRange::parse(range).contains(v(version));
}

TEST(VersionTest, ParsesEveryPart) {
  const auto x = v("1.22.333-rc.1.x-y+build.007");
  EXPECT_EQ(x.major(), 1u);
  EXPECT_EQ(x.minor(), 22u);
  EXPECT_EQ(x.patch(), 333u);
  EXPECT_EQ(x.prerelease(), (std::vector<std::string>{"rc", "1", "x-y"}));
  EXPECT_EQ(x.build(), (std::vector<std::string>{"build", "007"}));
  EXPECT_EQ(x.to_string(), "1.22.333-rc.1.x-y+build.007");
  EXPECT_EQ(v("0.0.0").to_string(), "0.0.0");
}

TEST(VersionTest, RefusesMalformedVersionsNamingTheField) {
  for (const char* bad : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-",
                          "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3+a_b", "v1.2.3", "a.b.c",
                          "1.2.x", "-1.2.3", "1.2.3 ", "99999999999999999999.0.0"}) {
    EXPECT_DEVCYCLE_ERROR(Version::parse(bad, "agent.version"), ErrorCode::kInvalidArgument,
                          "agent.version", "is not a semantic version");
  }
  EXPECT_DEVCYCLE_ERROR(Version::parse(std::string(300, '1')), ErrorCode::kInvalidArgument,
                        "longer than 256");
}

TEST(VersionTest, OrdersBySemverPrecedence) {
  // The example chain from semver.org, section 11.
  const char* chain[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                         "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                         "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                         "1.1.0",       "2.0.0",         "10.0.0"};
  for (std::size_t i = 1; i < std::size(chain); ++i) {
    EXPECT_LT(v(chain[i - 1]), v(chain[i])) << chain[i - 1] << " < " << chain[i];
  }
  EXPECT_EQ(v("1.0.0+a"), v("1.0.0+b"));  // build metadata has no precedence
}

TEST(VersionRangeTest, CaretFollowsNpm) {
  EXPECT_TRUE(in("^1.2", "1.2.0"));
  EXPECT_TRUE(in("^1.2", "1.9.9"));
  EXPECT_FALSE(in("^1.2", "2.0.0"));
  EXPECT_FALSE(in("^1.2", "1.1.9"));
  EXPECT_TRUE(in("^1.2.3", "1.2.3"));
  EXPECT_FALSE(in("^1.2.3", "1.2.2"));
  EXPECT_TRUE(in("^0.2.3", "0.2.9"));
  EXPECT_FALSE(in("^0.2.3", "0.3.0"));
  EXPECT_TRUE(in("^0.0.3", "0.0.3"));
  EXPECT_FALSE(in("^0.0.3", "0.0.4"));
  EXPECT_TRUE(in("^0", "0.9.9"));
  EXPECT_FALSE(in("^0", "1.0.0"));
}

TEST(VersionRangeTest, TildeAndWildcards) {
  EXPECT_TRUE(in("~1.2.3", "1.2.9"));
  EXPECT_FALSE(in("~1.2.3", "1.3.0"));
  EXPECT_FALSE(in("~1.2.3", "1.2.2"));
  EXPECT_TRUE(in("~1", "1.9.0"));
  EXPECT_FALSE(in("~1", "2.0.0"));
  EXPECT_TRUE(in("1.x", "1.0.0"));
  EXPECT_TRUE(in("1.x", "1.99.1"));
  EXPECT_FALSE(in("1.x", "2.0.0"));
  EXPECT_TRUE(in("1.2.*", "1.2.7"));
  EXPECT_FALSE(in("1.2.*", "1.3.0"));
  EXPECT_TRUE(in("*", "123.4.5"));
  EXPECT_TRUE(in("", "0.0.1"));
  EXPECT_TRUE(in("1", "1.4.0"));
  EXPECT_TRUE(in("1.2.3", "1.2.3"));
  EXPECT_FALSE(in("1.2.3", "1.2.4"));
  EXPECT_TRUE(in("=1.2.3", "1.2.3+build"));
}

TEST(VersionRangeTest, ComparatorsAndUnions) {
  EXPECT_TRUE(in(">=1.0 <2.0", "1.5.0"));
  EXPECT_FALSE(in(">=1.0 <2.0", "2.0.0"));
  EXPECT_FALSE(in(">=1.0 <2.0", "0.9.9"));
  EXPECT_TRUE(in(">1.2", "1.3.0"));
  EXPECT_FALSE(in(">1.2", "1.2.9"));
  EXPECT_TRUE(in(">1.2.3", "1.2.4"));
  EXPECT_TRUE(in("<=1.2", "1.2.9"));
  EXPECT_FALSE(in("<=1.2", "1.3.0"));
  EXPECT_TRUE(in(">= 1.0.0", "1.0.0"));  // a space after the operator is fine
  EXPECT_TRUE(in("^1.0 || ^3.0", "3.1.0"));
  EXPECT_FALSE(in("^1.0 || ^3.0", "2.1.0"));
  EXPECT_EQ(VersionRange::parse("  ^1.2 ").to_string(), "^1.2");
}

TEST(VersionRangeTest, PrereleasesOnlyWhenTheRangeAsksForThem) {
  EXPECT_FALSE(in("^1.2", "1.3.0-beta.1"));
  EXPECT_FALSE(in("*", "1.0.0-rc.1"));
  EXPECT_TRUE(in(">=1.3.0-beta", "1.3.0-beta.2"));
  EXPECT_FALSE(in(">=1.3.0-beta", "1.4.0-beta.2"));  // another patch tuple
  EXPECT_TRUE(in(">=1.3.0-beta", "1.4.0"));
  EXPECT_FALSE(in("^1.2.3", "2.0.0-alpha"));
}

TEST(VersionRangeTest, RefusesMalformedRangesNamingTheField) {
  for (const char* bad : {"^", ">=", "1.2 - 1.4", "^1.2 ||", "|| ^1", "1.x.3", ">=a", "~1.2.3.4",
                          "^1.2.3-", "1.2.3-01"}) {
    EXPECT_DEVCYCLE_ERROR(VersionRange::parse(bad, "requires[0]"), ErrorCode::kInvalidArgument,
                          "requires[0]", "is not a version range");
  }
}

}  // namespace
}  // namespace devcycle
