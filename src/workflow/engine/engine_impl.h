// The engine behind the Engine facade: one coordinator that owns the
// engine's parts and its threads, and whose methods are defined by theme in
// the files of this directory:
//
//   engine.cpp          the facade, threads (scheduler, workers), ticks, emit
//   run_admission.cpp   starting runs: checks, quotas, concurrency groups, child runs
//   run_control.cpp     cancel, pause, resume, retry, signals
//   run_queries.cpp     reads and retention
//   run_hooks.cpp       what a run's progress asks of the engine, failures and retries
//   claiming.cpp        claiming ready tasks: capacity, rate limits, eager successors
//   outcomes.cpp        recording attempts' outcomes, batched on the writer
//   maintenance.cpp     timeouts, expired leases, timers, missed starts
//   task_execution.cpp  running a claim: in-process functions, process agents, TaskContext
//   bus_dispatch.cpp    agents in other processes over the bus (assignments, completions)
//   remote_api.cpp      remote agents over the API (claim, extend, log, complete)
//
// Parts with state of their own are classes: RunnerResolver (who runs a
// task), DefinitionCache, ReadyTracker (SQLite's ready queue),
// EventPipeline (outbox, NOTIFY, subscribers), AgentLoad (capacity within
// one claim), Cancellations.
//
// Thread-safety: every member is guarded by its own mutex or is atomic,
// except `listening`, `relay`, `completions` and `registry_events`, which
// the constructor sets once before any thread or subscription uses them;
// methods may be called from the scheduler, the workers, the database's
// writer (record callbacks) and API callers at once. Errors are devcycle::Error.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "devcycle/workflow/engine.h"
#include "messaging/outbox.h"
#include "workflow/engine/agent_load.h"
#include "workflow/engine/cancellations.h"
#include "workflow/engine/claim.h"
#include "workflow/engine/definition_cache.h"
#include "workflow/engine/event_pipeline.h"
#include "workflow/engine/ready_tracker.h"
#include "workflow/engine/runner_resolver.h"
#include "workflow/run_progress.h"
#include "workflow/run_store.h"

namespace devcycle {

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  using Claim = internal::Claim;
  using RunStore = internal::RunStore;
  using TaskRow = internal::TaskRow;

  Impl(Database& d, Registry& r, WorkflowCatalog& c, EngineOptions o)
      : db(d),
        registry(r),
        catalog(c),
        options(std::move(o)),
        resolver(r, options),
        ready(d, std::max<Micros>(1, internal::us(options.aging_step))),
        pipeline(options),
        rng(std::random_device{}()) {}

  Database& db;
  Registry& registry;
  WorkflowCatalog& catalog;
  const EngineOptions options;

  internal::RunnerResolver resolver;
  internal::DefinitionCache definitions;
  internal::ReadyTracker ready;  // SQLite only
  internal::EventPipeline pipeline;
  internal::Cancellations cancelled;
  Subscription registry_events;  // forgets the resolver's lookups

  // The outbox relay publishing events and assignments to options.bus (when set).
  std::unique_ptr<internal::OutboxRelay> relay;
  Subscription completions;  // from agents in other processes

  // ---- engine.cpp: time, events, threads -------------------------------
  Micros now() const { return options.clock->now(); }
  // Task log lines and errors never keep a secret's value.
  std::string redact(std::string_view text) const {
    return options.secrets ? options.secrets->redact(text) : std::string(text);
  }
  // Inside a write: the events of this change go to the outbox with it.
  void stage(Txn& t, const std::vector<EngineEvent>& events) { pipeline.stage(t, events); }
  // After the commit: the ready queue kept current, the relay woken,
  // subscribers told.
  void emit(std::vector<EngineEvent> events);
  void note_ready(const std::vector<EngineEvent>& events);
  void notify_scheduler();
  std::chrono::microseconds idle_wait(int idle_passes);
  int tick();
  void scheduler_loop();
  void worker_loop();
  void start_threads();
  void stop_threads();
  // How many more claims the workers' queue takes now (see tick()).
  int claim_room();
  // Claims per worker: as many as run in a tenth of the default lease,
  // between 2 and 32.
  int claim_ahead() const;
  void note_run_time(Micros took);
  // Hands claims to the workers.
  void enqueue(std::vector<Claim> claims);

