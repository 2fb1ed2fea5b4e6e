#include "devcycle/engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "common/event_hub.h"
#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "common/quota_lock.h"
#include "devcycle/duration.h"
#include "devcycle/error.h"
#include "devcycle/json_schema.h"
#include "devcycle/uuid.h"
#include "messaging/bus_checks.h"
#include "messaging/outbox.h"
#include "workflow/expression_internal.h"
#include "workflow/ready_queue.h"
#include "workflow/run_progress.h"
#include "workflow/run_store.h"

namespace devcycle {

using internal::RunProgress;
using internal::RunStore;
using internal::TaskRow;
using nlohmann::json;

namespace {

Error run_not_found(std::string_view id) {
  return Error(ErrorCode::kNotFound, "run \"" + std::string(id.substr(0, 64)) + "\" not found");
}

Error task_not_found(std::string_view id) {
  return Error(ErrorCode::kNotFound, "task \"" + std::string(id.substr(0, 64)) + "\" not found");
}

// The "function" of a claim whose agent runs in another process: the topic
// its assignment goes to follows.
constexpr std::string_view kBusPrefix = "bus:";

Micros us(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// An agent that can run a task here, and the function that runs it.
struct Runner {
  std::string agent_id;
  std::string function;
  int capacity = 1;  // attempts it runs at once
};
using Runners = std::vector<Runner>;  // in the registry's order of preference

// A claimed attempt, on its way to a function.
// Whether runs of `run_owner` may be given to `agent` (remote agents).
bool may_serve(const Agent& agent, std::string_view run_owner) {
  return agent.shared || agent.owner == run_owner;
}

struct Claim {
  std::string task_id;
  std::string run_id;
  std::string task_key;
  std::string workflow_id;
  std::string function;
  std::string agent_id;
  std::string lease_owner;
  std::string input;
  int attempt = 0;
  Micros started_at = 0;
  Micros lease_expires_at = 0;
  std::optional<Micros> close_deadline;
  TaskTimeouts timeouts;
};

}  // namespace

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  Impl(Database& d, Registry& r, WorkflowCatalog& c, EngineOptions o)
      : db(d), registry(r), catalog(c), options(std::move(o)), rng(std::random_device{}()) {}

  Database& db;
  Registry& registry;
  WorkflowCatalog& catalog;
  EngineOptions options;

  std::mutex functions_mu;
  std::map<std::string, TaskFunction, std::less<>> functions;

  std::mutex definitions_mu;
  std::map<std::string, std::shared_ptr<const WorkflowDefinition>> definitions;  // by workflow id

  std::shared_ptr<internal::EventHub<EngineEvent>> hub =
      std::make_shared<internal::EventHub<EngineEvent>>();

  std::mutex cancelled_mu;
  std::set<std::string> cancelled;  // task ids whose attempt should stop

  std::mutex rng_mu;
  std::mt19937_64 rng;

  std::mutex tick_mu;
  std::optional<Micros> last_maintenance;

  // Which agent and function run a capability, remembered between ticks;
  // any registry change (deploy, disable, new agent) clears it.
  struct Resolution {
    Runners runners;
    Micros until = 0;
  };
  std::mutex resolutions_mu;
  std::map<std::string, Resolution> resolutions;
  Subscription registry_events;

  // Threads (workers > 0).
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::condition_variable scheduler_cv;
  std::deque<Claim> queue;
  int in_flight = 0;
  bool stopping = false;
  bool wake = false;
  // PostgreSQL: LISTEN for work other engines make (kWorkChannel), so that
  // an idle scheduler may sleep longer between polls (idle_wait()).
  Database::Listening listening;
  static constexpr const char* kWorkChannel = "devcycle_work";
  // The earliest future time a task this engine saw become ready is due
  // (a retry's backoff): an idle scheduler wakes by then at the latest.
  std::atomic<Micros> next_due{std::numeric_limits<Micros>::max()};
  // Whether the last claim pass found ready tasks (it may have taken none,
  // its agents being full): then the scheduler keeps polling at its pace.
  std::atomic<bool> saw_ready{false};
  std::thread scheduler;
  std::vector<std::thread> workers;

  Micros now() const { return options.clock->now(); }
  // Task log lines and errors never keep a secret's value.
  std::string redact(std::string_view text) const {
    return options.secrets ? options.secrets->redact(text) : std::string(text);
  }
  // A process agent's attempt: its argv from the executor, checked again
  // now (the allow-list or the file may have changed since it was claimed).
  std::string run_process_task(TaskContext& ctx, const TaskTimeouts& timeouts);

  BlobInfo store_artifact(const Claim& c, std::string_view name, std::string_view bytes) {
    if (!options.blobs) {
      throw Error(ErrorCode::kUnavailable, "artifacts: this engine has no blob store");
    }
    const bool ok_name = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                         std::none_of(name.begin(), name.end(), [](char ch) {
                           return ch == '/' || static_cast<unsigned char>(ch) < 0x20;
                         });
    if (!ok_name) {
      throw Error(ErrorCode::kInvalidArgument,
                  "artifact name: 1-255 bytes without '/' or control characters");
    }
    const auto info = options.blobs->put(bytes);
    Artifact a{new_uuid_v7(),     c.run_id,    c.task_id, c.task_key, c.attempt,
               std::string(name), info.digest, info.size, now()};
    db.write([&](Txn& t) { RunStore(t).insert_artifact(a); });
    return info;
  }

  // The task's input with the values of its secrets, which only the run's
  // owner's work may have (SecretStore::may_use, checked now: a secret may
  // have changed hands since the definition was stored).
  std::string resolve_secrets(const Claim& c) {
    if (!options.secrets || c.input.find("[secret:") == std::string::npos) return c.input;
    return options.secrets->resolve(c.task_id, c.input, owner_of_run(c.run_id));
  }

  // Completions, heartbeats and log lines of a remote agent: the agent must
  // still be one the run's owner may use (it may have been unshared since it
  // claimed the task). kPermissionDenied otherwise.
  void check_remote_serves(const TaskRun& task) {
    if (task.agent_id.empty()) return;  // not claimed: the fence refuses it
    const auto agent = registry.get(task.agent_id);
    if (!may_serve(agent, owner_of_run(task.run_id))) {
      throw Error(ErrorCode::kPermissionDenied,
                  "agent \"" + agent.name +
                      "\" may not work on this run: it belongs to another owner and the agent is "
                      "not shared");
    }
  }

  std::string owner_of_run(const std::string& run_id) {
    auto run = db.read([&](Txn& t) { return RunStore(t).find_run(run_id); });
    if (!run) throw Error(ErrorCode::kNotFound, "run \"" + run_id + "\" not found");
    return run->owner;
  }

  // Which ready task to claim next, kept from this engine's own events and
  // refilled from the database (see ready_queue.h).
  std::mutex ready_mu;
  internal::ReadyQueue ready{std::max<Micros>(1, us(options.aging_step))};
  Micros next_refill = 0;
  Micros last_refill = 0;

  // The outbox relay publishing events and assignments to options.bus (when set).
  std::unique_ptr<internal::OutboxRelay> relay;
  Subscription completions;  // from agents in other processes

  // Inside a write: the events of this change go to the outbox with it.
  void stage(Txn& t, const std::vector<EngineEvent>& events) {
    if (listening) wake_others(t, events);
    if (!options.bus || options.event_topic.empty() || events.empty()) return;
    std::vector<Message> messages;
    messages.reserve(events.size());
    for (const auto& e : events) {
      if (e.kind == EngineEvent::Kind::kTaskLog) continue;
      json j = {
          {"kind", to_string(e.kind)}, {"run_id", e.run_id}, {"status", e.status}, {"at", e.at}};
      if (!e.task_id.empty()) {
        j["task_id"] = e.task_id;
        j["task_key"] = e.task_key;
        j["attempt"] = e.attempt;
      }
      if (!e.error.empty()) j["error"] = e.error;
      if (e.kind == EngineEvent::Kind::kTaskReady || e.kind == EngineEvent::Kind::kTaskRetrying) {
        j["available_at"] = e.available_at;
        j["priority"] = e.priority;
      }
      messages.push_back({options.event_topic,
                          e.run_id,
                          {},
                          j.dump(-1, ' ', false, json::error_handler_t::replace)});
    }
    internal::Outbox::add(t, messages, now());
  }

  // Events are emitted after their transaction committed, so they can keep
  // the ready queue current. With worker threads, subscribers hear them on
  // one dispatch thread in the order they were emitted, so that no
  // subscriber runs on (and slows) the database's writer thread.
  void emit(std::vector<EngineEvent> events) {
    if (events.empty()) return;
    if (relay) relay->wake();
    note_ready(events);
    if (!dispatcher.joinable()) {
      hub->emit(events);
      return;
    }
    {
      std::lock_guard lock(emit_mu);
      emit_queue.push_back(std::move(events));
    }
    emit_cv.notify_one();
  }

  std::mutex emit_mu;
  std::condition_variable emit_cv;
  std::deque<std::vector<EngineEvent>> emit_queue;
  bool emit_stopping = false;
  std::thread dispatcher;

  void stop_dispatcher() {
    {
      std::lock_guard lock(emit_mu);
      emit_stopping = true;
    }
    emit_cv.notify_all();
    if (dispatcher.joinable()) dispatcher.join();
  }

  void dispatch_loop() {
    std::unique_lock lock(emit_mu);
    while (true) {
      emit_cv.wait(lock, [&] { return emit_stopping || !emit_queue.empty(); });
      if (emit_queue.empty()) return;  // stopping, and everything is out
      auto batch = std::move(emit_queue);
      emit_queue.clear();
      lock.unlock();
      for (const auto& events : batch) hub->emit(events);
      lock.lock();
    }
  }

  void note_ready(const std::vector<EngineEvent>& events) {
    const Micros at = now();
    for (const auto& e : events) {
      if (e.kind == EngineEvent::Kind::kTaskRetrying && e.available_at > at) {
        Micros due = next_due.load();
        while (e.available_at < due && !next_due.compare_exchange_weak(due, e.available_at)) {
        }
      }
    }
    // On PostgreSQL claims come from the database itself (claim_locked()).
    if (db.dialect() == Dialect::kPostgres) return;
    std::lock_guard lock(ready_mu);
    // Bounded: an engine that never claims (or whose tasks others run) would
    // otherwise keep every entry; the database refills what is still ready.
    if (ready.size() > kMaxQueued) {
      ready.clear();
      next_refill = 0;
    }
    for (const auto& e : events) {
      switch (e.kind) {
        case EngineEvent::Kind::kTaskReady:
        case EngineEvent::Kind::kTaskRetrying:
          ready.push({e.task_id, e.run_id, e.task_key.substr(0, e.task_key.find('[')), e.attempt,
                      e.priority, e.at, e.available_at},
                     at);
          break;
        case EngineEvent::Kind::kTaskStarted:
        case EngineEvent::Kind::kTaskSucceeded:
        case EngineEvent::Kind::kTaskFailed:
        case EngineEvent::Kind::kTaskSkipped:
        case EngineEvent::Kind::kTaskCancelled:
          ready.erase(e.task_id);
          break;
        default:
          break;
      }
    }
  }

  // Ready tasks made by other engines, or before this one started, come from
  // the database: when the queue is empty, and once a second.
  void refill_ready(Micros at) {
    {
      std::lock_guard lock(ready_mu);
      if (!ready.empty() && at < next_refill && at >= last_refill) return;
    }
    auto rows = db.read([&](Txn& t) {
      return RunStore(t).ready_tasks(at, std::max<Micros>(1, us(options.aging_step)), kRefillLimit);
    });
    std::lock_guard lock(ready_mu);
    for (auto& r : rows) {
      ready.push({std::move(r.task.id), std::move(r.task.run_id), std::move(r.task.definition_id),
                  r.task.attempt, r.task.priority, r.task.ready_at.value_or(at),
                  r.task.available_at.value_or(at)},
                 at);
    }
    last_refill = at;
    next_refill = at + 1'000'000;
  }
  static constexpr int kRefillLimit = 4096;
  static constexpr std::size_t kMaxQueued = 100'000;

  void notify_scheduler() {
    {
      std::lock_guard lock(queue_mu);
      wake = true;
    }
    scheduler_cv.notify_one();
  }

  // NOTIFY the engines on the database when this transaction leaves a task
  // ready that it did not claim itself.
  static void wake_others(Txn& t, const std::vector<EngineEvent>& events) {
    std::vector<std::string_view> ready;
    for (const auto& e : events) {
      if (e.kind == EngineEvent::Kind::kTaskReady || e.kind == EngineEvent::Kind::kTaskRetrying) {
        ready.push_back(e.task_id);
      } else if (e.kind == EngineEvent::Kind::kTaskStarted) {
        std::erase(ready, std::string_view(e.task_id));
      }
    }
    if (!ready.empty()) t.notify(kWorkChannel);
  }

  // How long an idle scheduler sleeps: poll_interval, or — when NOTIFY wakes
  // it for new work — longer after each empty pass, up to a second (timers,
  // expired leases and retries need no finer grain), and never past the
  // next retry this engine knows of.
  std::chrono::microseconds idle_wait(int idle_passes) {
    const auto poll = std::chrono::duration_cast<std::chrono::microseconds>(options.poll_interval);
    if (!listening) return poll;
    auto wait =
        std::min<std::chrono::microseconds>(poll * (1 << std::clamp(idle_passes, 0, 6)),
                                            std::max(poll, std::chrono::microseconds(1'000'000)));
    const Micros at = now();
    const Micros due = next_due.load();
    if (due != std::numeric_limits<Micros>::max()) {
      if (due <= at) {
        next_due.store(std::numeric_limits<Micros>::max());
        return poll;
      }
      wait = std::min(wait, std::chrono::microseconds(due - at));
    }
    return std::max(wait, poll);
  }

  // Which stored workflow version a run uses (never changes); bounded.
  std::mutex run_workflows_mu;
  std::unordered_map<std::string, std::string> run_workflows;

  std::string workflow_of(const std::string& run_id) {
    {
      std::lock_guard lock(run_workflows_mu);
      if (auto it = run_workflows.find(run_id); it != run_workflows.end()) return it->second;
    }
    return db.read([&](Txn& t) {
      RunStore store(t);
      return workflow_of(store, run_id);
    });
  }

