// The application behind `devcycle serve`: the routes over the platform and
// its identity services (Platform::identity()), and the edge (authentication,
// rate limits, metrics, problem+json) around every request.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/platform/platform.h"
#include "http_server.h"
#include "router.h"

namespace devcycle::server {

struct AppOptions {
  // Requests per second and burst, per caller (an authenticated principal,
  // else the client address).
  double rate_limit = 200;
  double rate_burst = 400;
  // Where /docs serves Swagger UI from (swagger-ui-dist); empty: /docs is 404.
  std::string swagger_ui_dir;
  // Browser origins ("https://app.example.com") allowed to call the API
  // cross-origin; "*" allows any. Credentials are never allowed cross-origin
  // (the API takes bearer tokens, not cookies), so no origin is ever
  // reflected together with Access-Control-Allow-Credentials.
  std::vector<std::string> cors_origins;
  // How long an answer of GET /api/v1/agents is reused. Changes made through
  // this server drop it at once; changes made through another server on the
  // same database show within this. 0: every request reads the database.
  std::chrono::milliseconds agent_list_cache{1000};
  // When not empty, GET /metrics needs "Authorization: Bearer <this>".
  std::string metrics_token;
};

// Where the transport hands WebSocket upgrades to ServerApp::upgrade().
inline constexpr std::string_view kWebSocketPath = "/ws";

// Checks one CORS origin: scheme://host[:port], nothing else, or "*". Throws
// Error{kInvalidArgument} naming `setting`.
void check_cors_origin(const std::string& origin, const std::string& setting);

class ServerApp {
 public:
  // `platform` must outlive the app and have a master key (identity and
  // secrets); Error{kInvalidArgument} naming master_key otherwise.
  ServerApp(Platform& platform, AppOptions options);
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // On a database without users, creates the admin "admin" with a random
  // password and returns that password (to be shown once); otherwise "".
  std::string bootstrap_admin();

  HttpResponse handle(const HttpRequest& req);
  // Every route it answers, in the order they were added (the WebSocket of
  // /ws is not one: the transport upgrades it before routing).
  const std::vector<Route>& routes() const noexcept;
  // /ws (ws_hub.h): accepts an authenticated upgrade, or answers why not.
  WsDecision upgrade(const HttpRequest& req, std::shared_ptr<WsConnection> connection);
  Admission classify(const HttpRequest& req) const;
  // /readyz: the database answers and the server is not draining.
  void set_draining() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The OpenAPI 3.1 document (server/openapi.json, embedded at build time).
std::string_view openapi_document() noexcept;

}  // namespace devcycle::server