  std::mutex tick_mu;
  std::optional<Micros> last_maintenance;
  std::mutex queue_mu;  // guards queue, in_flight, stopping, wake
  std::condition_variable queue_cv;
  std::condition_variable scheduler_cv;
  std::deque<Claim> queue;
  int in_flight = 0;
  bool stopping = false;
  bool wake = false;
  // PostgreSQL: LISTEN for work other engines make, so that an idle
  // scheduler may sleep longer between polls (idle_wait()).
  Database::Listening listening;
  // The earliest future time a task this engine saw become ready is due
  // (a retry's backoff): an idle scheduler wakes by then at the latest.
  std::atomic<Micros> next_due{std::numeric_limits<Micros>::max()};
  // Whether the last claim pass found ready tasks (it may have taken none,
  // its agents being full): then the scheduler keeps polling at its pace.
  std::atomic<bool> saw_ready{false};
  // How long tasks run here, smoothed (microseconds); decides claim_ahead().
  std::atomic<Micros> typical_run{1'000'000};
  std::thread scheduler;
  std::vector<std::thread> workers;

  // ---- run_hooks.cpp: a run's progress inside one write ----------------
  // What runs need from the engine inside one write transaction: child
  // runs, the tasks that wait for them, and concurrency groups.
  struct Hooks final : internal::RunHooks {
    Hooks(Impl& i, Txn& tx, RunStore& s, Micros now, std::vector<EngineEvent>& e)
        : impl(i), t(tx), store(s), at(now), events(e) {}
    SecretStore* secrets() override { return impl.options.secrets; }
    Child start_child(const TaskRow& task, const TaskDefinition& d, const Run& parent,
                      const nlohmann::json& input) override;  // run_admission.cpp
    void run_finished(const Run& run, const RunStore::Finished& what) override;
    void cancel_child(const std::string& child_run_id, const std::string& reason) override;

    // Ends an open run as cancelled. Its running attempts are told at once,
    // before the transaction commits: should it roll back, such an attempt
    // may stop early, and its (fenced) completion is recorded as usual.
    void cancel_run(Run& run, const std::string& reason);
    // Inserts a new run (status running) with its tasks, admitted under its
    // workflow's concurrency limit: it may instead wait in `pending` (queue),
    // end cancelled at once (cancel_newest), or make room by cancelling the
    // oldest active runs of its group (cancel_oldest). run_admission.cpp.
    void insert_run(Run& run, const std::string& workflow_id, const WorkflowDefinition& def,
                    internal::RunProgress::ClaimHook claim = {});
    // Starts queued runs of a group while it has room. run_admission.cpp.
    void release(const std::string& workflow, const std::string& key);
    internal::RunProgress progress(const WorkflowDefinition& def, Run& run) {
      store.lock_run(run.id);  // progress is judged one transaction at a time
      return internal::RunProgress(store, def, run, at, events, *this);
    }

    Impl& impl;
    Txn& t;
    RunStore& store;
    Micros at;
    std::vector<EngineEvent>& events;
  };

  // The definition of a stored workflow version (through the transaction).
  std::shared_ptr<const WorkflowDefinition> definition(Txn& t, const std::string& workflow_id) {
    return definitions.get(t, workflow_id);
  }
  std::string workflow_of(const std::string& run_id) { return definitions.workflow_of(db, run_id); }
  std::string workflow_of(RunStore& store, const std::string& run_id) {
    return definitions.workflow_of(store, run_id);
  }
  // Advances the run after one of its tasks changed, in the same
  // transaction. Returns the run's task rows as they now are (empty when
  // the run had already finished).
  std::vector<TaskRow> advance(Txn& t, RunStore& store, const std::string& run_id, Micros at,
                               std::vector<EngineEvent>& events);
  // A failed or expired attempt: retry after backoff, or fail for good.
  void fail_attempt(Txn& t, RunStore& store, TaskRow& row, const std::string& attempt_status,
                    const std::string& error, bool retryable, Micros at,
                    std::vector<EngineEvent>& events);
  Micros backoff(const RetryPolicy& p, int attempt);
  Micros lease_until(const TaskTimeouts& t, Micros now, std::optional<Micros> close_deadline) const;
  std::mutex rng_mu;
  std::mt19937_64 rng;