  std::string workflow_of(RunStore& store, const std::string& run_id) {
    {
      std::lock_guard lock(run_workflows_mu);
      if (auto it = run_workflows.find(run_id); it != run_workflows.end()) return it->second;
    }
    auto id = store.workflow_id_of(run_id);
    std::lock_guard lock(run_workflows_mu);
    if (run_workflows.size() >= 100'000) run_workflows.clear();
    run_workflows.emplace(run_id, id);
    return id;
  }

  // The definition of a stored workflow version; safe inside a write closure
  // because it reads through the closure's transaction.
  std::shared_ptr<const WorkflowDefinition> definition(Txn& t, const std::string& workflow_id) {
    {
      std::lock_guard lock(definitions_mu);
      if (auto it = definitions.find(workflow_id); it != definitions.end()) return it->second;
    }
    auto rs = t.query("SELECT definition FROM workflows WHERE id = $1", {workflow_id});
    if (rs.empty())
      throw Error(ErrorCode::kInternal, "workflow version " + workflow_id + " is missing");
    auto [def, report] = validate_definition(rs[0][0].as_text());
    if (!def)
      throw Error(ErrorCode::kInternal,
                  "stored workflow " + workflow_id + " is invalid: " + report.describe());
    auto shared = std::make_shared<const WorkflowDefinition>(std::move(*def));
    std::lock_guard lock(definitions_mu);
    definitions.emplace(workflow_id, shared);
    return shared;
  }

  Micros backoff(const RetryPolicy& p, int attempt) {
    double delay = static_cast<double>(us(p.initial));
    for (int i = 1; i < attempt; ++i) delay *= p.multiplier;
    delay = std::min(delay, static_cast<double>(us(p.max)));
    std::lock_guard lock(rng_mu);
    const double j = std::uniform_real_distribution<double>(-p.jitter, p.jitter)(rng);
    return static_cast<Micros>(std::max(0.0, delay * (1.0 + j)));
  }

  Micros lease_until(const TaskTimeouts& t, Micros now, std::optional<Micros> close_deadline) {
    Micros until = now + us(t.heartbeat        ? *t.heartbeat
                            : t.start_to_close ? *t.start_to_close
                                               : options.default_lease);
    if (close_deadline) until = std::min(until, *close_deadline);
    return until;
  }

  // What runs need from the engine inside one write transaction: child
  // runs, the tasks that wait for them, and concurrency groups.
  struct Hooks final : internal::RunHooks {
    Hooks(Impl& i, Txn& tx, RunStore& s, Micros now, std::vector<EngineEvent>& e)
        : impl(i), t(tx), store(s), at(now), events(e) {}
    SecretStore* secrets() override { return impl.options.secrets; }
    Child start_child(const TaskRow& task, const TaskDefinition& d, const Run& parent,
                      const json& input) override;
    void run_finished(const Run& run, const RunStore::Finished& what) override;
    void cancel_child(const std::string& child_run_id, const std::string& reason) override;

    // Ends an open run as cancelled. Its running attempts are told at once,
    // before the transaction commits: should it roll back, such an attempt
    // may stop early, and its (fenced) completion is recorded as usual.
    void cancel_run(Run& run, const std::string& reason);
    // Inserts a new run (status running) with its tasks, admitted under its
    // workflow's concurrency limit: it may instead wait in `pending` (queue),
    // end cancelled at once (cancel_newest), or make room by cancelling the
    // oldest active runs of its group (cancel_oldest).
    void insert_run(Run& run, const std::string& workflow_id, const WorkflowDefinition& def,
                    RunProgress::ClaimHook claim = {});
    // Starts queued runs of a group while it has room.
    void release(const std::string& workflow, const std::string& key);
    RunProgress progress(const WorkflowDefinition& def, Run& run) {
      store.lock_run(run.id);  // progress is judged one transaction at a time
      return RunProgress(store, def, run, at, events, *this);
    }

    Impl& impl;
    Txn& t;
    RunStore& store;
    Micros at;
    std::vector<EngineEvent>& events;
  };

  // Advances the run of `row` after its task changed, in the same transaction.
  // Returns the run's task rows as they now are (empty when the run had
  // already finished).
  std::vector<TaskRow> advance(Txn& t, RunStore& store, const std::string& run_id, Micros at,
                               std::vector<EngineEvent>& events) {
    store.lock_run(run_id);
    auto run = store.find_run(run_id);
    if (!run || is_terminal(run->status)) return {};
    const auto def = definition(t, workflow_of(store, run_id));
    Hooks hooks(*this, t, store, at, events);
    auto progress = hooks.progress(*def, *run);
    progress.advance();
    return progress.take_rows();
  }

  // Running attempts per agent as one write transaction sees them, counted
  // on first use and kept as it claims, so that no agent runs more than its
  // capacity at once, across every engine on the database. `freed` names the
  // agent of an attempt this transaction just ended: it has room for one
  // claim without counting (the completion fast path claims at most one).
  class AgentLoad {
   public:
    explicit AgentLoad(RunStore& store, std::string freed = {})
        : store_(store), freed_(std::move(freed)) {}
    // The first runner with room, now counted; null when every one is full.
    const Runner* take(const Runners& runners) {
      if (shortcut_taken_) return nullptr;
      if (!running_ && !freed_.empty()) {
        for (const auto& r : runners) {
          if (r.agent_id != freed_) continue;
          shortcut_taken_ = true;
          return &r;
        }
      }
      if (store_.postgres()) {
        // Several engines claim at once: an agent's running attempts are
        // counted under a lock on that agent, held to the commit, so that
        // two engines cannot both fill its last slot. An agent another
        // transaction is counting now counts as full here (no waiting, no
        // deadlock); the next pass looks again.
        if (!running_) running_.emplace();
        for (const auto& r : runners) {
          auto it = running_->find(r.agent_id);
          if (it == running_->end()) {
            const auto n = store_.lock_and_count_running(r.agent_id);
            it = running_->emplace(r.agent_id, n ? *n : r.capacity).first;
          }
          if (it->second >= r.capacity) continue;
          ++it->second;
          return &r;
        }
        return nullptr;
      }
      if (!running_) running_ = store_.running_by_agent();
      for (const auto& r : runners) {
        auto& n = (*running_)[r.agent_id];
        if (n >= r.capacity) continue;
        ++n;
        return &r;
      }
      return nullptr;
    }

   private:
    RunStore& store_;
    std::string freed_;
    bool shortcut_taken_ = false;
    std::optional<std::unordered_map<std::string, int>> running_;
  };

  // Claims a task that this very transaction is readying (the row is not
  // written yet), for this engine, when it already knows who runs it:
  // as fenced as the conditional UPDATE of claim(), since the row was found
  // pending (or made) in the same transaction.
  std::optional<Claim> claim_in_place(TaskRow& row, const TaskDefinition& d,
                                      const std::string& workflow_id, Micros at,
                                      std::vector<EngineEvent>& events, AgentLoad& load) {
    if (row.task.available_at.value_or(at) > at || rate_limited(d)) return std::nullopt;
    const auto runners = remembered_resolution(d, at);
    // Bus agents are claimed by claim(), which sends their assignments.
    if (runners.empty() || runners.front().function.starts_with(kBusPrefix)) return std::nullopt;
    const Runner* found = load.take(runners);
    if (!found) return std::nullopt;
    std::optional<Micros> close_deadline;
    if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
    const auto lease = lease_until(d.timeouts, at, close_deadline);
    row.task.status = TaskStatus::kRunning;
    row.task.attempt += 1;
    row.task.agent_id = found->agent_id;
    row.task.lease_expires_at = lease;
    row.task.started_at = at;
    row.close_deadline = close_deadline;
    row.start_deadline.reset();
    row.lease_owner = options.engine_id;
    events.push_back({EngineEvent::Kind::kTaskStarted, row.task.run_id, row.task.id, row.task.key,
                      row.task.attempt, "running", "", at, ""});
    return Claim{
        row.task.id,     row.task.run_id,   row.task.key,   workflow_id,      found->function,
        found->agent_id, options.engine_id, row.task.input, row.task.attempt, at,
        lease,           close_deadline,    d.timeouts};
  }

  // How many more claims the workers' queue takes now (see tick()).
  int claim_room() {
    if (options.workers == 0) return 0;
    std::lock_guard lock(queue_mu);
    return claim_ahead() * options.workers - in_flight - static_cast<int>(queue.size());
  }

  // advance() after a success, reading only the rows concerned when it can.
  // When it can, it also claims one newly ready successor for the same
  // worker in the same write as readying it (`next`).
  std::vector<TaskRow> advance_after_success(Txn& t, RunStore& store, const Claim& c, Micros at,
                                             std::vector<EngineEvent>& events,
                                             std::optional<Claim>& next) {
    if (c.task_key.find('[') == std::string::npos && !store.run_paused(c.run_id)) {
      // The fence just held, so the run has not finished (a finished run has
      // cancelled its tasks and their leases) and it is not paused: it runs.
      Run run;
      run.id = c.run_id;
      run.status = RunStatus::kRunning;
      const auto def = definition(t, c.workflow_id);
      Hooks hooks(*this, t, store, at, events);
      auto progress = hooks.progress(*def, run);
      AgentLoad load(store, c.agent_id);
      progress.set_claim_hook([&](TaskRow& row, const TaskDefinition& d) {
        if (next) return false;
        next = claim_in_place(row, d, c.workflow_id, at, events, load);
        return next.has_value();
      });
      if (progress.advance_after_success(c.task_key)) return progress.take_rows();
      next.reset();  // nothing was written: the full advance decides
    }
    return advance(t, store, c.run_id, at, events);
  }

  // A failed or expired attempt: retry after backoff, or fail for good.
  void fail_attempt(Txn& t, RunStore& store, TaskRow& row, const std::string& attempt_status,
                    const std::string& error, bool retryable, Micros at,
                    std::vector<EngineEvent>& events) {
    store.end_attempt(row, attempt_status, error, at);
    const auto def = definition(t, workflow_of(store, row.task.run_id));
    const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
    row.task.error = error;
    row.task.lease_expires_at.reset();
    row.lease_owner.clear();
    row.close_deadline.reset();
    if (retryable && row.task.attempt < row.task.max_attempts) {
      row.task.status = TaskStatus::kReady;
      row.task.ready_at = at;  // ready again: aging starts over
      row.task.available_at = at + backoff(d.retry, row.task.attempt);
      if (d.timeouts.schedule_to_start)
        row.start_deadline = *row.task.available_at + us(*d.timeouts.schedule_to_start);
      store.update_task(row);
      events.push_back({EngineEvent::Kind::kTaskRetrying, row.task.run_id, row.task.id,
                        row.task.key, row.task.attempt, "ready", error, at, "",
                        *row.task.available_at, row.task.priority});
      return;
    }
    row.task.status = attempt_status == "timed_out" ? TaskStatus::kTimedOut : TaskStatus::kFailed;
    row.task.finished_at = at;
    row.start_deadline.reset();
    store.update_task(row);
    events.push_back({EngineEvent::Kind::kTaskFailed, row.task.run_id, row.task.id, row.task.key,
                      row.task.attempt, std::string(to_string(row.task.status)), error, at, ""});
    advance(t, store, row.task.run_id, at, events);
  }

  void maintenance(Micros at) {
    const bool due = db.read([&](Txn& t) {
      RunStore store(t);
      return !store.expired_leases(at).empty() || !store.missed_starts(at).empty() ||
             !store.overdue_runs(at).empty() || !store.due_waits(at).empty();
    });
    if (!due) return;
    std::vector<EngineEvent> events;
    db.write([&](Txn& t) {
      RunStore store(t);
      Hooks hooks(*this, t, store, at, events);
      for (const auto& run_id : store.overdue_runs(at)) {
        store.lock_run(run_id);
        auto run = store.find_run(run_id);
        // An earlier iteration may have finished it (a child of a run that timed out).
        if (!run || is_terminal(run->status)) continue;
        const auto def = definition(t, workflow_of(store, run_id));
        hooks.progress(*def, *run)
            .finish_run(RunStatus::kTimedOut,
                        "run timeout of " + format_duration(*def->timeout) + " passed");
      }
      for (const auto& seen : store.expired_leases(at)) {
        // An earlier iteration may have finished this run and cancelled the task.
        store.lock_run(seen.task.run_id);  // then read the task as it is now
        auto row = store.find_task(seen.task.id);
        if (!row || row->task.status != TaskStatus::kRunning ||
            row->task.attempt != seen.task.attempt || !row->task.lease_expires_at ||
            *row->task.lease_expires_at >= at) {
          continue;
        }
        fail_attempt(t, store, *row, "timed_out",
                     "lease expired (no heartbeat or completion in time)", true, at, events);
      }
      for (const auto& seen : store.due_waits(at)) {
        store.lock_run(seen.task.run_id);  // then read the task as it is now
        auto found = store.find_task(seen.task.id);
        if (!found || found->task.status != TaskStatus::kWaiting) continue;
        auto& row = *found;
        if (row.task.available_at && *row.task.available_at <= at) {
          // A timer fired.
          row.task.status = TaskStatus::kSucceeded;
          row.task.output = json{{"fired_at", *row.task.available_at}}.dump();
          row.task.finished_at = at;
          store.update_task(row);
          events.push_back({EngineEvent::Kind::kTaskSucceeded, row.task.run_id, row.task.id,
                            row.task.key, row.task.attempt, "succeeded", "", at, ""});
        } else {
          // A signal or a child run did not come in time.
          const bool child = !row.task.child_run_id.empty();
          row.task.status = TaskStatus::kTimedOut;
          row.task.error =
              child ? "child run " + row.task.child_run_id + " did not finish within start_to_close"
                    : "no signal came within start_to_close";
          row.task.finished_at = at;
          row.close_deadline.reset();
          store.update_task(row);
          events.push_back({EngineEvent::Kind::kTaskFailed, row.task.run_id, row.task.id,
                            row.task.key, row.task.attempt, "timed_out", row.task.error, at, ""});
          if (child) hooks.cancel_child(row.task.child_run_id, "its parent task timed out");
        }
        advance(t, store, row.task.run_id, at, events);
      }
      for (const auto& seen : store.missed_starts(at)) {
        store.lock_run(seen.task.run_id);  // then read the task as it is now
        auto found = store.find_task(seen.task.id);
        if (!found || found->task.status != TaskStatus::kReady || !found->start_deadline ||
            *found->start_deadline >= at) {
          continue;
        }
        auto& row = *found;
        row.task.status = TaskStatus::kTimedOut;
        row.task.finished_at = at;
        row.task.error = "not started within schedule_to_start";
        row.start_deadline.reset();
        store.update_task(row);
        events.push_back({EngineEvent::Kind::kTaskFailed, row.task.run_id, row.task.id,
                          row.task.key, row.task.attempt, "timed_out", row.task.error, at, ""});
        advance(t, store, row.task.run_id, at, events);
      }
      stage(t, events);
    });
    emit(events);
  }

  // Picks the agent and local function for a task, or nothing when no agent
  // with an in-process function registered here can run it.
  Runners resolve(const TaskDefinition& d) {
    std::vector<Agent> agents;
    try {
      if (!d.capability.empty()) {
        CapabilityQuery q;
        q.capability = d.capability;
        q.range = d.version_range;
        q.include_offline = true;
        q.limit = 100;
        for (auto& c : registry.select(q)) agents.push_back(std::move(c.agent));
      } else {
        const auto slash = d.agent.find('/');
        auto a = registry.get_by_name(d.agent.substr(0, slash), d.agent.substr(slash + 1));
        if (a.active_version && a.status != AgentStatus::kDisabled) agents.push_back(std::move(a));
      }
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) return {};
      throw;
    }
    // Every agent that can run it, but of one kind: all run elsewhere (bus)
    // or all run here, as the first one does.
    Runners out;
    const auto add = [&](const Agent& a, std::string function) {
      if (!out.empty() &&
          out.front().function.starts_with(kBusPrefix) != function.starts_with(kBusPrefix))
        return;
      out.push_back({a.id, std::move(function), a.capacity});
    };
    for (const auto& a : agents) {
      const auto v = registry.get_version(a.id, *a.active_version);
      if (v.executor.starts_with("bus:") && options.bus) {
        // Run elsewhere: the "function" is the topic its assignments go to.
        auto topic = v.executor.substr(4);
        if (topic.empty())
          topic = "devcycle.tasks." + (d.capability.empty() ? a.name : d.capability);
        try {
          internal::check_topic(topic, "executor");
        } catch (const Error&) {
          continue;  // not a topic: nobody here can run it
        }
        add(a, std::string(kBusPrefix) + topic);
        continue;
      }
      if (v.executor.starts_with("process:") && !options.processes.allow.empty()) {
        // The "function" is the executor itself; its argv is checked when it runs.
        add(a, v.executor);
        continue;
      }
      if (!v.executor.starts_with("inproc:")) continue;
      const auto name = v.executor.substr(7);
      bool known = false;
      {
        std::lock_guard lock(functions_mu);
        known = functions.count(name) > 0;
      }
      if (known) add(a, name);
    }
    return out;
  }

