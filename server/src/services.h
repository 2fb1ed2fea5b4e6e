// What the route handlers share: the platform, the identity services, and
// small helpers to answer with JSON.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "devcycle/auth/api_keys.h"
#include "devcycle/auth/audit.h"
#include "devcycle/auth/auth.h"
#include "devcycle/auth/auth_service.h"
#include "devcycle/auth/identity.h"
#include "devcycle/auth/secrets.h"
#include "devcycle/auth/sessions.h"
#include "devcycle/auth/tokens.h"
#include "devcycle/platform/platform.h"
#include "response_cache.h"
#include "router.h"
#include "serialize.h"

namespace devcycle::server {

struct Services {
  Platform& platform;
  Identity& identity;  // every account change goes through it, never users directly
  UserDirectory& users;
  TokenService& tokens;
  ApiKeyStore& keys;
  AuthService& auth;
  SessionStore& sessions;
  AuditLog& audit;
  SecretStore& secrets;
  const Logger& log;
  ResponseCache& agent_lists;         // GET /api/v1/agents answers, by query string
  const std::atomic<bool>& draining;  // shutting down: requests that wait stop waiting
};

// The platform as the caller of `c` may use it: every route acts through
// this facade, which enforces the authorization matrix (scoped.h); no route
// decides who may do what itself.
inline Scoped as(Services& s, const Call& c) { return s.platform.as(c.principal); }

// Records an audit entry for the caller of `c`; a failure to record is
// logged, never the request's failure.
void audit(Services& s, const Call& c, std::string action, std::string target,
           const Json& detail = Json::object());
// The same, for a caller that is not authenticated (yet).
void audit(Services& s, const HttpRequest& req, std::string actor, std::string action,
           std::string target, const Json& detail = Json::object());

// Reads {login, password} from the body and checks them, recording the
// failure ("login.failed" or "login.throttled") in the audit log; `via`
// tells the two login routes apart there. The caller records the success.
User authenticate_login(Services& s, const Call& c, std::string_view via);

// Cookies of a session login, and the headers that clear them.
std::vector<std::pair<std::string, std::string>> session_cookies(const CreatedSession& s, bool tls,
                                                                 std::chrono::seconds max_age);
std::vector<std::pair<std::string, std::string>> clear_session_cookies(bool tls);
// The value of a cookie in the request, or "".
std::string cookie(const HttpRequest& req, std::string_view name);
inline constexpr std::string_view kSessionCookie = "devcycle_session";
inline constexpr std::string_view kCsrfCookie = "devcycle_csrf";

HttpResponse json_response(int status, const Json& body);
HttpResponse no_content();
// A body already written as JSON text.
HttpResponse json_text_response(int status, std::string body);
// {"items": [...], "next_page_token": "..." or null}
Json page(Json items, const std::string& next_page_token);

// A handler of a route table, written as a function of the services.
using ServiceHandler = HttpResponse (*)(Services&, Call&);
// `f` with `s` bound, for the `.handler` of a table row.
inline RouteHandler bound(Services& s, ServiceHandler f) {
  return [&s, f](Call& c) { return f(s, c); };
}

struct AppOptions;

// The route tables, one per file: every route of the module in one list, in
// the order they are added to the router (routes_*.cpp). Handlers keep a
// reference to `s`, which must outlive them.
std::vector<Route> auth_routes(Services& s);
std::vector<Route> agent_routes(Services& s);
std::vector<Route> workflow_routes(Services& s);
std::vector<Route> run_routes(Services& s);
std::vector<Route> message_routes(Services& s);
std::vector<Route> session_routes(Services& s);
std::vector<Route> secret_routes(Services& s);
std::vector<Route> remote_routes(Services& s);
// /healthz, /readyz, /metrics, /openapi.json and /docs.
std::vector<Route> system_routes(Services& s, const AppOptions& options);

}  // namespace devcycle::server