  // ---- claiming.cpp ------------------------------------------------------
  enum class RowClaim { kClaimed, kFull, kLost };
  // Claims up to `free` ready tasks: for this engine's workers (returned),
  // or sent to bus agents with the claim's transaction.
  std::vector<Claim> claim(Micros at, int free);
  // claim() on PostgreSQL: candidates chosen inside the claim transaction.
  std::vector<Claim> claim_locked(Micros at, int free);
  // Claims one ready row for the first of `runners` with room.
  RowClaim claim_row(RunStore& store, const TaskRow& row, const TaskDefinition& d,
                     const std::string& workflow_id, const internal::Runners& runners,
                     internal::AgentLoad& load, Micros at, std::vector<Claim>& claims,
                     std::vector<EngineEvent>& events, std::vector<Message>& assignments);
  // Claims a task that this very transaction is readying (not written yet).
  std::optional<Claim> claim_in_place(TaskRow& row, const TaskDefinition& d,
                                      const std::string& workflow_id, Micros at,
                                      std::vector<EngineEvent>& events, internal::AgentLoad& load);
  // Eager dispatch: claims one task that a completion just made ready.
  std::optional<Claim> claim_successor(Txn& t, RunStore& store, const Claim& done,
                                       std::size_t first_event, Micros at,
                                       const std::vector<TaskRow>& rows,
                                       std::vector<EngineEvent>& events);

  // ---- outcomes.cpp --------------------------------------------------------
  // What an attempt came to, ready to be recorded: the output is already
  // normalised JSON (done on the worker, not on the writer).
  struct Outcome {
    Claim claim;
    bool success = false;
    std::string output;
    std::string error;
    bool retryable = true;
  };
  static Outcome outcome_of(Claim c, bool ok, std::string output_or_error, bool retryable);
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
  bool record(Txn& t, RunStore& store, const Outcome& o, Micros at,
              std::vector<EngineEvent>& events, std::optional<Claim>& next, Deferred& later);
  void finish_batch(Txn& t, RunStore& store, Deferred& later, Micros at,
                    std::vector<EngineEvent>& events, std::vector<Claim>& next);
  std::vector<TaskRow> advance_after_success(Txn& t, RunStore& store, const Claim& c, Micros at,
                                             std::vector<EngineEvent>& events,
                                             std::optional<Claim>& next);
  // Records an outcome and waits for it (engines without worker threads).
  std::optional<Claim> complete(const Claim& c, bool ok, const std::string& output_or_error,
                                bool retryable, bool* recorded = nullptr);
  // Hands an outcome to the writer (engines with worker threads).
  void record_later(Outcome o);
  void submit_records();
  void record_alone(Outcome o);
  // After a record write committed: events out, successors to the workers.
  void post(std::vector<EngineEvent> events, std::vector<Claim> next);
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

  // ---- maintenance.cpp -----------------------------------------------------
  void maintenance(Micros at);

  // ---- task_execution.cpp --------------------------------------------------
  // Runs the claim and the successors eagerly claimed after it; returns how many ran.
  int execute(const Claim& c);
  // Runs one claimed attempt. `async`: hands the outcome to record_later()
  // and returns nothing; otherwise records it and returns the successor
  // claimed eagerly, if any.
  std::optional<Claim> execute_one(const Claim& c, bool async = false);
  // A process agent's attempt: its argv from the executor, checked again
  // now (the allow-list or the file may have changed since it was claimed).
  std::string run_process_task(TaskContext& ctx, const TaskTimeouts& timeouts);
  BlobInfo store_artifact(const Claim& c, std::string_view name, std::string_view bytes);
  // The task's input with the values of its secrets, which only the run's
  // owner's work may have (checked now: a secret may have changed hands).
  std::string resolve_secrets(const Claim& c);

  // ---- bus_dispatch.cpp ----------------------------------------------------
  // The message that hands a claimed task to an agent in another process.
  Message assignment(const std::string& topic, const TaskRow& row, int attempt,
                     const std::string& agent_id, Micros at, Micros lease);
  // A completion, heartbeat or log line from an agent in another process.
  void accept_completion(const std::string& payload);
  void accept_heartbeat(const nlohmann::json& j);
  void accept_log(const nlohmann::json& j);

  // ---- remote_api.cpp ------------------------------------------------------
  // The agent must still be one the run's owner may use. kPermissionDenied otherwise.
  void check_remote_serves(const TaskRun& task);
  std::string owner_of_run(const std::string& run_id);
};

namespace internal {
// The group of a run under its workflow's concurrency limit (run_admission.cpp).
std::string concurrency_key(const ConcurrencyLimit& c, const nlohmann::json& input);
// "workflow "x" with concurrency key "k"", for errors.
std::string group_name(const Run& r);
}  // namespace internal

}  // namespace devcycle