  // The message that hands a claimed task to an agent in another process
  // (docs/decisions/0015-task-dispatch-over-the-bus.md).
  Message assignment(const std::string& topic, const TaskRow& row, int attempt,
                     const std::string& agent_id, Micros at, Micros lease) {
    json input = nullptr;
    try {
      if (!row.task.input.empty()) input = json::parse(row.task.input);
    } catch (const json::exception&) {
      input = row.task.input;  // stored inputs are JSON; keep it whole regardless
    }
    const json j = {
        {"task_id", row.task.id},
        {"run_id", row.task.run_id},
        {"task_key", row.task.key},
        {"attempt", attempt},
        {"lease_owner", options.engine_id},
        {"agent_id", agent_id},
        {"input", std::move(input)},
        {"idempotency_key", row.task.run_id + "/" + row.task.key + "/" + std::to_string(attempt)},
        {"started_at", at},
        {"lease_expires_at", lease}};
    return {topic, row.task.run_id, {}, j.dump(-1, ' ', false, json::error_handler_t::replace)};
  }

  // A completion from an agent in another process: recorded as an
  // in-process outcome is, with the fence taken from the message, so a
  // duplicate or stale one changes nothing. Throws for a malformed message
  // (the subscription refuses it; it ends among the dead letters).
  void accept_completion(const std::string& payload) {
    const auto j = internal::parse_json(payload, "completion");
    const auto kind = j.is_object() ? j.value("kind", std::string("completion")) : "";
    if (kind == "heartbeat") return accept_heartbeat(j);
    if (kind == "log") return accept_log(j);
    if (kind != "completion")
      throw Error(ErrorCode::kInvalidArgument, "completion: kind \"" + kind + "\" is unknown");
    Claim c;
    try {
      c.task_id = j.at("task_id").get<std::string>();
      c.run_id = j.at("run_id").get<std::string>();
      c.task_key = j.at("task_key").get<std::string>();
      c.attempt = j.at("attempt").get<int>();
      c.lease_owner = j.at("lease_owner").get<std::string>();
      c.agent_id = j.value("agent_id", "");
      c.started_at = j.value("started_at", Micros{0});
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kInvalidArgument, std::string("completion: ") + e.what());
    }
    c.workflow_id = workflow_of(c.run_id);
    const bool ok = j.value("ok", false);
    const auto result = ok ? (j.contains("output") ? j["output"].dump() : std::string("null"))
                           : j.value("error", std::string("failed in a remote agent"));
    auto next = complete(c, ok, result, j.value("retryable", true));
    if (!next) return;
    if (options.workers == 0) {
      execute(*next);
      return;
    }
    {
      std::lock_guard lock(queue_mu);
      queue.push_back(std::move(*next));
    }
    queue_cv.notify_one();
  }

