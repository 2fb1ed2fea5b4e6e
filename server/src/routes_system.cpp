// The routes around the API: probes (/healthz, /readyz), Prometheus metrics,
// the OpenAPI document and Swagger UI (/docs). All are public; /metrics
// checks its own token when it has one.
#include <sodium.h>

#include <fstream>
#include <sstream>

#include "devcycle/common/error.h"
#include "problem.h"
#include "server_app.h"
#include "services.h"

namespace devcycle::server {

namespace {

std::string content_type_of(const std::string& path) {
  const auto ends = [&](std::string_view s) { return path.ends_with(s); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".png")) return "image/png";
  if (ends(".json")) return "application/json";
  if (ends(".map")) return "application/json";
  return "application/octet-stream";
}

constexpr std::string_view kDocsPage = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DevCycle API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>
)";

HttpResponse get_health(Call&) { return json_response(200, {{"status", "ok"}}); }

HttpResponse get_readiness(Services& s, Call&) {
  if (s.draining.load()) {
    return problem(503, "unavailable", "the server is shutting down");
  }
  s.platform.database().read([](Txn& t) { t.query("SELECT 1"); });
  return json_response(200, {{"status", "ready"}});
}

// Compared in constant time; a scraper without it learns nothing.
void check_metrics_token(const HttpRequest& req, const std::string& token) {
  const auto* h = req.header("authorization");
  const std::string expected = "Bearer " + token;
  if (!h || h->size() != expected.size() ||
      sodium_memcmp(h->data(), expected.data(), expected.size()) != 0) {
    throw Error(ErrorCode::kUnauthenticated,
                "/metrics needs \"Authorization: Bearer <metrics_token>\"");
  }
}

RouteHandler get_metrics(Services& s, std::string token) {
  return [&s, token = std::move(token)](Call& c) {
    if (!token.empty()) check_metrics_token(c.req, token);
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = s.platform.metrics().render_prometheus();
    return r;
  };
}

HttpResponse get_open_api_document(Call&) {
  HttpResponse r;
  r.body = std::string(openapi_document());
  return r;
}

RouteHandler get_docs(std::string dir) {
  return [dir = std::move(dir)](Call&) {
    if (dir.empty()) {
      return problem(404, "not_found", "Swagger UI is not installed (swagger_ui_dir is empty)");
    }
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(kDocsPage);
    return r;
  };
}

RouteHandler get_docs_file(std::string dir) {
  return [dir = std::move(dir)](Call& c) {
    const auto& file = c.param("file");
    // Only plain file names from the one directory: never a path.
    const bool plain = !file.empty() && file.find('/') == std::string::npos &&
                       file.find("..") == std::string::npos && file.front() != '.';
    if (dir.empty() || !plain) {
      return problem(404, "not_found", "no such file");
    }
    std::ifstream in(dir + "/" + file, std::ios::binary);
    if (!in) return problem(404, "not_found", "no such file");
    std::ostringstream body;
    body << in.rdbuf();
    HttpResponse r;
    r.content_type = content_type_of(file);
    r.body = body.str();
    r.headers.emplace_back("Cache-Control", "public, max-age=3600");
    return r;
  };
}

}  // namespace

std::vector<Route> system_routes(Services& s, const AppOptions& options) {
  return {
      {.method = "GET", .path = "/healthz", .handler = get_health, .public_route = true},
      {.method = "GET",
       .path = "/readyz",
       .handler = bound(s, get_readiness),
       .public_route = true},
      {.method = "GET",
       .path = "/metrics",
       .handler = get_metrics(s, options.metrics_token),
       .public_route = true},
      {.method = "GET",
       .path = "/openapi.json",
       .handler = get_open_api_document,
       .public_route = true},
      {.method = "GET",
       .path = "/docs",
       .handler = get_docs(options.swagger_ui_dir),
       .public_route = true},
      {.method = "GET",
       .path = "/docs/{file}",
       .handler = get_docs_file(options.swagger_ui_dir),
       .public_route = true},
  };
}

}  // namespace devcycle::server
