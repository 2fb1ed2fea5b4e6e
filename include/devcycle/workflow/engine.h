// The durable workflow engine: runs of stored workflow versions, a leasing
// scheduler, in-process executors, task logs and events.
//
// Every state change is one database transaction. Tasks are claimed with a
// conditional UPDATE (status ready -> running, attempt + 1, lease owner and
// expiry), never by in-memory ownership, so that several engines may share a
// database. A completion is accepted only from the attempt that holds a valid
// lease (fencing); a stale one is refused with kConflict and changes
// nothing. After kill -9 and restart every run continues: expired leases are
// retried. See docs/engine.md for the state machines.
//
// Thread-safety: an Engine may be used from any number of threads.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/secrets.h"
#include "devcycle/cache/cache.h"
#include "devcycle/common/clock.h"
#include "devcycle/common/rate_limit.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/registry/registry.h"
#include "devcycle/store/blob_store.h"
#include "devcycle/store/database.h"
#include "devcycle/workflow/executor.h"
#include "devcycle/workflow/process_executor.h"
#include "devcycle/workflow/workflow.h"

namespace devcycle {

enum class RunStatus { kPending, kRunning, kPaused, kSucceeded, kFailed, kCancelled, kTimedOut };
enum class TaskStatus {
  kPending,
  kReady,
  kRunning,
  kWaiting,
  kSucceeded,
  kFailed,
  kTimedOut,
  kCancelled,
  kSkipped
};
std::string_view to_string(RunStatus s) noexcept;
std::string_view to_string(TaskStatus s) noexcept;
RunStatus parse_run_status(std::string_view text, std::string_view field = "status");
TaskStatus parse_task_status(std::string_view text, std::string_view field = "status");
bool is_terminal(RunStatus s) noexcept;
bool is_terminal(TaskStatus s) noexcept;

struct StartRun {
  std::string workflow;         // name in the catalog
  std::optional<int> version;   // default: the latest
  std::string input = "{}";     // JSON object, checked against input_schema
  std::string owner;            // who starts it
  std::string idempotency_key;  // optional: the same key returns the same run
  std::map<std::string, std::string> labels;
};

struct Run {
  std::string id;
  std::string workflow;
  int workflow_version = 0;
  std::string owner;
  RunStatus status = RunStatus::kPending;
  std::string input;
  std::string output;  // JSON: {task id: output} of the tasks nothing depends on
  std::string error;
  std::string idempotency_key;
  std::map<std::string, std::string> labels;
  Micros created_at = 0;
  std::optional<Micros> started_at;
  std::optional<Micros> finished_at;
  std::optional<Micros> deadline_at;
  // A child run: the run and the task that wait for it.
  std::string parent_run_id;
  std::string parent_task_id;
  // Its concurrency group, when its workflow has a concurrency limit.
  std::optional<std::string> concurrency_key;
};

struct TaskAttempt {
  int attempt = 0;
  std::string agent_id;
  std::string lease_owner;
  std::string status;  // running, succeeded, failed, timed_out, cancelled
  std::string error;
  Micros started_at = 0;
  std::optional<Micros> finished_at;
};

struct TaskRun {
  std::string id;
  std::string run_id;
  std::string key;            // "build" or "test[2]"
  std::string definition_id;  // "build" or "test"
  std::optional<int> index;   // fan-out element index
  TaskStatus status = TaskStatus::kPending;
  int priority = 0;
  std::string input;  // rendered, once ready
  std::string output;
  std::string error;
  int attempt = 0;
  int max_attempts = 1;
  std::string agent_id;
  std::optional<Micros> lease_expires_at;
  std::optional<Micros> ready_at;
  std::optional<Micros> available_at;
  std::optional<Micros> started_at;
  std::optional<Micros> finished_at;
  std::string child_run_id;  // a child workflow task: the run it started
  std::vector<TaskAttempt> attempts;
};

struct RunDetail {
  Run run;
  std::vector<TaskRun> tasks;  // in creation order
};

struct RunFilter {
  std::optional<RunStatus> status;
  std::optional<std::string> workflow;
  std::optional<std::string> owner;
  std::map<std::string, std::string> labels;
  std::optional<Micros> created_after;   // inclusive
  std::optional<Micros> created_before;  // exclusive
  int limit = 50;                        // 1-1000
  std::string page_token;
};

struct RunPage {
  std::vector<Run> runs;  // newest first
  std::string next_page_token;
};

struct TaskLogLine {
  std::string id;  // uuid v7; lines sort by it
  std::string task_id;
  int attempt = 0;
  LogLevel level = LogLevel::kInfo;
  std::string message;
  Micros at = 0;
};

// A file a task produced, kept in the engine's BlobStore.
struct Artifact {
  std::string id;  // uuid v7
  std::string run_id;
  std::string task_id;
  std::string task_key;
  int attempt = 0;
  std::string name;
  std::string digest;  // sha256:<hex>
  std::uint64_t size = 0;
  Micros created_at = 0;
};

// A task handed to an agent that runs elsewhere and calls the REST API
// (its deployed version's executor is "remote"; docs/engine.md).
struct RemoteTask {
  std::string task_id;
  std::string run_id;
  std::string task_key;
  int attempt = 0;
  std::string lease_owner;  // the fence, with the attempt: send both back
  std::string input;        // JSON, with the secrets it names put in
  std::string idempotency_key;
  Micros lease_expires_at = 0;
};

struct TaskLogPage {
  std::vector<TaskLogLine> lines;
  std::string next_page_token;
};

struct EngineEvent {
  enum class Kind {
    kRunStarted,
    kRunFinished,
    kTaskReady,
    kTaskStarted,
    kTaskSucceeded,
    kTaskFailed,
    kTaskRetrying,
    kTaskSkipped,
    kTaskCancelled,
    kTaskLog,  // a line was appended to a task's log: status is its level, message the line
    kRunPaused,
    kRunResumed,
    kTaskWaiting,  // a timer, a signal wait or a child run began: available_at is when a timer
                   // fires
    kRunQueued     // the run waits in `pending` for room under its workflow's concurrency limit
  };
  Kind kind;
  std::string run_id;
  std::string task_id;
  std::string task_key;
  int attempt = 0;
  std::string status;  // the new run or task status
  std::string error;
  Micros at = 0;
  std::string message;  // kTaskLog only
  // kTaskReady and kTaskRetrying: when the task may start (after the retry
  // backoff) and its priority.
  Micros available_at = 0;
  int priority = 0;
};
std::string_view to_string(EngineEvent::Kind kind) noexcept;

struct EngineOptions {
  std::shared_ptr<Clock> clock = SystemClock::instance();
  // Identifies this engine in leases; default: a new uuid per Engine.
  std::string engine_id;
  // Threads running in-process tasks. 0: no threads at all — tick() claims
  // and runs tasks on the calling thread, which makes tests deterministic.
  int workers = 4;
  // Lease of an attempt whose task sets neither start_to_close nor heartbeat.
  std::chrono::milliseconds default_lease{std::chrono::seconds(60)};
  // How long the scheduler sleeps when nothing is ready.
  std::chrono::milliseconds poll_interval{50};
  // A ready task gains one priority point per this much waiting, so that
  // low-priority work is never starved.
  std::chrono::milliseconds aging_step{std::chrono::seconds(10)};
  // The message bus the engine talks to, if any (it must outlive the
  // engine). Then every run and task event (task.log lines aside) is also
  // published to `event_topic` (empty: none), keyed by run id, as JSON; and
  // tasks of agents whose executor is "bus:<topic>" ("bus:" alone:
  // devcycle.tasks.<capability>) are sent there as assignments, their
  // completions taken from `completion_topic` (docs/engine.md). Both go
  // through a transactional outbox in the engine's database, so a message
  // is published if and only if its change committed.
  MessageBus* bus = nullptr;
  // Quota: runs one owner may have pending, running or paused at once; a
  // start beyond it is Error{kResourceExhausted}. 0: no limit.
  int max_active_runs_per_owner = 0;
  // Secrets for {{ secrets.NAME }} in task inputs (it must outlive the
  // engine): stored inputs hold markers, in-process functions get the
  // values, and task log lines and errors are redacted before they are
  // stored. Null: a definition that reads secrets fails its tasks.
  SecretStore* secrets = nullptr;
  // Process agents (executor "process:[argv...]", docs/engine.md): run on
  // this host by the engine's workers when `processes.allow` lists their
  // executable; with an empty allow-list no process agent runs here.
  ProcessOptions processes;
  // Where artifacts are kept (it must outlive the engine); null: tasks
  // cannot store artifacts. A process agent's files in ./artifacts/ are
  // stored when it succeeds.
  BlobStore* blobs = nullptr;
  // Rate limits by capability, taken from `cache`'s token buckets (shared by
  // every engine on the same cache): a task over its limit waits in `ready`
  // until a token is free. Both must outlive the engine.
  std::map<std::string, RateLimit> capability_rate_limits;
  Cache* cache = nullptr;
  std::string event_topic = "devcycle.events";
  std::string completion_topic = "devcycle.completions";
};

class Engine {
 public:
  static std::vector<Migration> migrations();

