#include "server_app.h"

#include <sodium.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>

#include "devcycle/common/error.h"
#include "devcycle/version.h"
#include "input.h"
#include "services.h"
#include "ws_hub.h"

namespace devcycle::server {

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

HttpResponse json_text_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse no_content() {
  HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

Json page(Json items, const std::string& next_page_token) {
  return {{"items", std::move(items)},
          {"next_page_token", next_page_token.empty() ? Json(nullptr) : Json(next_page_token)}};
}

namespace {

std::string random_password() {
  // 24 characters from an alphabet without look-alikes: ~138 bits.
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  std::string out;
  for (int i = 0; i < 24; ++i) {
    out.push_back(kAlphabet[randombytes_uniform(static_cast<std::uint32_t>(kAlphabet.size()))]);
  }
  return out;
}

}  // namespace

void audit(Services& s, const HttpRequest& req, std::string actor, std::string action,
           std::string target, const Json& detail) {
  try {
    s.audit.record({std::move(actor), std::move(action), std::move(target), req.client_address,
                    detail.dump()});
  } catch (const std::exception& e) {
    s.log.error("audit entry not recorded", {{"action", action}, {"error", e.what()}});
  }
}

void audit(Services& s, const Call& c, std::string action, std::string target, const Json& detail) {
  audit(s, c.req, c.principal.id, std::move(action), std::move(target), detail);
}

User authenticate_login(Services& s, const Call& c, std::string_view via) {
  BodyInput in(c.req);
  const auto login = in.string("login", true);
  const auto password = in.string("password", true);
  in.done();
  try {
    return s.users.authenticate(*login, *password, c.req.client_address);
  } catch (const Error& e) {
    audit(s, c.req, "",
          e.code() == ErrorCode::kResourceExhausted ? "login.throttled" : "login.failed", "",
          {{"login", *login}, {"via", via}});
    throw;
  }
}

std::string cookie(const HttpRequest& req, std::string_view name) {
  for (const auto& [header, value] : req.headers) {
    if (header != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto semi = rest.find(';');
      auto pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      const auto eq = pair.find('=');
      if (eq != std::string_view::npos && pair.substr(0, eq) == name) {
        return std::string(pair.substr(eq + 1));
      }
    }
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> session_cookies(const CreatedSession& s, bool tls,
                                                                 std::chrono::seconds max_age) {
  const std::string attributes =
      "; Path=/; SameSite=Strict; Max-Age=" + std::to_string(max_age.count()) +
      (tls ? "; Secure" : "");
  return {{"Set-Cookie", std::string(kSessionCookie) + "=" + s.token + attributes + "; HttpOnly"},
          {"Set-Cookie", std::string(kCsrfCookie) + "=" + s.csrf_token + attributes}};
}

std::vector<std::pair<std::string, std::string>> clear_session_cookies(bool tls) {
  const std::string attributes =
      "=; Path=/; SameSite=Strict; Max-Age=0" + std::string(tls ? "; Secure" : "");
  return {{"Set-Cookie", std::string(kSessionCookie) + attributes + "; HttpOnly"},
          {"Set-Cookie", std::string(kCsrfCookie) + attributes}};
}

void check_cors_origin(const std::string& origin, const std::string& setting) {
  if (origin == "*") return;
  const auto scheme = origin.find("://");
  const bool ok =
      scheme != std::string::npos &&
      (origin.compare(0, scheme, "http") == 0 || origin.compare(0, scheme, "https") == 0) &&
      origin.size() > scheme + 3 && origin.find_first_of("/?#*@ ", scheme + 3) == std::string::npos;
  if (!ok) {
    throw Error(
        ErrorCode::kInvalidArgument,
        setting + ": \"" + origin + "\" is not an origin (scheme://host[:port], no path) or \"*\"");
  }
}

struct ServerApp::Impl {
  Platform& platform;
  AppOptions options;
  Identity& identity;
  UserDirectory& users;
  SessionStore& sessions;
  SecretStore& secrets;
  Logger log;
  ResponseCache agent_lists;
  std::atomic<bool> draining{false};
  Services services;
  Router router;
  std::mutex metrics_mu;
  std::map<std::pair<std::size_t, int>, Counter*> request_counters;
  std::map<std::size_t, Histogram*> latencies;
  Subscription registry_events;
  std::unique_ptr<WsHub> ws_hub;

  static SecretStore& platform_secrets(Platform& p) {
    if (!p.secrets()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "master_key: the server needs a platform opened with a master key");
    }
    return *p.secrets();
  }
  Impl(Platform& p, AppOptions o)
      : platform(p),
        options(std::move(o)),
        identity(p.identity()),
        users(identity.users()),
        sessions(identity.sessions()),
        secrets(platform_secrets(p)),
        log(p.logger().named("server")),
        agent_lists(options.agent_list_cache, p.options().clock),
        services{p,
                 identity,
                 identity.users(),
                 identity.tokens(),
                 identity.keys(),
                 identity.auth(),
                 identity.sessions(),
                 identity.audit(),
                 secrets,
                 log,
                 agent_lists,
                 draining} {
    registry_events =
        platform.registry().subscribe([this](const AgentEvent&) { agent_lists.invalidate(); });
    // The whole API, module by module (routes_*.cpp); the order is the
    // order of the Allow header when a path has several methods.
    for (auto* table : {auth_routes, agent_routes, workflow_routes, run_routes, message_routes,
                        session_routes, secret_routes, remote_routes}) {
      for (auto& route : table(services)) router.add(std::move(route));
    }
    for (auto& route : system_routes(services, options)) router.add(std::move(route));
    ws_hub = std::make_unique<WsHub>(
        services,
        [this](const HttpRequest& req, bool& from_cookie) {
          Call call{req, {}, {}, {}, {}};
          auto who = authenticate(req, call);
          from_cookie = !call.session_token.empty();
          rate_limit("principal:" + who.id + ":" + who.agent_id);
          return who;
        },
        [this](const HttpRequest& req, bool& from_cookie) {
          Call call{req, {}, {}, {}, {}};
          auto who = authenticate(req, call, /*record_use=*/false);
          from_cookie = !call.session_token.empty();
          return who;
        },
        options.cors_origins);
  }

  // `record_use` false: a recheck of a request or connection already admitted
  // (sessions only: an API key still notes its use once a minute).
  Principal authenticate(const HttpRequest& req, Call& call, bool record_use = true) {
    std::string credential;
    if (const auto* h = req.header("authorization")) {
      if (h->size() > 7 && (h->starts_with("Bearer ") || h->starts_with("bearer "))) {
        credential = h->substr(7);
      } else {
        throw Error(ErrorCode::kUnauthenticated,
                    "the Authorization header must be \"Bearer <token or API key>\"");
      }
    } else if (const auto* k = req.header("x-api-key")) {
      credential = *k;
    }
    if (credential.empty()) {
      if (auto token = cookie(req, kSessionCookie); !token.empty())
        return from_session(req, call, token, record_use);
      throw Error(ErrorCode::kUnauthenticated,
                  "credentials required: send \"Authorization: Bearer <access token or API key>\" "
                  "or a session cookie");
    }
    auto p = identity.authenticate(credential, req.client_address);
    if (!credential.starts_with("dck_")) call.access_token = credential;
    return p;
  }

  // A browser: the session cookie, and for anything but a read the CSRF
  // header that matches it.
  Principal from_session(const HttpRequest& req, Call& call, const std::string& token,
                         bool record_use) {
    auto who = identity.authenticate_session(token, req.client_address, nullptr, record_use);
    if (req.method != "GET" && req.method != "HEAD") {
      const auto* csrf = req.header("x-csrf-token");
      if (!csrf || !sessions.check_csrf(token, *csrf)) {
        throw Error(ErrorCode::kPermissionDenied,
                    "csrf: a request with a session cookie must send the value of the " +
                        std::string(kCsrfCookie) + " cookie in the X-CSRF-Token header");
      }
    }
    call.session_token = token;
    return who;
  }

  void rate_limit(const std::string& who) {
    const auto r = platform.cache().take("http:" + who, options.rate_limit, options.rate_burst);
    if (!r.allowed) {
      const auto secs = std::max<long long>(1, (r.retry_after.count() + 999) / 1000);
      throw Error(ErrorCode::kResourceExhausted,
                  "rate limit of " + std::to_string(static_cast<long long>(options.rate_limit)) +
                      " requests/s exceeded; retry after " + std::to_string(secs) + " s");
    }
  }

  void observe(std::size_t route, int status, double seconds, const Route* r) {
    Counter* counter = nullptr;
    Histogram* hist = nullptr;
    {
      std::lock_guard lock(metrics_mu);
      auto& c = request_counters[{route, status}];
      if (!c) {
        c = &platform.metrics().counter("http_requests_total",
                                        "HTTP requests by route, method and status",
                                        {{"method", r ? r->method : "-"},
                                         {"route", r ? r->path : "unmatched"},
                                         {"status", std::to_string(status)}});
      }
      counter = c;
      auto& h = latencies[route];
      if (!h) {
        h = &platform.metrics().histogram(
            "http_request_duration_seconds", "HTTP request latency by route",
            Histogram::default_buckets(),
            {{"method", r ? r->method : "-"}, {"route", r ? r->path : "unmatched"}});
      }
      hist = h;
    }
    counter->inc();
    hist->observe(seconds);
  }

  // The origin to allow for this request, or "" (no CORS headers).
  std::string cors_origin(const HttpRequest& req) const {
    const auto* origin = req.header("origin");
    if (!origin || options.cors_origins.empty()) return {};
    for (const auto& allowed : options.cors_origins) {
      if (allowed == "*") return "*";
      if (allowed == *origin) return *origin;
    }
    return {};
  }

  HttpResponse preflight(const HttpRequest& req, const Router::Match& m) {
    const auto origin = cors_origin(req);
    if (origin.empty()) {
      return problem(403, "permission_denied",
                     "origin " + (req.header("origin") ? *req.header("origin") : std::string("?")) +
                         " may not call this API (cors_origins)");
    }
    std::string methods;
    for (const auto& a : m.allowed) methods += (methods.empty() ? "" : ", ") + a;
    if (m.route) methods = m.route->method;
    HttpResponse r;
    r.status = 204;
    r.content_type.clear();
    r.headers = {
        {"Access-Control-Allow-Origin", origin},
        {"Vary", "Origin"},
        {"Access-Control-Allow-Methods", methods.empty() ? "GET" : methods},
        {"Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, X-API-Key"},
        {"Access-Control-Max-Age", "600"}};
    return r;
  }

  // A refusal before the request is queued: audited, counted and with CORS
  // headers like any answer of handle().
  HttpResponse refuse_early(const HttpRequest& req, const Router::Match& m, const Error& e) {
    HttpResponse r;
    try {
      // The address's request rate bounds the audit rows a flood can write.
      rate_limit("addr:" + req.client_address);
      audit(services, req, "", "login.throttled", "", {{"reason", e.what()}});
      r = error_problem(e);
    } catch (const Error& limited) {
      r = error_problem(limited);
    }
    const std::size_t index =
        m.route ? static_cast<std::size_t>(m.route - router.routes().data()) : SIZE_MAX;
    observe(index, r.status, 0, m.route);
    add_cors(req, r);
    return r;
  }

  void add_cors(const HttpRequest& req, HttpResponse& res) const {
    if (const auto origin = cors_origin(req); !origin.empty()) {
      res.headers.emplace_back("Access-Control-Allow-Origin", origin);
      res.headers.emplace_back("Vary", "Origin");
      res.headers.emplace_back("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate");
    }
  }

  HttpResponse handle(const HttpRequest& req) {
    const auto start = std::chrono::steady_clock::now();
    if (req.method == "OPTIONS" && req.header("access-control-request-method")) {
      auto m = router.match(*req.header("access-control-request-method"), req.path);
      return preflight(req, m);
    }
    auto m = router.match(req.method, req.path);
    const std::size_t index =
        m.route ? static_cast<std::size_t>(m.route - router.routes().data()) : SIZE_MAX;
    HttpResponse res = dispatch(req, m);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    observe(index, res.status, seconds, m.route);
    add_cors(req, res);
    return res;
  }

  // problem+json for an Error, with Retry-After from "retry after N s" in
  // its message when a limiter said so.
  static HttpResponse error_problem(const Error& e) {
    auto r = problem(e);
    if (e.code() == ErrorCode::kResourceExhausted) {
      const std::string msg = e.what();
      if (const auto at = msg.find("retry after "); at != std::string::npos) {
        for (auto& [name, value] : r.headers) {
          if (name == "Retry-After") value = std::to_string(std::atoll(msg.c_str() + at + 12));
        }
      }
    }
    return r;
  }

  HttpResponse dispatch(const HttpRequest& req, Router::Match& m) {
    if (!m.route) {
      if (m.bad_path) return problem(400, "invalid_argument", "malformed percent-encoding in path");
      if (!m.allowed.empty()) {
        std::string allow;
        for (const auto& a : m.allowed) allow += (allow.empty() ? "" : ", ") + a;
        auto r =
            problem(405, "method_not_allowed",
                    req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")");
        r.headers.emplace_back("Allow", allow);
        return r;
      }
      return problem(404, "not_found", "no route for " + req.method + " " + req.path);
    }
    std::string principal_id;
    bool session_failed = false;  // the caller's session cookie was refused
    try {
      if (!m.route->takes_query && !req.query.empty()) {
        throw ValidationError("query",
                              m.route->method + " " + m.route->path + " takes no query parameters");
      }
      Call call{req, std::move(m.params), {}, {}, {}};
      if (m.route->public_route) {
        // Logins and refreshes are limited per client address.
        if (req.method != "GET") rate_limit("addr:" + req.client_address);
      } else {
        try {
          call.principal = authenticate(req, call);
        } catch (const Error& e) {
          session_failed = e.code() == ErrorCode::kUnauthenticated &&
                           !req.header("authorization") && !req.header("x-api-key") &&
                           !cookie(req, kSessionCookie).empty();
          throw;
        }
        principal_id = call.principal.id;
        call.recheck = [this, &req] {
          Call again{req, {}, {}, {}, {}};
          return authenticate(req, again, /*record_use=*/false);
        };
        rate_limit("principal:" + call.principal.id + ":" + call.principal.agent_id);
      }
      return m.route->handler(call);
    } catch (const ValidationError& e) {
      return problem(e);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kPermissionDenied) {
        audit(services, req, principal_id, "permission.denied", req.method + " " + req.path,
              {{"reason", e.what()}});
      }
      if (e.code() == ErrorCode::kInternal) {
        log.error("request failed",
                  {{"method", req.method}, {"path", req.path}, {"error", e.what()}});
      }
      auto r = error_problem(e);
      if (session_failed) {
        // A session cookie that no longer works: the browser forgets it,
        // rather than present it again with every request.
        for (auto& h : clear_session_cookies(req.tls)) r.headers.push_back(std::move(h));
      }
      return r;
    } catch (const std::exception& e) {
      log.error("request failed",
                {{"method", req.method}, {"path", req.path}, {"error", e.what()}});
      return problem(500, "internal", "internal error");
    }
  }
};

ServerApp::ServerApp(Platform& platform, AppOptions options)
    : impl_(std::make_unique<Impl>(platform, std::move(options))) {}

ServerApp::~ServerApp() = default;

std::string ServerApp::bootstrap_admin() {
  UserFilter any;
  any.limit = 1;
  if (!impl_->users.list(any).users.empty()) return {};
  NewUser admin;
  admin.email = "admin@localhost.localdomain";
  admin.username = "admin";
  admin.password = random_password();
  admin.role = Role::kAdmin;
  impl_->users.create(admin);
  return admin.password;
}

HttpResponse ServerApp::handle(const HttpRequest& req) { return impl_->handle(req); }

const std::vector<Route>& ServerApp::routes() const noexcept { return impl_->router.routes(); }

WsDecision ServerApp::upgrade(const HttpRequest& req, std::shared_ptr<WsConnection> connection) {
  return impl_->ws_hub->upgrade(req, std::move(connection));
}

Admission ServerApp::classify(const HttpRequest& req) const {
  const auto m = impl_->router.match(req.method, req.path);
  Admission a;
  a.lane = m.route ? m.route->lane : Lane::kInline;
  // An address at its limit of failed authentications is refused before it
  // takes a place in the login queue (and a thread's worth of hashing).
  if (a.lane == Lane::kHeavy) {
    a.share = address_group(req.client_address);  // one IPv6 host is one share, not 2^64
    try {
      impl_->identity.check_login_address(req.client_address);
    } catch (const Error& e) {
      a.refusal = impl_->refuse_early(req, m, e);
    }
  }
  return a;
}

void ServerApp::set_draining() noexcept { impl_->draining.store(true); }

}  // namespace devcycle::server