  // A remote attempt says it is alive: its lease is extended, fenced like
  // TaskContext::heartbeat() (a lost lease just stays lost).
  void accept_heartbeat(const json& j) {
    std::string task_id, lease_owner;
    int attempt = 0;
    try {
      task_id = j.at("task_id").get<std::string>();
      lease_owner = j.at("lease_owner").get<std::string>();
      attempt = j.at("attempt").get<int>();
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kInvalidArgument, std::string("heartbeat: ") + e.what());
    }
    const Micros at = now();
    db.write([&](Txn& t) {
      RunStore store(t);
      const auto row = store.find_task(task_id);
      if (!row || row->task.status != TaskStatus::kRunning || row->task.attempt != attempt) return;
      const auto def = definition(t, workflow_of(store, row->task.run_id));
      const auto& d = RunProgress::definition_of(*def, row->task.definition_id);
      store.extend_lease(task_id, attempt, lease_owner, at,
                         lease_until(d.timeouts, at, row->close_deadline));
    });
  }

  // A remote attempt's log line, stored and followed as in-process ones are.
  void accept_log(const json& j) {
    TaskLogLine line;
    std::string run_id, task_key;
    try {
      line.task_id = j.at("task_id").get<std::string>();
      line.attempt = j.at("attempt").get<int>();
      line.level = parse_log_level(j.value("level", std::string("info")), "log.level");
      line.message = j.at("message").get<std::string>().substr(0, 64 * 1024);
      run_id = j.value("run_id", std::string());
      task_key = j.value("task_key", std::string());
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kInvalidArgument, std::string("log: ") + e.what());
    }
    line.id = new_uuid_v7();
    line.at = now();
    const bool stored = db.write([&](Txn& t) {
      if (t.query("SELECT 1 FROM tasks WHERE id = $1", {line.task_id}).empty()) return false;
      RunStore(t).insert_log(line);
      return true;
    });
    if (stored)
      emit({{EngineEvent::Kind::kTaskLog, run_id, line.task_id, task_key, line.attempt,
             std::string(to_string(line.level)), "", line.at, line.message}});
  }

  enum class RowClaim { kClaimed, kFull, kLost };

  // Claims one ready row for the first of `runners` with room: a Claim for
  // this engine's workers, or an assignment sent with the transaction for a
  // bus agent. kFull: every runner is at capacity; kLost: the fenced UPDATE
  // found the row changed.
  RowClaim claim_row(RunStore& store, const TaskRow& row, const TaskDefinition& d,
                     const std::string& workflow_id, const Runners& runners, AgentLoad& load,
                     Micros at, std::vector<Claim>& claims, std::vector<EngineEvent>& events,
                     std::vector<Message>& assignments) {
    const Runner* runner = load.take(runners);
    if (!runner) return RowClaim::kFull;
    std::optional<Micros> close_deadline;
    if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
    const auto lease = lease_until(d.timeouts, at, close_deadline);
    if (!store.claim(row, options.engine_id, runner->agent_id, at, lease, close_deadline))
      return RowClaim::kLost;
    const int attempt = row.task.attempt + 1;
    events.push_back({EngineEvent::Kind::kTaskStarted, row.task.run_id, row.task.id, row.task.key,
                      attempt, "running", "", at, ""});
    if (runner->function.starts_with(kBusPrefix)) {
      // Runs in another process: the assignment leaves with the claim.
      assignments.push_back(assignment(runner->function.substr(kBusPrefix.size()), row, attempt,
                                       runner->agent_id, at, lease));
    } else {
      claims.push_back({row.task.id, row.task.run_id, row.task.key, workflow_id, runner->function,
                        runner->agent_id, options.engine_id, row.task.input, attempt, at, lease,
                        close_deadline, d.timeouts});
    }
    return RowClaim::kClaimed;
  }

  // claim() on PostgreSQL, where several engines share the ready tasks: the
  // candidates are chosen inside the claim transaction, FOR UPDATE SKIP
  // LOCKED, so that engines take different tasks instead of racing for the
  // same head of the queue. Tasks whose runners this engine has not looked
  // up yet are left ready and looked up after the transaction (the registry
  // reads the database itself), to be claimed on the next pass.
  std::vector<Claim> claim_locked(Micros at, int free) {
    saw_ready = false;
    std::vector<Claim> all;
    // A second pass when the first met tasks of runners not looked up yet.
    for (int pass = 0; pass < 2 && static_cast<int>(all.size()) < free; ++pass) {
      const int room = free - static_cast<int>(all.size());
      std::vector<Claim> claims;
      std::vector<EngineEvent> events;
      std::vector<Message> assignments;
      std::vector<std::pair<std::shared_ptr<const WorkflowDefinition>, std::string>> unknown;
      db.write([&](Txn& t) {
        RunStore store(t);
        store.defer_writes();  // the claims written in one statement
        claims.clear();
        events.clear();
        assignments.clear();
        unknown.clear();
        AgentLoad load(store);
        const auto aging = std::max<Micros>(1, us(options.aging_step));
        const int page = std::max(16, room);
        const auto taken = [&] { return static_cast<int>(claims.size() + assignments.size()); };
        // Further pages only while whole pages hold nothing this engine can
        // take, so that tasks nobody here runs cannot hide runnable ones.
        for (int offset = 0; taken() < room && offset < 20 * page; offset += page) {
          const auto rows = store.lock_ready(at, aging, page, offset);
          if (!rows.empty()) saw_ready = true;
          bool nobody_here = true;  // no row of the page has a runner known here
          for (const auto& [row, workflow_id] : rows) {
            if (taken() >= room) break;
            const auto def = definition(t, workflow_id);
            const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
            const auto runners = known_resolution(d, at);
            if (runners && !runners->empty()) nobody_here = false;
            if (!runners) {
              unknown.emplace_back(def, row.task.definition_id);
              continue;
            }
            if (runners->empty() || rate_wait(d) > 0) continue;  // nobody here / over its rate
            claim_row(store, row, d, workflow_id, *runners, load, at, claims, events, assignments);
          }
          // Agents at capacity or over their rate end the pass too: the
          // pages below hold more of the same.
          if (static_cast<int>(rows.size()) < page || !nobody_here) break;
        }
        store.flush();
        stage(t, events);
        internal::Outbox::add(t, assignments, at);
      });
      {
        std::lock_guard lock(cancelled_mu);
        for (const auto& c : claims) cancelled.erase(c.task_id);
      }
      emit(events);
      all.insert(all.end(), std::make_move_iterator(claims.begin()),
                 std::make_move_iterator(claims.end()));
      if (unknown.empty()) break;
      for (const auto& [def, definition_id] : unknown) {
        const auto& d = RunProgress::definition_of(*def, definition_id);
        if (known_resolution(d, at)) continue;
        auto found = resolve(d);
        std::lock_guard lock(resolutions_mu);
        resolutions[resolution_key(d)] = {std::move(found), at + 1'000'000};
      }
    }
    return all;
  }

  static std::string resolution_key(const TaskDefinition& d) {
    return d.capability.empty() ? "@" + d.agent : d.capability + "@" + d.version_range;
  }

  // Who runs `d`, as last looked up (possibly nobody); nullopt when not
  // looked up within the last second.
  std::optional<Runners> known_resolution(const TaskDefinition& d, Micros at) {
    std::lock_guard lock(resolutions_mu);
    if (auto it = resolutions.find(resolution_key(d));
        it != resolutions.end() && it->second.until > at)
      return it->second.runners;
    return std::nullopt;
  }

  std::vector<Claim> claim(Micros at, int free) {
    if (db.dialect() == Dialect::kPostgres) return claim_locked(at, free);
    refill_ready(at);
    struct Candidate {
      internal::ReadyEntry entry;
      std::string workflow_id;
      Runners runners;
    };
    // Candidates are chosen outside the write transaction: the registry reads
    // the database itself. Tasks nobody here can run are passed over and put
    // back, so that they cannot hide runnable work behind them.
    std::vector<Candidate> chosen;
    std::vector<internal::ReadyEntry> passed_over;
    const int max_looks = 20 * std::max(32, free * 4);
    for (int looked = 0; static_cast<int>(chosen.size()) < free && looked < max_looks; ++looked) {
      std::optional<internal::ReadyEntry> e;
      {
        std::lock_guard lock(ready_mu);
        e = ready.pop(at);
      }
      if (!e) break;
      std::string wid;
      std::shared_ptr<const WorkflowDefinition> def;
      try {
        wid = workflow_of(e->run_id);
        {
          std::lock_guard lock(definitions_mu);
          if (auto it = definitions.find(wid); it != definitions.end()) def = it->second;
        }
        if (!def) def = db.read([&](Txn& t) { return definition(t, wid); });
      } catch (const Error& err) {
        if (err.code() == ErrorCode::kNotFound) continue;  // the run is gone: a stale entry
        std::lock_guard lock(ready_mu);
        ready.push(std::move(*e), at);
        throw;
      }
      const auto& d = RunProgress::definition_of(*def, e->definition_id);
      const auto key = resolution_key(d);
      Runners found;
      bool cached = false;
      {
        std::lock_guard lock(resolutions_mu);
        if (auto it = resolutions.find(key); it != resolutions.end() && it->second.until > at) {
          found = it->second.runners;
          cached = true;
        }
      }
      if (!cached) {
        found = resolve(d);
        std::lock_guard lock(resolutions_mu);
        resolutions[key] = {found, at + 1'000'000};
      }
      if (!found.empty()) {
        if (const Micros wait = rate_wait(d); wait > 0) {
          // Over its capability's rate: back in the queue until a token is due.
          e->available_at = at + wait;
          std::lock_guard lock(ready_mu);
          ready.push(std::move(*e), at);
          continue;
        }
        chosen.push_back({std::move(*e), std::move(wid), std::move(found)});
      } else {
        passed_over.push_back(std::move(*e));
      }
    }
    // Tasks passed over are dropped rather than put back: the next refill
    // brings back those still ready, and entries that went stale behind
    // them (finished by another engine) cannot pile up.
    passed_over.clear();
    if (chosen.empty()) return {};
    // If the claim transaction fails, the chosen tasks go back in the queue.
    struct Restore {
      Impl& impl;
      std::vector<Candidate>& chosen;
      Micros at;
      bool armed = true;
      ~Restore() {
        if (!armed) return;
        std::lock_guard lock(impl.ready_mu);
        for (auto& c : chosen) impl.ready.push(std::move(c.entry), at);
      }
    } restore{*this, chosen, at};
    std::vector<Claim> claims;
    std::vector<EngineEvent> events;
    std::vector<Message> assignments;
    std::vector<std::size_t> full;  // chosen tasks whose agents are all at capacity
    db.write([&](Txn& t) {
      RunStore store(t);
      claims.clear();
      events.clear();
      assignments.clear();
      full.clear();
      AgentLoad load(store);
      std::vector<std::string> ids;
      ids.reserve(chosen.size());
      for (const auto& c : chosen) ids.push_back(c.entry.task_id);
      std::unordered_map<std::string, TaskRow> rows;
      for (auto& r : store.claimable(ids)) rows.emplace(r.task.id, std::move(r));
      for (std::size_t i = 0; i < chosen.size(); ++i) {
        const auto& c = chosen[i];
        // The entry may be stale; the row and the fenced UPDATE decide.
        const auto found = rows.find(c.entry.task_id);
        if (found == rows.end() || found->second.task.attempt != c.entry.attempt) continue;
        const auto def = definition(t, c.workflow_id);
        const auto& d = RunProgress::definition_of(*def, found->second.task.definition_id);
        if (claim_row(store, found->second, d, c.workflow_id, c.runners, load, at, claims, events,
                      assignments) == RowClaim::kFull)
          full.push_back(i);
      }
      stage(t, events);
      internal::Outbox::add(t, assignments, at);
    });
    restore.armed = false;
    if (!full.empty()) {
      // They stay ready, looked at again once an attempt may have ended.
      std::lock_guard lock(ready_mu);
      for (auto i : full) {
        chosen[i].entry.available_at = at + us(options.poll_interval);
        ready.push(std::move(chosen[i].entry), at);
      }
    }
    {
      // A new attempt starts uncancelled (an old entry may be left from a cancel before a retry).
      std::lock_guard lock(cancelled_mu);
      for (const auto& c : claims) cancelled.erase(c.task_id);
    }
    emit(events);
    return claims;
  }

  // Eager dispatch: inside a completion's transaction, claims one task that
  // this completion just made ready, when this engine already knows it can
  // run it, so a chain of tasks skips the scheduler round trip. Registry
  // lookups are not allowed here (they would read the database inside the
  // write), so only remembered resolutions count.
  // Takes a start of `d` from its capability's rate limit; how long to wait
  // when there is none (0: go).
  Micros rate_wait(const TaskDefinition& d) {
    if (d.capability.empty() || !options.cache) return 0;
    const auto it = options.capability_rate_limits.find(d.capability);
    if (it == options.capability_rate_limits.end()) return 0;
    const auto r =
        options.cache->take("engine-rate:" + d.capability, it->second.per_second, it->second.burst);
    return r.allowed ? 0 : std::max<Micros>(1000, r.retry_after.count() * 1000);
  }
  bool rate_limited(const TaskDefinition& d) const {
    return !d.capability.empty() && options.cache &&
           options.capability_rate_limits.count(d.capability) > 0;
  }

  // Which agent and function run `d`, if this engine already knows; never
  // asks the registry (safe inside a write closure).
  Runners remembered_resolution(const TaskDefinition& d, Micros at) {
    const auto key = resolution_key(d);
    std::lock_guard lock(resolutions_mu);
    if (auto it = resolutions.find(key); it != resolutions.end() && it->second.until > at) {
      return it->second.runners;
    }
    return {};
  }

  std::optional<Claim> claim_successor(Txn& t, RunStore& store, const Claim& done,
                                       std::size_t first_event, Micros at,
                                       const std::vector<TaskRow>& rows,
                                       std::vector<EngineEvent>& events) {
    AgentLoad load(store, done.agent_id);
    for (std::size_t i = first_event; i < events.size(); ++i) {
      const auto& e = events[i];
      if (e.kind != EngineEvent::Kind::kTaskReady || e.run_id != done.run_id) continue;
      const auto def = definition(t, done.workflow_id);
      // The row as this transaction's advance() just wrote it.
      const auto row = std::find_if(rows.begin(), rows.end(),
                                    [&](const TaskRow& r) { return r.task.id == e.task_id; });
      if (row == rows.end() || row->task.status != TaskStatus::kReady ||
          row->task.available_at.value_or(at) > at)
        continue;
      const auto& d = RunProgress::definition_of(*def, row->task.definition_id);
      if (rate_limited(d)) continue;  // claim() takes its tokens
      const auto runners = remembered_resolution(d, at);
      if (runners.empty() || runners.front().function.starts_with(kBusPrefix))
        continue;  // see claim()
      const Runner* found = load.take(runners);
      if (!found) continue;
      std::optional<Micros> close_deadline;
      if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
      const auto lease = lease_until(d.timeouts, at, close_deadline);
      if (!store.claim(*row, options.engine_id, found->agent_id, at, lease, close_deadline))
        continue;
      const int attempt = row->task.attempt + 1;
      events.push_back({EngineEvent::Kind::kTaskStarted, row->task.run_id, row->task.id,
                        row->task.key, attempt, "running", "", at, ""});
      return Claim{
          row->task.id,    row->task.run_id,  row->task.key,   done.workflow_id, found->function,
          found->agent_id, options.engine_id, row->task.input, attempt,          at,
          lease,           close_deadline,    d.timeouts};
    }
    return std::nullopt;
  }

  // What an attempt came to, ready to be recorded: the output is already
  // normalised JSON (done on the worker, not on the writer).
  struct Outcome {
    Claim claim;
    bool success = false;
    std::string output;
    std::string error;
    bool retryable = true;
  };

  static Outcome outcome_of(Claim c, bool ok, std::string output_or_error, bool retryable) {
    Outcome o{std::move(c), ok, "", "", retryable};
    if (!ok) {
      o.error = std::move(output_or_error);
      return o;
    }
    if (output_or_error.empty()) output_or_error = "null";
    try {
      o.output = internal::parse_json(output_or_error, "output")
                     .dump(-1, ' ', false, json::error_handler_t::replace);
    } catch (const Error& e) {
      o.success = false;
      o.retryable = false;
      o.error = std::string(e.what()) + " (a task's output must be JSON)";
    }
    return o;
  }

  // What recording a batch of outcomes leaves to the batch's end, to do it
  // once for all of them: the successes' attempt rows (one multi-row
  // INSERT), and whether fan-out groups have finished (one question per
  // group, asked after every element of the batch is written).
  struct Deferred {
    std::vector<std::pair<std::string, TaskAttempt>> attempts;
    std::vector<Claim> groups;  // the last element recorded, per group
    // PostgreSQL: the successes of the batch already recorded and fenced
    // together, in one statement (a round trip per task saved); null: each
    // success is fenced on its own.
    const std::unordered_set<std::string>* fenced = nullptr;
  };

  // Records one outcome inside a write. Returns false when the attempt was
  // fenced off (its lease expired or moved on) and nothing was written.
  bool record(Txn& t, RunStore& store, const Outcome& o, Micros at,
              std::vector<EngineEvent>& events, std::optional<Claim>& next, Deferred& later) {
    const Claim& c = o.claim;
    // The run before its task, as every transaction that judges a run's
    // progress takes them (a batch locked its runs already): the other
    // order could deadlock with a batch that ends this run's tasks.
    store.lock_run(c.run_id);
    if (o.success) {
      // The fence and the record in one statement (or one for the batch).
      if (later.fenced ? !later.fenced->contains(c.task_id)
                       : !store.succeed_leased(c.task_id, c.attempt, c.lease_owner, at, o.output))
        return false;
      later.attempts.push_back(
          {c.task_id, {c.attempt, c.agent_id, c.lease_owner, "succeeded", "", c.started_at, at}});
      events.push_back({EngineEvent::Kind::kTaskSucceeded, c.run_id, c.task_id, c.task_key,
                        c.attempt, "succeeded", "", at, ""});
      // Fenced with the whole batch before any outcome was applied: an
      // earlier outcome of the batch may have ended this run since (a
      // failure, or the last other task); then there is nothing to advance.
      if (later.fenced && store.finished_here(c.run_id)) return true;
      // A fan-out element changes nothing else in the run unless it was the
      // last open one of its group: the batch's end asks, once per group.
      if (const auto bracket = c.task_key.find('['); bracket != std::string::npos) {
        const auto group = std::string_view(c.task_key).substr(0, bracket + 1);  // "<id>["
        const auto same =
            std::find_if(later.groups.begin(), later.groups.end(), [&](const Claim& g) {
              return g.run_id == c.run_id && std::string_view(g.task_key).starts_with(group);
            });
        if (same != later.groups.end()) {
          *same = c;
        } else {
          later.groups.push_back(c);
        }
        return true;
      }
      const auto first_new = events.size();
      auto rows = advance_after_success(t, store, c, at, events, next);
      if (!next) next = claim_successor(t, store, c, first_new, at, rows, events);
      return true;
    }
    auto row = store.leased(c.task_id, c.attempt, c.lease_owner, at);
    if (!row) return false;
    fail_attempt(t, store, *row, "failed", o.error, o.retryable, at, events);
    return true;
  }

  void finish_batch(Txn& t, RunStore& store, Deferred& later, Micros at,
                    std::vector<EngineEvent>& events, std::vector<Claim>& next) {
    store.insert_attempts(later.attempts);
    for (const auto& c : later.groups) {
      if (store.finished_here(c.run_id)) continue;  // ended by another outcome of the batch
      const auto bracket = c.task_key.find('[');
      // Locked first: a sibling completing in another engine's transaction
      // has committed by then, so one of the two sees the group closed.
      store.lock_run(c.run_id);
      if (store.has_open_elements(c.run_id, std::string_view(c.task_key).substr(0, bracket)))
        continue;
      std::optional<Claim> n;
      const auto first_new = events.size();
      auto rows = advance_after_success(t, store, c, at, events, n);
      if (!n) n = claim_successor(t, store, c, first_new, at, rows, events);
      if (n) next.push_back(std::move(*n));
    }
  }

  void forget_cancel(const std::string& task_id) {
    std::lock_guard lock(cancelled_mu);
    cancelled.erase(task_id);
  }

  // Records an outcome and waits for it (engines without worker threads).
  std::optional<Claim> complete(const Claim& c, bool ok, const std::string& output_or_error,
                                bool retryable, bool* recorded = nullptr) {
    const auto o = outcome_of(c, ok, output_or_error, retryable);
    forget_cancel(c.task_id);
    const Micros at = now();
    std::vector<EngineEvent> events;
    std::optional<Claim> next;
    db.write([&](Txn& t) {
      RunStore store(t);
      next.reset();
      events.clear();
      Deferred later;
      std::vector<Claim> more;
      const bool took = record(t, store, o, at, events, next, later);
      if (recorded) *recorded = took;
      finish_batch(t, store, later, at, events, more);
      stage(t, events);
      if (!next && !more.empty()) next = std::move(more.front());
    });
    if (next) forget_cancel(next->task_id);
    emit(std::move(events));
    return next;
  }

  // Engines with worker threads record asynchronously: a worker hands its
  // outcome over and takes its next task; one write closure records every
  // outcome gathered by the time the writer reaches it, and the successors
  // it claimed go to the workers once it has committed. So the writer's work
  // per task is statements, not thread hand-offs and one savepoint each.
  struct RecordBatch {
    bool ran = false;
    std::vector<Outcome> outcomes;
    std::vector<EngineEvent> events;
    std::vector<Claim> next;
  };
  std::mutex record_mu;
  std::condition_variable record_cv;
  std::vector<Outcome> to_record;
  bool record_armed = false;  // a closure is queued that will take to_record
  int record_writes = 0;      // submitted and not yet done; the destructor waits for 0

  void record_later(Outcome o) {
    bool arm = false;
    {
      std::lock_guard lock(record_mu);
      to_record.push_back(std::move(o));
      if (!record_armed) {
        record_armed = arm = true;
        ++record_writes;
      }
    }
    if (arm) submit_records();
  }

  void submit_records() {
    auto batch = std::make_shared<RecordBatch>();
    db.submit(
        [this, batch](Txn& t) {
          {
            std::lock_guard lock(record_mu);
            batch->outcomes.swap(to_record);
            record_armed = false;
            batch->ran = true;
          }
          const Micros at = now();
          RunStore store(t);
          {
            // Every run this batch may advance, locked up front in one order.
            std::vector<std::string> runs;
            runs.reserve(batch->outcomes.size());
            for (const auto& o : batch->outcomes) runs.push_back(o.claim.run_id);
            store.lock_runs(std::move(runs));
          }
          Deferred later;
          std::unordered_set<std::string> fenced;
          if (t.dialect() == Dialect::kPostgres && batch->outcomes.size() > 1) {
            std::vector<RunStore::Success> successes;
            for (const auto& o : batch->outcomes) {
              if (o.success)
                successes.push_back(
                    {o.claim.task_id, o.claim.attempt, o.claim.lease_owner, o.output});
            }
            fenced = store.succeed_leased_many(successes, at);
            later.fenced = &fenced;
            // The rows the successes' advances read, in one statement, and
            // their writes (successors readied and claimed) in one more.
            std::vector<RunStore::Want> wants;
            for (const auto& o : batch->outcomes) {
              const auto& c = o.claim;
              if (!o.success || !fenced.contains(c.task_id) ||
                  c.task_key.find('[') != std::string::npos || store.run_paused(c.run_id))
                continue;
              auto keys =
                  RunProgress::keys_after_success(*definition(t, c.workflow_id), c.task_key);
              if (keys) wants.push_back({c.run_id, std::move(*keys)});
            }
            store.prefetch(wants);
            store.defer_writes();
          }
          for (const auto& o : batch->outcomes) {
            std::optional<Claim> next;
            record(t, store, o, at, batch->events, next, later);
            if (next) batch->next.push_back(std::move(*next));
          }
          finish_batch(t, store, later, at, batch->events, batch->next);
          store.flush();
          stage(t, batch->events);
        },
        [this, batch](std::exception_ptr e) {
          if (!e) {
            post(std::move(batch->events), std::move(batch->next));
          } else if (!batch->ran) {
            // Never ran (the database is closing): the outcomes stay queued;
            // if nothing records them, their leases expire and they run again.
            std::lock_guard lock(record_mu);
            record_armed = false;
          } else {
            // One outcome broke the shared closure: record each on its own,
            // so that the others are not lost with it.
            for (auto& o : batch->outcomes) record_alone(std::move(o));
          }
          std::lock_guard lock(record_mu);
          --record_writes;
          record_cv.notify_all();
        });
  }

  // Runs on the writer thread (from a done callback): must not wait for a write.
  void record_alone(Outcome o) {
    auto batch = std::make_shared<RecordBatch>();
    batch->outcomes.push_back(std::move(o));
    {
      std::lock_guard lock(record_mu);
      ++record_writes;
    }
    db.submit(
        [this, batch](Txn& t) {
          const Micros at = now();
          RunStore store(t);
          std::optional<Claim> next;
          Deferred later;
          record(t, store, batch->outcomes[0], at, batch->events, next, later);
          if (next) batch->next.push_back(std::move(*next));
          finish_batch(t, store, later, at, batch->events, batch->next);
          stage(t, batch->events);
        },
        [this, batch](std::exception_ptr e) {
          // On failure the attempt's lease expires and the task runs again.
          if (!e) post(std::move(batch->events), std::move(batch->next));
          std::lock_guard lock(record_mu);
          --record_writes;
          record_cv.notify_all();
        });
  }

  // After a record write committed: events out, claimed successors to the
  // workers (after their task.started events), the scheduler told.
  void post(std::vector<EngineEvent> events, std::vector<Claim> next) {
    for (const auto& n : next) forget_cancel(n.task_id);
    emit(std::move(events));
    {
      std::lock_guard lock(queue_mu);
      for (auto& n : next) queue.push_back(std::move(n));
      wake = true;
    }
    if (!next.empty()) queue_cv.notify_all();
    scheduler_cv.notify_one();
  }

  // How long tasks run here, smoothed (microseconds); decides claim_ahead().
  std::atomic<Micros> typical_run{1'000'000};

  void note_run_time(Micros took) {
    const Micros was = typical_run.load(std::memory_order_relaxed);
    typical_run.store(was + (std::max<Micros>(took, 1) - was) / 8, std::memory_order_relaxed);
  }

  // Claims per worker: as many as run in a tenth of the default lease,
  // between 2 and 32.
  int claim_ahead() const {
    const Micros budget = us(options.default_lease) / 10;
    const Micros took = std::max<Micros>(typical_run.load(std::memory_order_relaxed), 1);
    return static_cast<int>(std::clamp<Micros>(budget / took, 2, 32));
  }

  // Runs the claim and the successors eagerly claimed after it; returns how many ran.
  int execute(const Claim& c);
  // Runs one claimed attempt. `async`: hands the outcome to record_later()
  // and returns nothing; otherwise records it and returns the successor
  // claimed eagerly, if any.
  std::optional<Claim> execute_one(const Claim& c, bool async = false);

  int tick() {
    std::lock_guard tick_lock(tick_mu);
    const Micros at = now();
    // Timeouts need no finer grain than this; it keeps idle polling cheap.
    if (!last_maintenance || at - *last_maintenance >= 20'000 || at < *last_maintenance) {
      maintenance(at);
      last_maintenance = at;
    }
    int free;
    if (options.workers == 0) {
      free = 64;
    } else {
      std::lock_guard lock(queue_mu);
      // Claims queued ahead keep workers busy between ticks and make claim
      // writes worth their round trip; how many depends on how long tasks
      // take, so that a queued claim never waits out its lease (a claim that
      // waits renews its lease before it starts, see execute_one()).
      free = claim_ahead() * options.workers - in_flight - static_cast<int>(queue.size());
    }
    if (free <= 0) return 0;
    auto claims = claim(at, free);
    int n = static_cast<int>(claims.size());
    if (options.workers == 0) {
      n = 0;
      for (const auto& c : claims) n += execute(c);
    } else if (n > 0) {
      {
        std::lock_guard lock(queue_mu);
        for (auto& c : claims) queue.push_back(std::move(c));
      }
      queue_cv.notify_all();
    }
    return n;
  }

  void scheduler_loop() {
    int idle_passes = 0;
    while (true) {
      {
        std::lock_guard lock(queue_mu);
        if (stopping) return;
      }
      int n = 0;
      try {
        n = tick();
      } catch (const Error&) {
        // The database may be briefly unavailable; the next pass retries.
      }
      idle_passes = n == 0 && !saw_ready.exchange(false) ? idle_passes + 1 : 0;
      const auto wait = idle_wait(idle_passes - 1);
      std::unique_lock lock(queue_mu);
      if (n == 0) {
        if (scheduler_cv.wait_for(lock, wait, [&] { return stopping || wake; })) idle_passes = 0;
      }
      wake = false;
    }
  }

  void worker_loop() {
    while (true) {
      Claim c;
      {
        std::unique_lock lock(queue_mu);
        queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;  // the destructor gives back what is still queued
        c = std::move(queue.front());
        queue.pop_front();
        ++in_flight;
      }
      execute_one(c, true);
      bool idle;
      {
        std::lock_guard lock(queue_mu);
        --in_flight;
        idle = queue.empty();
        if (idle) wake = true;
      }
      // Successors come with their record write (post()); the scheduler is
      // needed only when this worker is about to wait.
      if (idle) scheduler_cv.notify_one();
    }
  }
};

