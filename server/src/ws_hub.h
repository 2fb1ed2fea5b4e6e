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

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devcycle/auth/authz.h"
#include "http_server.h"
#include "services.h"

namespace devcycle::server {

class WsHub {
 public:
  // `authenticate` is the edge's check of a request's credentials (throws
  // Error for none or bad ones); it tells whether they came from a session
  // cookie, which needs an allowed Origin (no cross-site WebSocket hijacking).
  using Authenticate = std::function<Principal(const HttpRequest&, bool& from_cookie)>;
  // `recheck` authenticates an open connection's upgrade request again (no
  // rate limit); every `recheck_interval` each connection is rechecked, and
  // one whose credentials no longer hold — an expired or revoked token, a
  // revoked key or session, a deactivated or changed account — is closed
  // with 1008.
  WsHub(Services& services, Authenticate authenticate, Authenticate recheck,
        std::vector<std::string> cors_origins,
        std::chrono::milliseconds recheck_interval = std::chrono::seconds(2));
  ~WsHub();
  WsHub(const WsHub&) = delete;
  WsHub& operator=(const WsHub&) = delete;

  WsDecision upgrade(const HttpRequest& req, std::shared_ptr<WsConnection> connection);

 private:
  struct Watched {
    std::weak_ptr<WsConnection> connection;
    HttpRequest request;  // its credentials, to check again
    Principal who;
  };
  void recheck_loop();

  Services& services_;
  Authenticate authenticate_;
  Authenticate recheck_;
  std::vector<std::string> cors_origins_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<Watched> watched_;
  std::thread thread_;  // last: started when the rest exists
};

}  // namespace devcycle::server
