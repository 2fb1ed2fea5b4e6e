// Routes: a method and a path template ("/api/v1/agents/{id}") to a handler.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/authz.h"
#include "http_server.h"

namespace devcycle::server {

struct Call {
  const HttpRequest& req;
  std::map<std::string, std::string> params;  // from the pattern, percent-decoded
  Principal principal;                        // the caller (empty on public routes)
  std::string access_token;                   // when the caller used a JWT
  std::string session_token;                  // when the caller used a session cookie
  // The caller's credentials checked again, as they stand now (a request
  // that waits long must not outlive them); throws like authentication.
  std::function<Principal()> recheck = {};
  const std::string& param(const std::string& name) const { return params.at(name); }
};

using RouteHandler = std::function<HttpResponse(Call&)>;

// One row of a route table. Every member has a default, so a row names only
// what it needs, by name:
//   {.method = "GET", .path = "/api/v1/runs", .handler = ..., .takes_query = true}
struct Route {
  std::string method = {};    // "GET", "POST", ...
  std::string path = {};      // a template as in server/openapi.json: "/api/v1/agents/{id}"
  RouteHandler handler = {};  // called once the edge has admitted the request
  bool public_route = false;  // no credentials needed
  Lane lane = Lane::kInline;  // where the transport runs it (http_server.h)
  bool takes_query = false;   // takes query parameters; otherwise a query is refused
};

class Router {
 public:
  void add(Route route);

  struct Match {
    const Route* route = nullptr;  // null: no route
    std::map<std::string, std::string> params;
    std::vector<std::string> allowed;  // methods of the path, when the method did not match
    bool bad_path = false;             // malformed percent-encoding
  };
  Match match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const noexcept { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;
  std::vector<std::size_t> path_of_;  // each route's path: the first route of the same shape
};

}  // namespace devcycle::server