namespace {

// How deep child runs may nest: far beyond any real design, near enough to
// stop a workflow that starts itself.
constexpr int kMaxChildDepth = 16;

// The group of a run under its workflow's concurrency limit.
std::string concurrency_key(const ConcurrencyLimit& c, const json& input) {
  if (c.key.empty()) return {};
  const auto v =
      internal::render(Template::parse(c.key, "concurrency.key"), json{{"input", input}});
  std::string key = v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.dump();
  if (key.size() > 256) {
    throw Error(ErrorCode::kInvalidArgument, "concurrency.key: gave " + std::to_string(key.size()) +
                                                 " characters, more than the 256 allowed");
  }
  return key;
}

std::string group_name(const Run& r) {
  return "workflow \"" + r.workflow + "\"" +
         (r.concurrency_key && !r.concurrency_key->empty()
              ? " with concurrency key \"" + *r.concurrency_key + "\""
              : "");
}

}  // namespace

internal::RunHooks::Child Engine::Impl::Hooks::start_child(const TaskRow& task,
                                                           const TaskDefinition& d,
                                                           const Run& parent, const json& input) {
  const std::string path = "tasks." + task.task.key + ".workflow";
  if (store.depth_of(parent.id) + 1 >= kMaxChildDepth) {
    throw Error(ErrorCode::kInvalidArgument, path + ": child runs nest at most " +
                                                 std::to_string(kMaxChildDepth) +
                                                 " deep (does the workflow start itself?)");
  }
  auto rs = d.workflow_version
                ? t.query("SELECT id, version FROM workflows WHERE name = $1 AND version = $2",
                          {d.workflow, *d.workflow_version})
                : t.query(
                      "SELECT id, version FROM workflows WHERE name = $1 ORDER BY version "
                      "DESC LIMIT 1",
                      {d.workflow});
  if (rs.empty()) {
    throw Error(ErrorCode::kNotFound,
                path + ": workflow \"" + d.workflow + "\"" +
                    (d.workflow_version ? " version " + std::to_string(*d.workflow_version) : "") +
                    " not found");
  }
  const auto workflow_id = rs[0][0].as_text();
  const auto def = impl.definition(t, workflow_id);
  if (!input.is_object())
    throw Error(ErrorCode::kInvalidArgument, path + ": input must be an object");
  const auto schema = JsonSchema::parse(def->input_schema, "input_schema");
  if (const auto violations = internal::validate(schema, input); !violations.empty()) {
    throw Error(ErrorCode::kInvalidArgument, path + ": the input does not match workflow \"" +
                                                 d.workflow +
                                                 "\"'s input_schema: " + describe(violations));
  }
  Run r;
  r.id = new_uuid_v7();
  r.workflow = d.workflow;
  r.workflow_version = static_cast<int>(rs[0][1].as_int());
  r.owner = parent.owner;
  r.status = RunStatus::kRunning;
  r.input = input.dump(-1, ' ', false, json::error_handler_t::replace);
  r.labels = parent.labels;
  r.created_at = at;
  r.started_at = at;
  r.parent_run_id = parent.id;
  r.parent_task_id = task.task.id;
  if (def->timeout) r.deadline_at = at + us(*def->timeout);
  if (def->concurrency) r.concurrency_key = concurrency_key(*def->concurrency, input);
  insert_run(r, workflow_id, *def);
  Child child{r.id, std::nullopt};
  if (is_terminal(r.status)) child.finished = r;
  return child;
}

void Engine::Impl::Hooks::insert_run(Run& r, const std::string& workflow_id,
                                     const WorkflowDefinition& def, RunProgress::ClaimHook claim) {
  std::int64_t over = 0;  // active runs beyond the limit, counting this one
  std::vector<Run> victims;
  if (def.concurrency && r.concurrency_key) {
    const auto active = store.active_in_group(r.workflow, *r.concurrency_key);
    over = active + 1 - def.concurrency->limit;
    bool queue = over > 0 && def.concurrency->strategy == ConcurrencyStrategy::kQueue;
    if (over > 0 && def.concurrency->strategy == ConcurrencyStrategy::kCancelOldest) {
      // A child run never cancels its own kin — an ancestor, or a run whose
      // ending would reach one: that would end its own parent (whose
      // progress is under way further up this very transaction). It waits
      // for room instead.
      std::set<std::string> kin;
      if (!r.parent_run_id.empty()) {
        for (auto& id : store.lineage(r.parent_run_id)) kin.insert(std::move(id));
      }
      victims = store.oldest_active(r.workflow, *r.concurrency_key, over);
      for (const auto& v : victims) {
        for (const auto& id : store.lineage(v.id)) queue = queue || kin.count(id) > 0;
      }
      if (queue) victims.clear();
    }
    if (queue) {
      r.status = RunStatus::kPending;
      r.started_at.reset();
      r.deadline_at.reset();
      store.insert_run(r, workflow_id);
      events.push_back({EngineEvent::Kind::kRunQueued, r.id, "", "", 0, "pending", "", at, ""});
      return;
    }
    if (over > 0 && def.concurrency->strategy == ConcurrencyStrategy::kCancelNewest) {
      r.status = RunStatus::kCancelled;
      r.error = "concurrency limit: " + group_name(r) + " has " + std::to_string(active) +
                " active runs, its limit (strategy cancel_newest)";
      r.finished_at = at;
      store.insert_run(r, workflow_id);
      events.push_back(
          {EngineEvent::Kind::kRunFinished, r.id, "", "", 0, "cancelled", r.error, at, ""});
      return;
    }
  }
  store.insert_run(r, workflow_id);
  events.push_back({EngineEvent::Kind::kRunStarted, r.id, "", "", 0, "running", "", at, ""});
  for (auto& victim : victims) {  // cancel_oldest
    cancel_run(victim, "concurrency limit: replaced by the newer run " + r.id +
                           " (strategy cancel_oldest)");
  }
  auto p = progress(def, r);
  if (claim) p.set_claim_hook(std::move(claim));
  p.create_tasks();
}

void Engine::Impl::Hooks::cancel_run(Run& r, const std::string& reason) {
  {
    std::lock_guard lock(impl.cancelled_mu);
    for (const auto& row : store.tasks_of(r.id)) {
      if (row.task.status == TaskStatus::kRunning) impl.cancelled.insert(row.task.id);
    }
  }
  const auto def = impl.definition(t, impl.workflow_of(store, r.id));
  progress(*def, r).finish_run(RunStatus::kCancelled, reason);
}

void Engine::Impl::Hooks::cancel_child(const std::string& child_run_id, const std::string& reason) {
  store.lock_run(child_run_id);
  auto child = store.find_run(child_run_id);
  if (child && !is_terminal(child->status)) cancel_run(*child, reason);
}

