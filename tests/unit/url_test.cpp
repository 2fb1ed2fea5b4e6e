#include "common/url.h"

#include <gtest/gtest.h>

#include "support/error_matchers.h"

namespace devcycle::internal {
namespace {

TEST(UrlTest, ParsesEveryPart) {
  const auto u =
      parse_url("postgresql://me:p%40ss@db.local:5433/dev%20cycle?sslmode=require&x=1", "database");
  EXPECT_EQ(u.scheme, "postgresql");
  EXPECT_EQ(u.user, "me");
  EXPECT_EQ(u.password, "p@ss");
  ASSERT_EQ(u.hosts.size(), 1u);
  EXPECT_EQ(u.hosts[0].host, "db.local");
  EXPECT_EQ(u.hosts[0].port, 5433);
  EXPECT_EQ(u.path, "/dev cycle");
  ASSERT_NE(u.query_value("sslmode"), nullptr);
  EXPECT_EQ(*u.query_value("sslmode"), "require");
  EXPECT_EQ(u.query_value("nope"), nullptr);
}

TEST(UrlTest, ParsesSeveralHostsAndIpv6) {
  const auto u = parse_url("kafka://a:9092,b,[::1]:9094", "bus");
  ASSERT_EQ(u.hosts.size(), 3u);
  EXPECT_EQ(u.hosts[1].host, "b");
  EXPECT_FALSE(u.hosts[1].port.has_value());
  EXPECT_EQ(u.hosts[2].host, "::1");
  EXPECT_EQ(u.hosts[2].port, 9094);
}

TEST(UrlTest, RejectsMalformedUrlsNamingTheLabel) {
  EXPECT_DEVCYCLE_ERROR(parse_url("localhost:5432", "database"), ErrorCode::kInvalidArgument,
                        "database", "scheme://");
  EXPECT_DEVCYCLE_ERROR(parse_url("redis://h:99999", "cache"), ErrorCode::kInvalidArgument, "cache",
                        "port \"99999\"");
  EXPECT_DEVCYCLE_ERROR(parse_url("redis://h:abc", "cache"), ErrorCode::kInvalidArgument, "port");
  EXPECT_DEVCYCLE_ERROR(parse_url("redis://:1", "cache"), ErrorCode::kInvalidArgument,
                        "missing host");
  EXPECT_DEVCYCLE_ERROR(parse_url("kafka://a,", "bus"), ErrorCode::kInvalidArgument, "empty host");
  EXPECT_DEVCYCLE_ERROR(parse_url("x://h/%zz", "x"), ErrorCode::kInvalidArgument, "%-escape");
  EXPECT_DEVCYCLE_ERROR(parse_url("x://h?novalue", "x"), ErrorCode::kInvalidArgument, "key=value");
  EXPECT_DEVCYCLE_ERROR(parse_url("x://h o/", "x"), ErrorCode::kInvalidArgument, "bad character");
}

TEST(UrlTest, RedactsPasswords) {
  EXPECT_EQ(redact_url("postgresql://me:secret@h/db"), "postgresql://me:***@h/db");
  EXPECT_EQ(redact_url("redis://:secret@h:6379/0"), "redis://:***@h:6379/0");
  EXPECT_EQ(redact_url("redis://h:6379"), "redis://h:6379");
  EXPECT_EQ(redact_url("sqlite://./a.db"), "sqlite://./a.db");
  try {
    parse_url("postgresql://me:secret@h:notaport/db", "database");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace devcycle::internal
