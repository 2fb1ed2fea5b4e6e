// /ws: live run, task and agent events and task log lines over a WebSocket,
// for an authenticated caller, filtered by what it may read (docs/api.md).
//
// The client sends {"type": "subscribe", "topic": "run", "id": RUN} (one
// run's events, its tasks' included), "task_logs" with a task id (its log
// lines as they are written), "runs" (every run's events: for those who may
// read any run) or "agents" (registry events); "unsubscribe" the same way.
// The server answers {"type": "subscribed" | "unsubscribed" | "error", ...}
// and pushes {"type": "event", "topic": "run" | "agents", "event": {...}}
// and {"type": "log", ...}. A slow reader loses frames and is told
// ({"type": "dropped", "count": N}); it never makes the server's memory grow.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "devcycle/authz.h"
#include "http_server.h"
#include "services.h"

namespace devcycle::server {

class WsHub {
 public:
  // `authenticate` is the edge's check of a request's credentials (throws
  // Error for none or bad ones); it tells whether they came from a session
  // cookie, which needs an allowed Origin (no cross-site WebSocket hijacking).
  using Authenticate = std::function<Principal(const HttpRequest&, bool& from_cookie)>;
  WsHub(Services& services, Authenticate authenticate, std::vector<std::string> cors_origins);

  WsDecision upgrade(const HttpRequest& req, std::shared_ptr<WsConnection> connection);

 private:
  Services& services_;
  Authenticate authenticate_;
  std::vector<std::string> cors_origins_;
};

}  // namespace devcycle::server
