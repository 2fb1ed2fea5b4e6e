#include "ws_hub.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "devcycle/common/error.h"
#include "devcycle/common/json_limits.h"
#include "problem.h"
#include "serialize.h"

namespace devcycle::server {

namespace {

// One connected client: what it subscribed to, and the engine and registry
// subscriptions that feed it while it is connected.
class WsClient final : public WsHandler, public std::enable_shared_from_this<WsClient> {
 public:
  WsClient(Services& s, Principal who, std::weak_ptr<WsConnection> connection)
      : s_(s), who_(std::move(who)), connection_(std::move(connection)) {}

  void start() {
    std::weak_ptr<WsClient> self = shared_from_this();
    engine_ = s_.platform.engine().subscribe([self](const EngineEvent& e) {
      if (auto c = self.lock()) c->on_engine(e);
    });
    registry_ = s_.platform.registry().subscribe([self](const AgentEvent& e) {
      if (auto c = self.lock()) c->on_agent(e);
    });
  }

  void on_message(const std::string& text) override {
    if (json_deeper_than(text)) {
      return error("invalid_argument", "frame: nested deeper than " +
                                           std::to_string(kMaxJsonDepth) + " levels, the limit");
    }
    const auto j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return error("invalid_argument", "not a JSON object");
    const auto type = j.value("type", "");
    const auto topic = j.value("topic", "");
    const auto id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : "";
    if (type != "subscribe" && type != "unsubscribe") {
      return error("invalid_argument", "type: must be subscribe or unsubscribe");
    }
    const bool on = type == "subscribe";
    try {
      if (topic == "run" || topic == "task_logs") {
        if (id.empty()) return error("invalid_argument", "id: required for topic " + topic);
        if (on) readable(topic, id);
        std::lock_guard lock(mu_);
        auto& set = topic == "run" ? runs_ : task_logs_;
        if (on)
          set.insert(id);
        else
          set.erase(id);
      } else if (topic == "runs") {
        // Every run: for those who may read anyone's runs.
        if (on) s_.platform.as(who_).runs().check_watch_all();
        std::lock_guard lock(mu_);
        all_runs_ = on;
      } else if (topic == "agents") {
        if (on) s_.platform.as(who_).agents().check_watch_all();
        std::lock_guard lock(mu_);
        agents_ = on;
      } else {
        return error("invalid_argument", "topic: must be run, task_logs, runs or agents");
      }
    } catch (const Error& e) {
      return error(e.code() == ErrorCode::kNotFound ? "not_found" : "permission_denied", e.what());
    }
    Json ack = {{"type", on ? "subscribed" : "unsubscribed"}, {"topic", topic}};
    if (!id.empty()) ack["id"] = id;
    send(ack);
  }

  void on_close() override {
    engine_.reset();
    registry_.reset();
    connection_.reset();
  }

 private:
  // The caller may read this run (or the task's run); Error otherwise.
  void readable(const std::string& topic, const std::string& id) {
    auto runs = s_.platform.as(who_).runs();
    if (topic == "task_logs") {
      runs.task(id);
    } else {
      runs.get(id);
    }
  }

  void on_engine(const EngineEvent& e) {
    bool wanted = false;
    {
      std::lock_guard lock(mu_);
      wanted = e.kind == EngineEvent::Kind::kTaskLog ? task_logs_.count(e.task_id) > 0
                                                     : all_runs_ || runs_.count(e.run_id) > 0;
    }
    if (!wanted) return;
    if (e.kind == EngineEvent::Kind::kTaskLog) {
      send({{"type", "log"},
            {"task_id", e.task_id},
            {"run_id", e.run_id},
            {"task_key", e.task_key},
            {"attempt", e.attempt},
            {"level", e.status},
            {"message", s_.secrets.redact(e.message)},
            {"at", format_time(e.at)}});
      return;
    }
    Json event = {{"kind", to_string(e.kind)},
                  {"run_id", e.run_id},
                  {"status", e.status},
                  {"at", format_time(e.at)}};
    if (!e.task_id.empty()) {
      event["task_id"] = e.task_id;
      event["task_key"] = e.task_key;
      event["attempt"] = e.attempt;
    }
    if (!e.error.empty()) event["error"] = s_.secrets.redact(e.error);
    send({{"type", "event"}, {"topic", "run"}, {"event", std::move(event)}});
  }