void Engine::Impl::Hooks::run_finished(const Run& run, const RunStore::Finished& what) {
  if (!what.parent_task_id.empty()) {
    // The task waiting for this child ends as it ended.
    auto row = store.find_task(what.parent_task_id);
    if (row && row->task.status == TaskStatus::kWaiting && row->task.child_run_id == run.id) {
      auto& task = row->task;
      if (run.status == RunStatus::kSucceeded) {
        task.status = TaskStatus::kSucceeded;
        task.output = run.output;
      } else {
        task.status =
            run.status == RunStatus::kTimedOut ? TaskStatus::kTimedOut : TaskStatus::kFailed;
        task.error = internal::child_error(run);
      }
      task.finished_at = at;
      row->close_deadline.reset();
      store.update_task(*row);
      events.push_back({task.status == TaskStatus::kSucceeded ? EngineEvent::Kind::kTaskSucceeded
                                                              : EngineEvent::Kind::kTaskFailed,
                        task.run_id, task.id, task.key, task.attempt,
                        std::string(to_string(task.status)), task.error, at, ""});
      impl.advance(t, store, task.run_id, at, events);
    }
  }
  if (what.concurrency_key) release(what.workflow, *what.concurrency_key);
}

void Engine::Impl::Hooks::release(const std::string& workflow, const std::string& key) {
  for (;;) {
    auto next = store.first_in_group(workflow, key, false);
    if (!next) return;
    const auto def = impl.definition(t, impl.workflow_of(store, next->id));
    const int limit = def->concurrency ? def->concurrency->limit : 1;
    if (store.active_in_group(workflow, key) >= limit) return;
    next->status = RunStatus::kRunning;
    if (!next->started_at) next->started_at = at;
    if (def->timeout) next->deadline_at = at + us(*def->timeout);
    store.update_run(*next);
    events.push_back({EngineEvent::Kind::kRunStarted, next->id, "", "", 0, "running", "", at, ""});
    auto p = progress(*def, *next);
    // A queued new run has no tasks yet; a queued retry has its own.
    if (store.tasks_of(next->id).empty())
      p.create_tasks();
    else
      p.advance();
  }
}

namespace {

class ContextImpl final : public TaskContext {
 public:
  // `input` is the claim's input with its secrets put in.
  ContextImpl(Engine::Impl& engine, const Claim& c, std::string input)
      : engine_(engine), c_(c), input_(std::move(input)) {}

  const std::string& run_id() const noexcept override { return c_.run_id; }
  const std::string& task_id() const noexcept override { return c_.task_id; }
  const std::string& task_key() const noexcept override { return c_.task_key; }
  int attempt() const noexcept override { return c_.attempt; }
  std::string idempotency_key() const override {
    return c_.run_id + "/" + c_.task_key + "/" + std::to_string(c_.attempt);
  }
  const std::string& input() const noexcept override { return input_; }
  const std::string& agent_id() const noexcept override { return c_.agent_id; }

  void log(LogLevel level, std::string_view message) override {
    TaskLogLine line{
        new_uuid_v7(), c_.task_id, c_.attempt, level, engine_.redact(message.substr(0, 64 * 1024)),
        engine_.now()};
    engine_.db.write([&](Txn& t) { RunStore(t).insert_log(line); });
    engine_.emit({{EngineEvent::Kind::kTaskLog, c_.run_id, c_.task_id, c_.task_key, c_.attempt,
                   std::string(to_string(level)), "", line.at, line.message}});
  }

  void heartbeat() override {
    const Micros at = engine_.now();
    const auto until = engine_.lease_until(c_.timeouts, at, c_.close_deadline);
    const bool ok = engine_.db.write([&](Txn& t) {
      return RunStore(t).extend_lease(c_.task_id, c_.attempt, c_.lease_owner, at, until);
    });
    if (!ok) {
      throw Error(ErrorCode::kConflict, "task " + c_.task_key + " attempt " +
                                            std::to_string(c_.attempt) +
                                            " no longer holds its lease");
    }
  }

  BlobInfo put_artifact(std::string_view name, std::string_view bytes) override {
    return engine_.store_artifact(c_, name, bytes);
  }

  bool cancelled() const noexcept override {
    {
      std::lock_guard lock(engine_.cancelled_mu);
      if (engine_.cancelled.count(c_.task_id)) return true;
    }
    // Cancels from elsewhere (another engine, a failed sibling, a run
    // timeout) show in the database: the attempt no longer holds its task.
    const Micros at = engine_.now();
    std::lock_guard lock(mu_);
    if (lost_) return true;
    if (at - checked_at_ < 250'000 && checked_at_ != 0) return false;
    checked_at_ = at;
    try {
      lost_ = engine_.db.read([&](Txn& t) {
        auto rs =
            t.query("SELECT status, attempt, lease_owner FROM tasks WHERE id = $1", {c_.task_id});
        return rs.empty() || rs[0][0].as_text() != "running" || rs[0][1].as_int() != c_.attempt ||
               rs[0][2].is_null() || rs[0][2].as_text() != c_.lease_owner;
      });
    } catch (...) {
      // Unknown: keep working; the completion is fenced anyway.
    }
    return lost_;
  }

 private:
  Engine::Impl& engine_;
  const Claim& c_;
  std::string input_;
  mutable std::mutex mu_;
  mutable Micros checked_at_ = 0;
  mutable bool lost_ = false;
};

}  // namespace

int Engine::Impl::execute(const Claim& first) {
  int ran = 0;
  for (std::optional<Claim> next = first; next; ++ran) {
    const Claim c = std::move(*next);
    next = execute_one(c);
  }
  return ran;
}

std::optional<Claim> Engine::Impl::execute_one(const Claim& c, bool async) {
  TaskFunction fn;
  if (c.function.starts_with("process:")) {
    fn = [this, timeouts = c.timeouts](TaskContext& ctx) {
      return run_process_task(ctx, timeouts);
    };
  } else {
    std::lock_guard lock(functions_mu);
    if (auto it = functions.find(c.function); it != functions.end()) fn = it->second;
  }
  if (!fn) {
    const auto error = "no function \"" + c.function + "\" is registered in this engine";
    try {
      if (async) {
        forget_cancel(c.task_id);
        record_later(outcome_of(c, false, error, true));
      } else {
        complete(c, false, error, true);
      }
    } catch (const Error&) {
    }
    return std::nullopt;
  }
  // A claim that waited (in the queue, or behind other inline tasks) renews
  // its lease before it starts, and is dropped if the lease is already gone.
  const Micros at = now();
  if (at > c.started_at + (c.lease_expires_at - c.started_at) / 2) {
    try {
      const auto until = lease_until(c.timeouts, at, c.close_deadline);
      const bool held = db.write([&](Txn& t) {
        return RunStore(t).extend_lease(c.task_id, c.attempt, c.lease_owner, at, until);
      });
      if (!held) return std::nullopt;
    } catch (const Error&) {
      return std::nullopt;  // the lease will expire and the task will run again
    }
  }
  bool ok = false;
  bool retryable = true;
  std::string result;
  try {
    // Secrets go in now, in memory only; a missing one fails the attempt
    // (and may exist by the next one).
    ContextImpl ctx(*this, c, resolve_secrets(c));
    const Micros began = now();
    result = fn(ctx);
    note_run_time(now() - began);
    ok = true;
  } catch (const Error& e) {
    result = e.what();
    retryable = e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kPermissionDenied;
  } catch (const std::exception& e) {
    result = e.what();
  } catch (...) {
    result = "the task function threw something that is not a std::exception";
  }
  if (!ok) result = redact(result);
  try {
    if (async) {
      forget_cancel(c.task_id);
      record_later(outcome_of(c, ok, std::move(result), retryable));
      return std::nullopt;
    }
    return complete(c, ok, result, retryable);
  } catch (const Error&) {
    // The result could not be recorded (the database failed). The attempt's
    // lease expires and the task runs again: execution is at-least-once.
    return std::nullopt;
  }
}

std::string Engine::Impl::run_process_task(TaskContext& ctx, const TaskTimeouts& timeouts) {
  const auto agent = registry.get(ctx.agent_id());
  const auto v = registry.get_version(agent.id, *agent.active_version);
  ProcessCall call;
  // Its configuration, with the secrets it names, only in the attempt's directory.
  call.files.emplace_back("agent.json", options.secrets ? options.secrets->resolve_references(
                                                              agent.configuration, agent.owner)
                                                        : agent.configuration);
  call.argv = parse_process_argv(v.executor);
  check_allowed(call.argv, options.processes);  // kPermissionDenied: retrying cannot help
  call.input = ctx.input();
  if (timeouts.start_to_close) call.timeout = *timeouts.start_to_close;
  call.on_stderr_line = [&ctx](std::string_view line) { ctx.log(LogLevel::kInfo, line); };
  call.cancelled = [&ctx] { return ctx.cancelled(); };
  const auto r = run_process(call, options.processes);
  if (r.exit_code != 0 || r.timed_out || r.cancelled || r.output_too_large) {
    throw Error(ErrorCode::kUnavailable, describe(r, options.processes));
  }
  for (const auto& [name, bytes] : r.artifacts) {
    ctx.put_artifact(name, bytes);
    ctx.log(LogLevel::kInfo, "artifact " + name + " (" + std::to_string(bytes.size()) + " bytes)");
  }
  return r.output.empty() ? "null" : r.output;
}

std::vector<Migration> Engine::migrations() {
  auto out = WorkflowCatalog::migrations();
  auto runs = RunStore::migrations();
  out.insert(out.end(), runs.begin(), runs.end());
  auto outbox = internal::Outbox::migrations();
  out.insert(out.end(), outbox.begin(), outbox.end());
  return out;
}

Engine::Engine(Database& db, Registry& registry, WorkflowCatalog& catalog, EngineOptions options) {
  if (!options.clock)
    throw Error(ErrorCode::kInvalidArgument, "EngineOptions.clock: must not be null");
  if (options.workers < 0 || options.workers > 1024) {
    throw Error(ErrorCode::kInvalidArgument, "EngineOptions.workers: must be between 0 and 1024");
  }
  if (options.engine_id.empty()) options.engine_id = "engine-" + new_uuid_v7();
  if (options.bus) {
    if (!options.event_topic.empty())
      internal::check_topic(options.event_topic, "EngineOptions.event_topic");
    internal::check_topic(options.completion_topic, "EngineOptions.completion_topic");
  }
  db.migrate(migrations());
  impl_ = std::make_shared<Impl>(db, registry, catalog, std::move(options));
  if (db.dialect() == Dialect::kPostgres) {
    impl_->listening = db.listen(Impl::kWorkChannel, [weak = std::weak_ptr<Impl>(impl_)] {
      if (auto impl = weak.lock()) impl->notify_scheduler();
    });
  }
  if (impl_->options.bus) {
    impl_->relay = std::make_unique<internal::OutboxRelay>(db, *impl_->options.bus);
    // Every engine on the database takes completions in one group: any of
    // them can record any completion (the fence decides).
    SubscribeOptions so;
    so.poll_interval = std::chrono::milliseconds(20);
    impl_->completions = impl_->options.bus->subscribe(
        impl_->options.completion_topic, "devcycle-engine",
        [impl = impl_.get()](const Delivery& d) {
          impl->accept_completion(d.message.payload);
          return Ack::kAck;
        },
        so);
  }
  impl_->registry_events =
      registry.subscribe([weak = std::weak_ptr<Impl>(impl_)](const AgentEvent&) {
        if (auto impl = weak.lock()) {
          std::lock_guard lock(impl->resolutions_mu);
          impl->resolutions.clear();
        }
      });
  if (impl_->options.workers > 0) {
    try {
      for (int i = 0; i < impl_->options.workers; ++i) {
        impl_->workers.emplace_back([impl = impl_.get()] { impl->worker_loop(); });
      }
      impl_->dispatcher = std::thread([impl = impl_.get()] { impl->dispatch_loop(); });
      impl_->scheduler = std::thread([impl = impl_.get()] { impl->scheduler_loop(); });
    } catch (const std::system_error& e) {
      {
        std::lock_guard lock(impl_->queue_mu);
        impl_->stopping = true;
      }
      impl_->queue_cv.notify_all();
      for (auto& w : impl_->workers) w.join();
      impl_->stop_dispatcher();
      throw Error(ErrorCode::kResourceExhausted,
                  std::string("engine: cannot start its threads: ") + e.what());
    }
  }
}

Engine::~Engine() {
  auto& impl = *impl_;
  impl.completions.reset();  // no more completions from other processes
  {
    std::lock_guard lock(impl.queue_mu);
    impl.stopping = true;
  }
  impl.scheduler_cv.notify_all();
  impl.queue_cv.notify_all();
  if (impl.scheduler.joinable()) impl.scheduler.join();
  for (auto& w : impl.workers) w.join();
  {
    // Outcomes handed over are recorded before the engine goes.
    std::unique_lock lock(impl.record_mu);
    impl.record_cv.wait(lock, [&] { return impl.record_writes == 0; });
  }
  std::deque<Claim> unstarted;
  {
    std::lock_guard lock(impl.queue_mu);
    unstarted.swap(impl.queue);
  }
  // Claimed but never started: give them back without spending an attempt.
  if (!unstarted.empty()) {
    try {
      impl.db.write([&](Txn& t) {
        for (const auto& c : unstarted) {
          // (An attempt is recorded when it ends, so there is no row to remove.)
          t.execute(
              "UPDATE tasks SET status = 'ready', attempt = attempt - 1, lease_owner = NULL, "
              "lease_expires_at = NULL, close_deadline = NULL WHERE id = $1 AND attempt = $2 "
              "AND lease_owner = $3 AND status = 'running'",
              {c.task_id, c.attempt, c.lease_owner});
        }
      });
    } catch (const Error&) {
      // Their leases expire instead, and they run again.
    }
  }
  impl.stop_dispatcher();
  impl.relay.reset();  // a last attempt to publish what the outbox holds
}

void Engine::register_function(std::string name, TaskFunction fn) {
  internal::check_name("function name", name, 128, "a-zA-Z0-9", "a-zA-Z0-9._-",
                       "[A-Za-z0-9][A-Za-z0-9._-]*");
  if (!fn) throw Error(ErrorCode::kInvalidArgument, "function " + name + ": is empty");
  {
    std::lock_guard lock(impl_->functions_mu);
    impl_->functions[std::move(name)] = std::move(fn);
  }
  std::lock_guard lock(impl_->resolutions_mu);
  impl_->resolutions.clear();
}

namespace {

// An error about the i-th run of a batch: "runs[2].input: ..." when the
// message starts with a field, else "runs[2]: ...".
std::string in_batch(std::size_t i, std::string_view message) {
  const auto colon = message.find(':');
  const bool field = colon != std::string_view::npos && colon > 0 &&
                     message.substr(0, colon).find(' ') == std::string_view::npos;
  return "runs[" + std::to_string(i) + "]" + (field ? "." : ": ") + std::string(message);
}

// A run checked and made ready to insert, on the caller's thread.
struct PreparedStart {
  const StartRun* request = nullptr;
  std::string workflow_id;
  std::shared_ptr<const WorkflowDefinition> definition;
  Run run;
};

}  // namespace

Run Engine::start(const StartRun& request) {
  return start_many(std::span<const StartRun>(&request, 1)).front();
}

std::vector<Run> Engine::start_many(std::span<const StartRun> requests) {
  if (requests.empty()) return {};
  if (requests.size() > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "runs: " + std::to_string(requests.size()) + " runs in one call; at most 1000");
  }
  const Micros at = impl_->now();
  // Workflow versions looked up once per call, whatever the number of runs.
  std::map<std::pair<std::string, std::optional<int>>, std::pair<StoredWorkflow, JsonSchema>>
      workflows;
  std::vector<PreparedStart> prepared;
  prepared.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& request = requests[i];
    try {
      internal::check_text("owner", request.owner, 128, true);
      internal::check_text("idempotency_key", request.idempotency_key, 256);
      for (const auto& [k, v] : request.labels) {
        internal::check_name("labels key", k, 63, "a-z0-9", "a-z0-9._/-", "[a-z0-9][a-z0-9._/-]*");
        internal::check_text("labels[\"" + k + "\"]", v, 256);
      }
      if (request.input.size() > 1024 * 1024)
        throw Error(ErrorCode::kInvalidArgument, "input: larger than 1 MiB");
      auto found = workflows.find({request.workflow, request.version});
      if (found == workflows.end()) {
        auto workflow = impl_->catalog.get(request.workflow, request.version);
        auto schema = JsonSchema::parse(workflow.definition.input_schema, "input_schema");
        found = workflows
                    .emplace(std::make_pair(request.workflow, request.version),
                             std::make_pair(std::move(workflow), std::move(schema)))
                    .first;
      }
      const auto& [workflow, schema] = found->second;
      const auto input = internal::parse_json(request.input, "input");
      if (!input.is_object())
        throw Error(ErrorCode::kInvalidArgument, "input: must be a JSON object");
      if (const auto violations = internal::validate(schema, input); !violations.empty()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "input: does not match the workflow's input_schema: " + describe(violations));
      }
      PreparedStart p;
      p.request = &request;
      p.workflow_id = workflow.id;
      {
        std::lock_guard lock(impl_->definitions_mu);
        auto& known = impl_->definitions[workflow.id];
        if (!known) known = std::make_shared<const WorkflowDefinition>(workflow.definition);
        p.definition = known;
      }
      Run& run = p.run;
      run.id = new_uuid_v7();
      run.workflow = workflow.name;
      run.workflow_version = workflow.version;
      run.owner = request.owner;
      run.status = RunStatus::kRunning;
      run.input = input.dump(-1, ' ', false, json::error_handler_t::replace);
      run.idempotency_key = request.idempotency_key;
      run.labels = request.labels;
      run.created_at = at;
      run.started_at = at;
      if (workflow.definition.timeout) run.deadline_at = at + us(*workflow.definition.timeout);
      if (workflow.definition.concurrency)
        run.concurrency_key = concurrency_key(*workflow.definition.concurrency, input);
      prepared.push_back(std::move(p));
    } catch (const Error& e) {
      if (requests.size() == 1) throw;
      throw Error(e.code(), in_batch(i, e.what()));
    }
  }
  std::vector<EngineEvent> events;
  std::vector<Claim> claims;
  // Roots are claimed as they are inserted, up to what the workers' queue
  // takes now; the scheduler claims the rest.
  const int room = impl_->claim_room();
  auto result = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    store.defer_writes();  // the runs and their tasks inserted with one statement each
    events.clear();
    claims.clear();
    Impl::Hooks hooks(*impl_, t, store, at, events);
    Impl::AgentLoad load(store);
    std::vector<Run> runs;
    runs.reserve(prepared.size());
    std::map<std::string, std::int64_t> active;  // owner -> active runs, with this call's
    if (impl_->options.max_active_runs_per_owner > 0) {
      std::set<std::string_view> owners;  // sorted: servers lock them in one order
      for (const auto& p : prepared) owners.insert(p.request->owner);
      for (const auto owner : owners) internal::lock_quota(t, "max_active_runs_per_owner", owner);
    }
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      const auto& p = prepared[i];
      const auto& request = *p.request;
      const auto check_quota = [&] {
        const int quota = impl_->options.max_active_runs_per_owner;
        if (quota <= 0) return;
        auto [it, fresh] = active.try_emplace(request.owner, 0);
        if (fresh) {
          it->second = store.active_runs_of(request.owner);
        }
        if (it->second >= quota) {
          std::string message = "quota: owner \"" + request.owner + "\" has " +
                                std::to_string(it->second) +
                                " active runs, the most allowed (max_active_runs_per_owner); "
                                "wait for one to finish";
          if (prepared.size() > 1) message = in_batch(i, message);
          throw Error(ErrorCode::kResourceExhausted, std::move(message));
        }
        ++it->second;
      };
      if (!request.idempotency_key.empty()) {
        if (auto existing = store.find_run_by_key(request.owner, request.idempotency_key)) {
          if (existing->workflow != p.run.workflow) {
            std::string message = "idempotency_key: \"" + request.idempotency_key +
                                  "\" was already used for a run of workflow \"" +
                                  existing->workflow + "\"";
            if (prepared.size() > 1) message = in_batch(i, message);
            throw Error(ErrorCode::kConflict, std::move(message));
          }
          runs.push_back(std::move(*existing));
          continue;
        }
      }
      check_quota();
      Run r = p.run;
      hooks.insert_run(r, p.workflow_id, *p.definition, [&](TaskRow& row, const TaskDefinition& d) {
        if (static_cast<int>(claims.size()) >= room) return false;
        auto c = impl_->claim_in_place(row, d, p.workflow_id, at, events, load);
        if (c) claims.push_back(std::move(*c));
        return c.has_value();
      });
      runs.push_back(std::move(r));
    }
    store.flush();
    impl_->stage(t, events);
    return runs;
  });
  impl_->post(std::move(events), std::move(claims));
  return result;
}