  // Applies migrations(). `db`, `registry` and `catalog` must outlive it.
  Engine(Database& db, Registry& registry, WorkflowCatalog& catalog, EngineOptions options = {});
  // Stops the scheduler and waits for running in-process tasks (their
  // completions are still recorded).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Makes `fn` the implementation of agents whose deployed version has
  // executor "inproc:<name>". Replaces an earlier function of that name.
  void register_function(std::string name, TaskFunction fn);

  // Starts a run of a stored workflow. Throws Error{kNotFound} for an unknown
  // workflow or version, kInvalidArgument naming the field for bad input,
  // kConflict when the idempotency key was used for another workflow.
  Run start(const StartRun& request);
  // Starts up to 1,000 runs in one transaction: all of them or none. Each is
  // checked as start() checks it, and an error names the run by its index
  // ("runs[2].input: ..."). Returns the runs in request order; a repeated
  // idempotency key returns the run it first started, as start() does.
  std::vector<Run> start_many(std::span<const StartRun> requests);
  RunDetail get(std::string_view run_id);
  // One task with its attempts. Error{kNotFound} when absent.
  TaskRun get_task(std::string_view task_id);
  RunPage list(const RunFilter& filter = {});
  // Cancels a run that has not finished: its open tasks are cancelled and
  // running attempts are told through TaskContext::cancelled().
  Run cancel(std::string_view run_id);
  // Cancels one open task: a running attempt is told through its context and
  // its completion is refused. The run then fails ("task x cancelled"),
  // because a workflow cannot succeed without one of its tasks; to make a
  // task optional, give it a `when`.
  TaskRun cancel_task(std::string_view task_id);
  // Starts a failed, timed-out or cancelled run again from the tasks that
  // did not succeed; each gets its full retry budget again.
  Run retry(std::string_view run_id);
  // Sends the signal `name` (an approval, an external event) to a run with
  // `payload` (JSON, the waiting task's output). A task waiting for it
  // succeeds now and the call returns true; otherwise the signal is kept for
  // the first task of the run that waits for that name, and it returns
  // false. kNotFound for an unknown run, kInvalidArgument for a finished one
  // or bad input.
  bool signal(std::string_view run_id, std::string_view name, std::string_view payload = "{}");

