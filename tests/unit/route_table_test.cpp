// The server's route table against server/openapi.json, both ways: every
// route it answers is a documented operation, and every documented operation
// is answered. An operation is (method, path template) with the parameter
// names as written ("/api/v1/agents/{id}"), so a renamed parameter is a
// mismatch too. What the spec says of a route's flags is checked as well: a
// public route is exactly an operation with `security: []`, and a route takes
// a query string exactly when its operation documents query parameters.
//
// The probes, /metrics, /openapi.json and /docs are documented and routed
// like the API. Documented but not routed: only what kUnrouted lists, with
// why. Routed but not documented: nothing, ever.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "devcycle/auth/tokens.h"
#include "devcycle/observability/logger.h"
#include "devcycle/platform/platform.h"
#include "server_app.h"

namespace devcycle::server {
namespace {

using Json = nlohmann::json;
using Operation = std::pair<std::string, std::string>;  // {"GET", "/api/v1/agents/{id}"}

struct Unrouted {
  Operation operation;
  const char* reason;
};
const Unrouted kUnrouted[] = {
    {{"GET", std::string(kWebSocketPath)},
     "the transport hands the upgrade to ServerApp::upgrade (serve.cpp) before routing"},
};

std::string name(const Operation& op) { return op.first + " " + op.second; }

class RouteTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PlatformOptions o;
    o.database = "sqlite::memory:";
    o.engine_workers = 0;
    o.monitor_interval = std::chrono::milliseconds(0);
    o.master_key = generate_master_key_hex();
    o.log_sink = std::make_shared<MemoryLogSink>();
    platform_ = Platform::open(o);
    app_ = std::make_unique<ServerApp>(*platform_, AppOptions{});
    spec_ = Json::parse(openapi_document());
    for (const auto& [path, item] : spec_.at("paths").items()) {
      for (const auto& [key, operation] : item.items()) {
        if (!kMethods.contains(key)) continue;  // "parameters", "summary", ...
        std::string method = key;
        for (auto& ch : method)
          ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        documented_[{method, path}] = {&item, &operation};
      }
    }
  }

  const std::vector<Route>& routes() const { return app_->routes(); }

  static bool unrouted(const Operation& op) {
    for (const auto& u : kUnrouted) {
      if (u.operation == op) return true;
    }
    return false;
  }

  // The operation's parameters and its path's, references resolved.
  std::vector<Json> parameters(const Operation& op) const {
    const auto& [item, operation] = documented_.at(op);
    std::vector<Json> out;
    for (const auto* owner : {item, operation}) {
      for (const auto& p : owner->value("parameters", Json::array())) {
        if (!p.contains("$ref")) {
          out.push_back(p);
          continue;
        }
        const auto ref = p.at("$ref").get<std::string>();
        out.push_back(spec_.at(Json::json_pointer(ref.substr(1))));
      }
    }
    return out;
  }

  static inline const std::set<std::string> kMethods = {"get",   "put",     "post", "delete",
                                                        "patch", "options", "head", "trace"};
  std::unique_ptr<Platform> platform_;
  std::unique_ptr<ServerApp> app_;
  Json spec_;
  std::map<Operation, std::pair<const Json*, const Json*>> documented_;  // path item, operation
};

TEST_F(RouteTableTest, EveryRouteIsADocumentedOperationOnce) {
  ASSERT_GT(routes().size(), 50u);
  std::set<Operation> seen;
  for (const auto& r : routes()) {
    const Operation op{r.method, r.path};
    EXPECT_TRUE(seen.insert(op).second) << name(op) << " is routed twice";
    EXPECT_TRUE(documented_.contains(op)) << name(op) << " is routed but not in openapi.json";
    EXPECT_FALSE(unrouted(op)) << name(op) << " is routed: take it off kUnrouted";
  }
}

TEST_F(RouteTableTest, EveryDocumentedOperationIsRouted) {
  ASSERT_GT(documented_.size(), 50u);
  std::set<Operation> routed;
  for (const auto& r : routes()) routed.insert({r.method, r.path});
  for (const auto& [op, where] : documented_) {
    if (unrouted(op)) continue;
    EXPECT_TRUE(routed.contains(op)) << name(op) << " is in openapi.json but not routed";
  }
  for (const auto& u : kUnrouted) {
    EXPECT_TRUE(documented_.contains(u.operation)) << name(u.operation) << " is on kUnrouted ("
                                                   << u.reason << ") but no longer in openapi.json";
  }
}

TEST_F(RouteTableTest, PublicRoutesAreTheOperationsWithoutSecurity) {
  for (const auto& r : routes()) {
    const Operation op{r.method, r.path};
    if (!documented_.contains(op)) continue;  // reported above
    const auto& operation = *documented_.at(op).second;
    const bool open = operation.contains("security") && operation.at("security").empty();
    EXPECT_EQ(r.public_route, open)
        << name(op)
        << (r.public_route ? " is public but openapi.json asks for credentials"
                           : " needs credentials but openapi.json has security: []");
  }
}

TEST_F(RouteTableTest, RoutesTakeAQueryExactlyWhenTheyDocumentOne) {
  for (const auto& r : routes()) {
    const Operation op{r.method, r.path};
    if (!documented_.contains(op)) continue;
    bool documented = false;
    for (const auto& p : parameters(op)) documented = documented || p.at("in") == "query";
    EXPECT_EQ(r.takes_query, documented)
        << name(op)
        << (r.takes_query ? " takes a query but openapi.json documents no query parameter"
                          : " refuses a query but openapi.json documents query parameters");
  }
}

}  // namespace
}  // namespace devcycle::server
