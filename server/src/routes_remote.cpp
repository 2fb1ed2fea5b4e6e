// Agents in other processes over the API (their deployed version's executor
// is "remote"): they long-poll for tasks with a lease, extend it, send log
// lines, and complete or fail — each call fenced by attempt and lease owner
// (docs/api.md, "Remote agents").
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>

#include "devcycle/common/error.h"
#include "input.h"
#include "problem.h"
#include "services.h"

namespace devcycle::server {

namespace {

// Wakes long-polling claims when something may have become claimable.
struct ClaimWaiter {
  // Claims one caller may have waiting at once: the wait lane's threads are
  // shared by everyone, and one caller must not hold them all.
  static constexpr int kMaxWaitingPerCaller = 4;

  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t generation = 0;
  std::map<std::string, int> waiting;  // by caller
  Subscription events;

  void bump() {
    {
      std::lock_guard lock(mu);
      ++generation;
    }
    cv.notify_all();
  }
};

Json to_json(const RemoteTask& r) {
  return {{"task_id", r.task_id},
          {"run_id", r.run_id},
          {"task_key", r.task_key},
          {"attempt", r.attempt},
          {"lease_owner", r.lease_owner},
          {"input", Json::parse(r.input.empty() ? "null" : r.input, nullptr, false)},
          {"idempotency_key", r.idempotency_key},
          {"lease_expires_at", format_time(r.lease_expires_at)}};
}

// The fence a worker sends back with the task it names.
struct Fence {
  std::string task_id;
  int attempt = 0;
  std::string lease_owner;
};

Fence fence(Call& c, BodyInput& in) {
  const auto attempt = in.integer("attempt", 1, 1000, true);
  const auto owner = in.string("lease_owner", true);
  return Fence{c.param("id"), static_cast<int>(attempt.value_or(0)), owner.value_or("")};
}

HttpResponse stale(const Fence& f) {
  return problem(409, "conflict",
                 "task " + f.task_id + " attempt " + std::to_string(f.attempt) +
                     " no longer holds its lease (it expired, or the task was retried, cancelled "
                     "or finished): stop working on it");
}

// Up to `max` tasks, waiting up to wait_ms for one when there is none.
HttpResponse claim_tasks(Services& s, ClaimWaiter& waiter, Call& c) {
  auto runs = as(s, c).runs();
  const auto agent = as(s, c).agents().acting_as(c.param("id"));
  BodyInput in(c.req, /*empty_ok=*/true);
  const auto max = in.integer("max", 1, 100).value_or(1);
  const auto lease_ms = in.integer("lease_ms", 1000, 3'600'000).value_or(60'000);
  const auto wait_ms = in.integer("wait_ms", 0, 30'000).value_or(0);
  in.done();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  // Per principal, however many agents and keys it has.
  const std::string caller = c.principal.id;
  if (wait_ms > 0) {
    std::lock_guard lock(waiter.mu);
    if (waiter.waiting[caller] >= ClaimWaiter::kMaxWaitingPerCaller) {
      throw Error(ErrorCode::kResourceExhausted,
                  "this caller already has " + std::to_string(ClaimWaiter::kMaxWaitingPerCaller) +
                      " claims waiting; retry after 1 s");
    }
    ++waiter.waiting[caller];
  }
  struct Done {
    ClaimWaiter& w;
    const std::string& caller;
    bool counted;
    ~Done() {
      if (!counted) return;
      std::lock_guard lock(w.mu);
      if (--w.waiting[caller] == 0) w.waiting.erase(caller);
    }
  } done{waiter, caller, wait_ms > 0};
  auto checked = std::chrono::steady_clock::now();
  for (;;) {
    // While it waits, the claim serves only credentials that still
    // hold: a revoked key or a deactivated owner ends it within a second.
    if (const auto t = std::chrono::steady_clock::now();
        c.recheck && t - checked >= std::chrono::seconds(1)) {
      checked = t;
      std::optional<Principal> now;
      try {
        now = c.recheck();
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kUnauthenticated) throw;
        // e.g. the cache is down for a moment: check again in a second
      }
      if (now && (now->id != c.principal.id || now->role != c.principal.role ||
                  now->must_change_password != c.principal.must_change_password)) {
        throw Error(ErrorCode::kUnauthenticated,
                    "the credentials' rights changed while the claim waited");
      }
    }
    std::uint64_t seen = 0;
    {
      std::lock_guard lock(waiter.mu);
      seen = waiter.generation;
    }
    const auto got =
        runs.claim(agent.id, static_cast<int>(max), std::chrono::milliseconds(lease_ms));
    const auto now = std::chrono::steady_clock::now();
    if (!got.empty() || now >= deadline || s.draining.load()) {
      Json items = Json::array();
      for (const auto& t : got) items.push_back(to_json(t));
      return json_response(200, page(std::move(items), ""));
    }
    // Until a task event, at most a second (another engine's tasks
    // are seen by polling), and never past the deadline.
    std::unique_lock lock(waiter.mu);
    waiter.cv.wait_until(lock, std::min(deadline, now + std::chrono::seconds(1)),
                         [&] { return waiter.generation != seen || s.draining.load(); });
  }
}

HttpResponse extend_task_lease(Services& s, Call& c) {
  BodyInput in(c.req);
  auto f = fence(c, in);
  const auto lease_ms = in.integer("lease_ms", 1000, 3'600'000).value_or(60'000);
  in.done();
  if (!as(s, c).runs().extend(f.task_id, f.attempt, f.lease_owner,
                              std::chrono::milliseconds(lease_ms)))
    return stale(f);
  return json_response(200, {{"task_id", f.task_id}, {"extended", true}});
}

HttpResponse append_task_log(Services& s, Call& c) {
  BodyInput in(c.req);
  auto f = fence(c, in);
  const auto level = in.string("level").value_or("info");
  const auto message = in.string("message", true).value_or("");
  in.done();
  const auto parsed = parse_log_level(level, "level");
  if (!as(s, c).runs().log(f.task_id, f.attempt, f.lease_owner, parsed, message)) return stale(f);
  return no_content();
}

// completeTask (`ok`) or failTask.
RouteHandler finish_task(Services& s, bool ok) {
  return [&s, ok](Call& c) {
    BodyInput in(c.req);
    auto f = fence(c, in);
    std::string result;
    bool retryable = true;
    if (ok) {
      result = in.any_json("output").value_or("null");
    } else {
      result = in.string("error", true).value_or("");
      retryable = in.boolean("retryable").value_or(true);
    }
    in.done();
    if (!as(s, c).runs().complete(f.task_id, f.attempt, f.lease_owner, ok, result, retryable))
      return stale(f);
    return json_response(200, {{"task_id", f.task_id}, {"recorded", true}});
  };
}

}  // namespace

std::vector<Route> remote_routes(Services& s) {
  auto& engine = s.platform.engine();
  auto waiter = std::make_shared<ClaimWaiter>();
  waiter->events = engine.subscribe([w = std::weak_ptr<ClaimWaiter>(waiter)](const EngineEvent& e) {
    if (e.kind == EngineEvent::Kind::kTaskLog) return;
    if (auto p = w.lock()) p->bump();
  });
  return {
      {.method = "POST",
       .path = "/api/v1/agents/{id}/claims",
       .handler = [&s, waiter](Call& c) { return claim_tasks(s, *waiter, c); },
       .lane = Lane::kWait},
      {.method = "POST",
       .path = "/api/v1/tasks/{id}/lease",
       .handler = bound(s, extend_task_lease)},
      {.method = "POST", .path = "/api/v1/tasks/{id}/logs", .handler = bound(s, append_task_log)},
      {.method = "POST", .path = "/api/v1/tasks/{id}/complete", .handler = finish_task(s, true)},
      {.method = "POST", .path = "/api/v1/tasks/{id}/fail", .handler = finish_task(s, false)},
  };
}

}  // namespace devcycle::server