  // Pauses a running run: attempts already running finish and are recorded,
  // but nothing new starts (ready tasks go back to pending) until resume().
  // Pausing a paused run returns it; any other state is kInvalidArgument.
  // A paused run still fails when a task fails for good, and still times out.
  Run pause(std::string_view run_id);
  // Lets a paused run go on from where it stands.
  Run resume(std::string_view run_id);

  // Remote agents (executor "remote"): up to `max` ready tasks the agent
  // can run (its deployed version's capabilities, or tasks naming it),
  // within its capacity, each leased for `lease` (never past the task's
  // start_to_close). Empty when there is nothing. kNotFound for an unknown
  // agent; kInvalidArgument when its deployed version is not "remote".
  std::vector<RemoteTask> claim_remote(std::string_view agent_id, int max,
                                       std::chrono::milliseconds lease);
  // Extends a remote attempt's lease; false when it no longer holds one (the
  // task was retried, cancelled or finished: stop working on it).
  bool extend_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                     std::chrono::milliseconds lease);
  // Appends a line to a remote attempt's log (redacted); false when stale.
  bool log_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                  LogLevel level, std::string_view message);
  // Records a remote attempt's outcome (`output_or_error`: JSON output, or
  // the error), fenced like an in-process one: false, changing nothing, for
  // a stale or repeated completion.
  bool complete_remote(std::string_view task_id, int attempt, std::string_view lease_owner, bool ok,
                       std::string_view output_or_error, bool retryable = true);

  // Lines of one task (every attempt, or one), oldest first.
  TaskLogPage logs(std::string_view task_id, std::optional<int> attempt = std::nullopt,
                   int limit = 100, std::string page_token = {});

  // Retention: deletes up to `limit` finished runs (succeeded, failed,
  // cancelled, timed out) that finished before `before`, with their tasks,
  // attempts, logs and artifacts; a blob no longer named by any artifact is
  // removed from the blob store too (unless stored in the last 10 minutes,
  // when a new artifact may be about to name it). Returns how many runs
  // went; call again while it returns `limit`.
  int purge_finished(Micros before, int limit = 500);

  // The artifacts of a run, oldest first; one of them (kNotFound unless it
  // belongs to the run).
  std::vector<Artifact> artifacts(std::string_view run_id);
  Artifact artifact(std::string_view run_id, std::string_view artifact_id);

  // Hears every run and task event after it committed, task log lines
  // included (follow a task's log live by filtering on task_id).
  Subscription subscribe(std::function<void(const EngineEvent&)> handler);

  // One scheduler pass: timeouts, lease expiry, claiming ready tasks for the
  // functions registered here. Returns how many tasks it claimed; with
  // workers == 0 the claimed tasks run before it returns, and it returns how
  // many ran (successors dispatched eagerly included). The scheduler thread
  // calls this in a loop when workers > 0.
  int tick();
  // With workers == 0: ticks until nothing is claimable. Returns the number
  // of tasks run.
  int run_until_idle();

  struct Impl;  // internal

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace devcycle
