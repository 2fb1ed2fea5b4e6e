#include "router.h"

#include <gtest/gtest.h>

namespace devcycle::server {
namespace {

Router routes() {
  Router r;
  auto ok = [](Call&) { return HttpResponse{}; };
  r.add({.method = "GET", .path = "/api/v1/workflows", .handler = ok});
  r.add({.method = "POST", .path = "/api/v1/workflows", .handler = ok});
  r.add({.method = "POST", .path = "/api/v1/workflows/validate", .handler = ok});
  r.add({.method = "GET", .path = "/api/v1/workflows/{name}", .handler = ok});
  r.add({.method = "GET", .path = "/api/v1/agents/{id}", .handler = ok});
  r.add({.method = "PATCH", .path = "/api/v1/agents/{id}", .handler = ok});
  r.add({.method = "DELETE", .path = "/api/v1/agents/{id}", .handler = ok});
  return r;
}

TEST(RouterTest, ALiteralPathIsNeverTakenForAParameter) {
  const auto r = routes();
  auto m = r.match("GET", "/api/v1/workflows/validate");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"POST"}));  // the Allow of the 405
  m = r.match("POST", "/api/v1/workflows/validate");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->path, "/api/v1/workflows/validate");
  EXPECT_TRUE(m.params.empty());
}

TEST(RouterTest, AllowListsOnlyTheMethodsOfThePath) {
  const auto r = routes();
  auto m = r.match("PUT", "/api/v1/workflows/build");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET"}));
  m = r.match("POST", "/api/v1/agents/7");
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "PATCH", "DELETE"}));
  m = r.match("GET", "/api/v1/agents/a%20b");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.params.at("id"), "a b");
}

TEST(RouterTest, UnknownAndMalformedPaths) {
  const auto r = routes();
  auto m = r.match("GET", "/api/v1/nothing");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.allowed.empty());
  EXPECT_FALSE(m.bad_path);
  m = r.match("GET", "/api/v1/agents/%zz");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.bad_path);
}

}  // namespace
}  // namespace devcycle::server