  void on_agent(const AgentEvent& e) {
    {
      std::lock_guard lock(mu_);
      if (!agents_) return;
    }
    Json event = {{"kind", to_string(e.kind)},
                  {"agent_id", e.agent_id},
                  {"owner", e.owner},
                  {"name", e.name},
                  {"old_status", to_string(e.old_status)},
                  {"status", to_string(e.new_status)},
                  {"at", format_time(e.at)}};
    if (!e.version.empty()) event["version"] = e.version;
    send({{"type", "event"}, {"topic", "agents"}, {"event", std::move(event)}});
  }

  void error(const std::string& code, const std::string& detail) {
    send({{"type", "error"}, {"code", code}, {"detail", detail}});
  }

  void send(const Json& j) {
    if (auto c = connection_.lock())
      c->send(j.dump(-1, ' ', false, Json::error_handler_t::replace));
  }

  Services& s_;
  const Principal who_;
  std::weak_ptr<WsConnection> connection_;
  std::mutex mu_;
  std::set<std::string> runs_, task_logs_;
  bool all_runs_ = false, agents_ = false;
  Subscription engine_, registry_;
};

}  // namespace

WsHub::WsHub(Services& services, Authenticate authenticate, Authenticate recheck,
             std::vector<std::string> cors_origins, std::chrono::milliseconds recheck_interval)
    : services_(services),
      authenticate_(std::move(authenticate)),
      recheck_(std::move(recheck)),
      cors_origins_(std::move(cors_origins)),
      interval_(recheck_interval),
      thread_([this] { recheck_loop(); }) {}

WsHub::~WsHub() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WsHub::recheck_loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [&] { return stopping_; })) {
    auto watched = watched_;  // checked without the lock: upgrades go on meanwhile
    lock.unlock();
    std::vector<const WsConnection*> gone;
    for (const auto& w : watched) {
      auto connection = w.connection.lock();
      if (!connection) {
        gone.push_back(nullptr);
        continue;
      }
      std::string why;
      try {
        bool from_cookie = false;
        const auto now = recheck_(w.request, from_cookie);
        // The same principal with the same rights, or the old state's rights end.
        if (now.id != w.who.id || now.role != w.who.role) why = "the account's role changed";
        if (now.must_change_password && !w.who.must_change_password)
          why = "an admin reset the password";
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kUnauthenticated) continue;  // e.g. the cache is down: later
        why = e.what();
      } catch (const std::exception&) {
        continue;
      }
      if (!why.empty()) {
        connection->close_for_policy("credentials no longer valid: " + why);
        gone.push_back(connection.get());
      }
    }
    lock.lock();
    std::erase_if(watched_, [&](const Watched& w) {
      const auto c = w.connection.lock();
      return !c || std::find(gone.begin(), gone.end(), c.get()) != gone.end();
    });
  }
}

WsDecision WsHub::upgrade(const HttpRequest& req, std::shared_ptr<WsConnection> connection) {
  WsDecision d;
  try {
    bool from_cookie = false;
    auto who = authenticate_(req, from_cookie);
    if (from_cookie) {
      // A browser sends its cookies to /ws from any page: only this server's
      // own pages and the allowed origins may use them.
      const auto* origin = req.header("origin");
      const auto* host = req.header("host");
      bool allowed =
          origin && host && (*origin == std::string(req.tls ? "https://" : "http://") + *host);
      for (const auto& o : cors_origins_)
        allowed = allowed || (origin && (o == "*" || o == *origin));
      if (!allowed) {
        d.refusal = problem(403, "permission_denied",
                            "origin: a session cookie may open /ws only from this server's own "
                            "pages or an allowed origin (cors_origins)");
        return d;
      }
    }
    HttpRequest kept = req;
    kept.body.clear();
    {
      std::lock_guard lock(mu_);
      watched_.push_back({connection, std::move(kept), who});
    }
    auto client = std::make_shared<WsClient>(services_, std::move(who), connection);
    client->start();
    d.handler = std::move(client);
  } catch (const Error& e) {
    d.refusal = problem(e);
  }
  return d;
}

}  // namespace devcycle::server