RunDetail Engine::get(std::string_view run_id) {
  return impl_->db.read([&](Txn& t) {
    RunStore store(t);
    auto run = store.find_run(run_id);
    if (!run) throw run_not_found(run_id);
    RunDetail d{*run, {}};
    for (auto& row : store.tasks_of(run_id)) {
      row.task.attempts = store.attempts_of(row);
      d.tasks.push_back(std::move(row.task));
    }
    return d;
  });
}

int Engine::purge_finished(Micros before, int limit) {
  if (limit < 1 || limit > 10'000) {
    throw Error(ErrorCode::kInvalidArgument, "limit: must be between 1 and 10000");
  }
  std::set<std::string> digests;
  const int purged = impl_->db.write([&](Txn& t) {
    digests.clear();
    std::vector<std::string> runs;
    for (const auto& r : t.query(
             "SELECT id FROM workflow_runs WHERE status IN ('succeeded', 'failed', 'cancelled', "
             "'timed_out') AND finished_at < $1 ORDER BY finished_at LIMIT " +
                 std::to_string(limit),
             {before})) {
      runs.push_back(r[0].as_text());
    }
    for (const auto& id : runs) {
      for (const auto& r : t.query("SELECT DISTINCT digest FROM artifacts WHERE run_id = $1", {id}))
        digests.insert(r[0].as_text());
      t.execute("DELETE FROM task_logs WHERE task_id IN (SELECT id FROM tasks WHERE run_id = $1)",
                {id});
      t.execute(
          "DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM tasks WHERE run_id = $1)",
          {id});
      t.execute("DELETE FROM artifacts WHERE run_id = $1", {id});
      t.execute("DELETE FROM tasks WHERE run_id = $1", {id});
      t.execute("DELETE FROM workflow_runs WHERE id = $1", {id});
    }
    return static_cast<int>(runs.size());
  });
  if (impl_->options.blobs && !digests.empty()) {
    const Micros recent = SystemClock::instance()->now() - 10LL * 60 * 1'000'000;
    for (const auto& d : digests) {
      const bool named = impl_->db.read([&](Txn& t) {
        return !t.query("SELECT 1 FROM artifacts WHERE digest = $1 LIMIT 1", {d}).empty();
      });
      if (named) continue;
      const auto info = impl_->options.blobs->stat(d);
      if (info && info->stored_at < recent) impl_->options.blobs->remove(d);
    }
  }
  return purged;
}

std::vector<Artifact> Engine::artifacts(std::string_view run_id) {
  return impl_->db.read([&](Txn& t) {
    RunStore store(t);
    if (!store.find_run(run_id)) throw run_not_found(run_id);
    return store.artifacts_of(run_id);
  });
}

Artifact Engine::artifact(std::string_view run_id, std::string_view artifact_id) {
  for (auto& a : artifacts(run_id)) {
    if (a.id == artifact_id) return a;
  }
  throw Error(ErrorCode::kNotFound, "artifact \"" + std::string(artifact_id.substr(0, 64)) +
                                        "\" not found in run " + std::string(run_id.substr(0, 64)));
}

TaskRun Engine::get_task(std::string_view task_id) {
  return impl_->db.read([&](Txn& t) {
    RunStore store(t);
    auto row = store.find_task(task_id);
    if (!row) throw task_not_found(task_id);
    row->task.attempts = store.attempts_of(*row);
    return std::move(row->task);
  });
}

RunPage Engine::list(const RunFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "limit: " + std::to_string(filter.limit) + " is not between 1 and 1000");
  }
  if (!filter.page_token.empty() && !is_uuid(filter.page_token)) {
    throw Error(ErrorCode::kInvalidArgument, "page_token: not a token from a previous page");
  }
  RunPage page;
  // Labels are matched after the query, so scan batches until the page is
  // full (or the runs run out); the token is the last run returned.
  RunFilter batch_filter = filter;
  const int batch = std::max(filter.limit + 1, 200);
  while (static_cast<int>(page.runs.size()) <= filter.limit) {
    auto rows =
        impl_->db.read([&](Txn& t) { return RunStore(t).list_runs_scanned(batch_filter, batch); });
    for (auto& r : rows.matched) page.runs.push_back(std::move(r));
    if (rows.scanned < batch || rows.last_id.empty()) break;
    batch_filter.page_token = rows.last_id;
  }
  if (static_cast<int>(page.runs.size()) > filter.limit) {
    page.runs.resize(filter.limit);
    page.next_page_token = page.runs.back().id;
  }
  return page;
}

Run Engine::cancel(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status == RunStatus::kCancelled) return *r;
    if (is_terminal(r->status)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "run " + r->id + " already " + std::string(to_string(r->status)));
    }
    Impl::Hooks(*impl_, t, store, at, events).cancel_run(*r, "cancelled");
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  return run;
}

TaskRun Engine::cancel_task(std::string_view task_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto task = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    auto row = store.find_task(task_id);
    if (!row) throw task_not_found(task_id);
    if (row->task.status == TaskStatus::kCancelled) return row->task;
    if (is_terminal(row->task.status)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "task " + row->task.key + " already " + std::string(to_string(row->task.status)));
    }
    if (row->task.status == TaskStatus::kRunning && row->task.lease_expires_at) {
      store.end_attempt(*row, "cancelled", "cancelled", at);
    }
    const bool had_child =
        row->task.status == TaskStatus::kWaiting && !row->task.child_run_id.empty();
    row->task.status = TaskStatus::kCancelled;
    row->task.error = "cancelled";
    row->task.finished_at = at;
    row->task.lease_expires_at.reset();
    row->start_deadline.reset();
    store.update_task(*row);
    events.push_back({EngineEvent::Kind::kTaskCancelled, row->task.run_id, row->task.id,
                      row->task.key, row->task.attempt, "cancelled", "cancelled", at, ""});
    if (had_child) {
      Impl::Hooks(*impl_, t, store, at, events)
          .cancel_child(row->task.child_run_id, "its parent task was cancelled");
    }
    impl_->advance(t, store, row->task.run_id, at, events);
    impl_->stage(t, events);
    return row->task;
  });
  {
    std::lock_guard lock(impl_->cancelled_mu);
    impl_->cancelled.insert(task.id);
  }
  impl_->emit(events);
  return task;
}

bool Engine::signal(std::string_view run_id, std::string_view name, std::string_view payload) {
  internal::check_lower_name("signal", name, 64);
  if (payload.size() > 1024 * 1024) {
    throw Error(ErrorCode::kInvalidArgument, "payload: larger than 1 MiB");
  }
  const std::string canonical = internal::parse_json(payload, "payload").dump();
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  const bool delivered = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (is_terminal(r->status)) {
      throw Error(ErrorCode::kInvalidArgument, "run " + r->id + " already " +
                                                   std::string(to_string(r->status)) +
                                                   "; it takes no signals");
    }
    const auto def = impl_->definition(t, impl_->workflow_of(store, r->id));
    for (auto row : store.tasks_of(r->id)) {
      if (row.task.status != TaskStatus::kWaiting) continue;
      if (RunProgress::definition_of(*def, row.task.definition_id).signal != name) continue;
      row.task.status = TaskStatus::kSucceeded;
      row.task.output = canonical;
      row.task.finished_at = at;
      row.close_deadline.reset();
      store.update_task(row);
      events.push_back({EngineEvent::Kind::kTaskSucceeded, row.task.run_id, row.task.id,
                        row.task.key, row.task.attempt, "succeeded", "", at, ""});
      impl_->advance(t, store, r->id, at, events);
      impl_->stage(t, events);
      return true;
    }
    store.keep_signal(r->id, name, canonical, at);
    return false;
  });
  impl_->emit(events);
  return delivered;
}

Run Engine::pause(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status == RunStatus::kPaused) return *r;
    if (r->status != RunStatus::kRunning) {
      throw Error(ErrorCode::kInvalidArgument, "run " + r->id + " is " +
                                                   std::string(to_string(r->status)) +
                                                   "; only running runs can be paused");
    }
    r->status = RunStatus::kPaused;
    store.update_run(*r);
    // What is ready waits; what runs finishes.
    for (auto row : store.tasks_of(r->id)) {
      if (row.task.status != TaskStatus::kReady) continue;
      row.task.status = TaskStatus::kPending;
      row.task.ready_at.reset();
      row.task.available_at.reset();
      row.start_deadline.reset();
      store.update_task(row);
    }
    events.push_back({EngineEvent::Kind::kRunPaused, r->id, "", "", 0, "paused", "", at, ""});
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  return run;
}

Run Engine::resume(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status == RunStatus::kRunning) return *r;
    if (r->status != RunStatus::kPaused) {
      throw Error(ErrorCode::kInvalidArgument, "run " + r->id + " is " +
                                                   std::string(to_string(r->status)) +
                                                   "; only paused runs can be resumed");
    }
    r->status = RunStatus::kRunning;
    store.update_run(*r);
    events.push_back({EngineEvent::Kind::kRunResumed, r->id, "", "", 0, "running", "", at, ""});
    // Fan-out elements were made ready when their group began: they are
    // ready again as they are; everything else is advanced as usual.
    for (auto row : store.tasks_of(r->id)) {
      if (!row.task.index || row.task.status != TaskStatus::kPending) continue;
      row.task.status = TaskStatus::kReady;
      row.task.ready_at = at;
      row.task.available_at = at;
      store.update_task(row);
      EngineEvent e{EngineEvent::Kind::kTaskReady,
                    r->id,
                    row.task.id,
                    row.task.key,
                    row.task.attempt,
                    "ready",
                    "",
                    at,
                    ""};
      e.available_at = at;
      e.priority = row.task.priority;
      events.push_back(std::move(e));
    }
    const auto def = impl_->definition(t, impl_->workflow_of(store, r->id));
    Impl::Hooks(*impl_, t, store, at, events).progress(*def, *r).advance();
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  return run;
}

Run Engine::retry(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status != RunStatus::kFailed && r->status != RunStatus::kTimedOut &&
        r->status != RunStatus::kCancelled) {
      throw Error(ErrorCode::kInvalidArgument,
                  "run " + r->id + " is " + std::string(to_string(r->status)) +
                      "; only failed, timed-out or cancelled runs can be retried");
    }
    const auto def = impl_->definition(t, impl_->workflow_of(store, r->id));
    const auto rows = store.tasks_of(r->id);
    std::set<std::string> redo;  // definition ids to run again
    for (const auto& row : rows) {
      if (!row.task.index && row.task.status != TaskStatus::kSucceeded &&
          row.task.status != TaskStatus::kSkipped) {
        redo.insert(row.task.definition_id);
      }
    }
    for (auto row : rows) {
      if (!redo.count(row.task.definition_id)) continue;
      if (row.task.index) {
        t.execute("DELETE FROM tasks WHERE id = $1",
                  {row.task.id});  // fan-out elements are made anew
        continue;
      }
      const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
      row.task.status = TaskStatus::kPending;
      row.task.error.clear();
      row.task.output.clear();
      row.task.input.clear();
      row.task.max_attempts = row.task.attempt + d.retry.max_attempts;
      row.task.finished_at.reset();
      row.task.lease_expires_at.reset();
      row.task.ready_at.reset();
      row.task.available_at.reset();
      row.lease_owner.clear();
      row.start_deadline.reset();
      row.close_deadline.reset();
      row.task.child_run_id.clear();
      store.update_task(row);
    }
    Impl::Hooks hooks(*impl_, t, store, at, events);
    // Under a concurrency limit a retry takes a place like a new run.
    std::int64_t over = 0;
    if (def->concurrency && r->concurrency_key) {
      over = store.active_in_group(r->workflow, *r->concurrency_key) + 1 - def->concurrency->limit;
      if (over > 0 && def->concurrency->strategy == ConcurrencyStrategy::kCancelNewest) {
        throw Error(ErrorCode::kResourceExhausted,
                    "concurrency limit: " + group_name(*r) +
                        " is at its limit (strategy cancel_newest); retry when a run finishes");
      }
    }
    r->error.clear();
    r->output.clear();
    r->finished_at.reset();
    if (over > 0 && def->concurrency->strategy == ConcurrencyStrategy::kQueue) {
      r->status = RunStatus::kPending;
      r->deadline_at.reset();
      store.update_run(*r);
      events.push_back({EngineEvent::Kind::kRunQueued, r->id, "", "", 0, "pending", "", at, ""});
      impl_->stage(t, events);
      return *r;
    }
    r->status = RunStatus::kRunning;
    if (def->timeout) r->deadline_at = at + us(*def->timeout);
    store.update_run(*r);
    events.push_back({EngineEvent::Kind::kRunStarted, r->id, "", "", 0, "running", "", at, ""});
    for (; over > 0; --over) {  // cancel_oldest
      auto oldest = store.first_in_group(r->workflow, *r->concurrency_key, true, r->id);
      if (!oldest) break;
      hooks.cancel_run(*oldest, "concurrency limit: replaced by the retried run " + r->id +
                                    " (strategy cancel_oldest)");
    }
    auto progress = hooks.progress(*def, *r);
    progress.advance();
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  impl_->notify_scheduler();
  return run;
}

TaskLogPage Engine::logs(std::string_view task_id, std::optional<int> attempt, int limit,
                         std::string page_token) {
  if (limit < 1 || limit > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "limit: " + std::to_string(limit) + " is not between 1 and 1000");
  }
  if (!page_token.empty() && !is_uuid(page_token)) {
    throw Error(ErrorCode::kInvalidArgument, "page_token: not a token from a previous page");
  }
  TaskLogPage page;
  page.lines = impl_->db.read([&](Txn& t) {
    RunStore store(t);
    if (!store.find_task(task_id)) {
      throw task_not_found(task_id);
    }
    return store.logs(task_id, attempt, page_token, limit + 1);
  });
  if (static_cast<int>(page.lines.size()) > limit) {
    page.lines.resize(limit);
    page.next_page_token = page.lines.back().id;
  }
  return page;
}

Subscription Engine::subscribe(std::function<void(const EngineEvent&)> handler) {
  return impl_->hub->subscribe(std::move(handler));
}

namespace {

constexpr std::string_view kRemoteExecutor = "remote";

// Whether the agent's deployed version offers what the task asks for.
bool serves(const Agent& agent, const AgentVersion& version, const TaskDefinition& d) {
  if (!d.agent.empty()) return d.agent == agent.owner + "/" + agent.name;
  if (d.capability.empty()) return false;
  const auto range = VersionRange::parse(d.version_range);
  return std::any_of(
      version.capabilities.begin(), version.capabilities.end(),
      [&](const Capability& c) { return c.name == d.capability && range.contains(c.version); });
}

void check_remote_call(std::string_view task_id, int attempt, std::string_view lease_owner) {
  if (!is_uuid(task_id)) throw task_not_found(task_id);
  if (attempt < 1) throw Error(ErrorCode::kInvalidArgument, "attempt: must be at least 1");
  if (lease_owner.empty() || lease_owner.size() > 256)
    throw Error(ErrorCode::kInvalidArgument, "lease_owner: must be 1-256 bytes");
}

}  // namespace

std::vector<RemoteTask> Engine::claim_remote(std::string_view agent_id, int max,
                                             std::chrono::milliseconds lease) {
  if (max < 1 || max > 100) throw Error(ErrorCode::kInvalidArgument, "max: must be 1..100");
  if (lease < std::chrono::seconds(1) || lease > std::chrono::hours(1))
    throw Error(ErrorCode::kInvalidArgument, "lease: must be between 1 s and 1 h");
  // Registry reads happen here, outside the write.
  const auto agent = impl_->registry.get(agent_id);
  if (!agent.active_version || agent.status == AgentStatus::kDisabled) return {};
  const auto version = impl_->registry.get_version(agent.id, *agent.active_version);
  if (version.executor != kRemoteExecutor) {
    throw Error(ErrorCode::kInvalidArgument,
                "agent \"" + agent.name + "\": its deployed version " +
                    version.version.to_string() + " has executor \"" + version.executor +
                    "\", not \"remote\"; only remote agents claim tasks over the API");
  }
  const Micros at = impl_->now();
  const std::string owner = "remote:" + agent.id;
  std::vector<EngineEvent> events;
  std::vector<std::string> owners;  // of each claimed task's run
  auto claimed = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    std::vector<RemoteTask> out;
    owners.clear();
    const int running = store.running_by_agent()[agent.id];
    const int room = std::min(max, agent.capacity - running);
    if (room <= 0) return out;
    for (const auto& row : store.ready_tasks(at, us(impl_->options.aging_step), 500)) {
      if (static_cast<int>(out.size()) >= room) break;
      const auto def = impl_->definition(t, impl_->workflow_of(store, row.task.run_id));
      const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
      if (!serves(agent, version, d) || impl_->rate_limited(d)) continue;
      // A remote agent runs code its owner controls: it gets the inputs (and
      // secrets) of its owner's runs only, unless an admin shared it.
      const auto run = store.find_run(row.task.run_id);
      if (!run || !may_serve(agent, run->owner)) continue;  // purged meanwhile, or not for it
      const auto& run_owner = run->owner;
      std::optional<Micros> close_deadline;
      if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
      const Micros until =
          close_deadline ? std::min(at + us(lease), *close_deadline) : at + us(lease);
      if (!store.claim(row, owner, agent.id, at, until, close_deadline)) continue;
      RemoteTask r{row.task.id, row.task.run_id, row.task.key, row.task.attempt + 1,
                   owner,       row.task.input,  "",           until};
      r.idempotency_key = r.run_id + "/" + r.task_key + "/" + std::to_string(r.attempt);
      events.push_back({EngineEvent::Kind::kTaskStarted, r.run_id, r.task_id, r.task_key, r.attempt,
                        "running", "", at, ""});
      out.push_back(std::move(r));
      owners.push_back(run_owner);
    }
    impl_->stage(t, events);
    return out;
  });
  impl_->emit(events);
  std::vector<RemoteTask> out;
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    auto& r = claimed[i];
    // The values of the secrets it names, as an in-process function gets them.
    if (impl_->options.secrets && r.input.find("[secret:") != std::string::npos) {
      try {
        r.input = impl_->options.secrets->resolve(r.task_id, r.input, owners[i]);
      } catch (const Error& e) {
        complete_remote(r.task_id, r.attempt, r.lease_owner, false, e.what(), false);
        continue;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool Engine::extend_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                           std::chrono::milliseconds lease) {
  check_remote_call(task_id, attempt, lease_owner);
  if (lease < std::chrono::seconds(1) || lease > std::chrono::hours(1))
    throw Error(ErrorCode::kInvalidArgument, "lease: must be between 1 s and 1 h");
  impl_->check_remote_serves(get_task(task_id));
  const Micros at = impl_->now();
  return impl_->db.write([&](Txn& t) {
    RunStore store(t);
    const auto row = store.leased(task_id, attempt, lease_owner, at);
    if (!row) return false;
    const Micros until =
        row->close_deadline ? std::min(at + us(lease), *row->close_deadline) : at + us(lease);
    return store.extend_lease(task_id, attempt, lease_owner, at, until);
  });
}

bool Engine::log_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                        LogLevel level, std::string_view message) {
  check_remote_call(task_id, attempt, lease_owner);
  impl_->check_remote_serves(get_task(task_id));
  TaskLogLine line;
  line.id = new_uuid_v7();
  line.task_id = task_id;
  line.attempt = attempt;
  line.level = level;
  line.message = impl_->redact(message.substr(0, 64 * 1024));
  line.at = impl_->now();
  std::string run_id, task_key;
  const bool stored = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    const auto row = store.leased(task_id, attempt, lease_owner, line.at);
    if (!row) return false;
    run_id = row->task.run_id;
    task_key = row->task.key;
    store.insert_log(line);
    return true;
  });
  if (stored) {
    impl_->emit({{EngineEvent::Kind::kTaskLog, run_id, line.task_id, task_key, line.attempt,
                  std::string(to_string(line.level)), "", line.at, line.message}});
  }
  return stored;
}

bool Engine::complete_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                             bool ok, std::string_view output_or_error, bool retryable) {
  check_remote_call(task_id, attempt, lease_owner);
  if (output_or_error.size() > 16 * 1024 * 1024)
    throw Error(ErrorCode::kInvalidArgument, "output: larger than 16 MiB");
  const auto task = get_task(task_id);
  impl_->check_remote_serves(task);
  Claim c;
  c.task_id = task.id;
  c.run_id = task.run_id;
  c.task_key = task.key;
  c.workflow_id = impl_->workflow_of(task.run_id);
  c.agent_id = task.agent_id;
  c.lease_owner = lease_owner;
  c.attempt = attempt;
  c.started_at = task.started_at.value_or(0);
  bool recorded = false;
  auto next =
      impl_->complete(c, ok, ok ? std::string(output_or_error) : impl_->redact(output_or_error),
                      retryable, &recorded);
  if (next) {
    // A successor this engine runs in-process, claimed with the completion.
    if (impl_->options.workers == 0) {
      impl_->execute(*next);
    } else {
      {
        std::lock_guard lock(impl_->queue_mu);
        impl_->queue.push_back(std::move(*next));
      }
      impl_->queue_cv.notify_one();
    }
  }
  impl_->notify_scheduler();
  return recorded;
}

int Engine::tick() { return impl_->tick(); }

int Engine::run_until_idle() {
  if (impl_->options.workers != 0) {
    throw Error(ErrorCode::kInvalidArgument, "run_until_idle: only for engines with workers = 0");
  }
  int total = 0;
  for (int n; (n = impl_->tick()) > 0;) total += n;
  return total;
}

}  // namespace devcycle
