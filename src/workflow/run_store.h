// The engine's small store: runs, tasks, attempts and task logs. Every
// function runs inside the caller's transaction. Internal.
#pragma once

#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"

namespace devcycle::internal {

// A task row with the columns the engine needs beyond TaskRun.
struct TaskRow {
  TaskRun task;
  std::string item;                      // JSON of the fan-out element, or ""
  std::optional<Micros> close_deadline;  // started_at + start_to_close
  std::optional<Micros> start_deadline;  // ready_at + schedule_to_start
  std::string lease_owner;
  Micros created_at = 0;
};

class RunStore {
 public:
  explicit RunStore(Txn& t) : t_(t) {}
  static std::vector<Migration> migrations();

  void insert_run(const Run& run, const std::string& workflow_id);
  std::optional<Run> find_run(std::string_view id);
  // Whether the run is paused (one indexed lookup, for the completion fast
  // path). On PostgreSQL it locks the run (lock_run()), which reads it.
  bool run_paused(std::string_view id);
  // On PostgreSQL, locks the run's row until the transaction ends (once per
  // RunStore), so that transactions that change a run's tasks and then judge
  // its progress — a join, the run's end — take turns across engines: under
  // READ COMMITTED two sibling completions could otherwise each see the
  // other still running, and neither would release the join. SQLite has a
  // single writer: nothing to do.
  void lock_run(std::string_view id);
  // lock_run() for several runs in one statement, in id order, so that two
  // transactions locking overlapping sets cannot deadlock.
  void lock_runs(std::vector<std::string> ids);

  // Waiting tasks whose timer fired or whose signal wait ran out.
  std::vector<TaskRow> due_waits(Micros now);
  // The oldest signal `name` sent to the run that no task took yet, now
  // taken by `task_id`: its payload.
  std::optional<std::string> take_signal(std::string_view run_id, std::string_view name,
                                         std::string_view task_id);
  void keep_signal(std::string_view run_id, std::string_view name, std::string_view payload,
                   Micros at);

  void insert_artifact(const Artifact& a);
  std::vector<Artifact> artifacts_of(std::string_view run_id);
  std::optional<Run> find_run_by_key(std::string_view owner, std::string_view key);
  std::string workflow_id_of(std::string_view run_id);
  void update_run(const Run& run);
  // Writes only what finishing changes: status, output, error, finished_at;
  // returns what the engine must act on next.
  struct Finished {
    std::string parent_task_id;                  // a task waits for this child run
    std::string workflow;                        // name
    std::optional<std::string> concurrency_key;  // the run's group, if its workflow has a limit
  };
  Finished finish_run(const Run& run);
  // Whether finish_run() ended this run in this transaction (through this RunStore).
  bool finished_here(std::string_view run_id) const { return finished_here_.contains(run_id); }
  // Pending, running and paused runs of an owner.
  std::int64_t active_runs_of(std::string_view owner);
  // Running and paused runs of a concurrency group.
  std::int64_t active_in_group(std::string_view workflow, std::string_view key);
  // The oldest active (running or paused) or, with !active, pending run of
  // a concurrency group, other than `except`.
  std::optional<Run> first_in_group(std::string_view workflow, std::string_view key, bool active,
                                    std::string_view except = {});
  // The `n` oldest active runs of a concurrency group.
  std::vector<Run> oldest_active(std::string_view workflow, std::string_view key, std::int64_t n);
  // The run, its parent, the parent's parent, ... (at most 65 ids).
  std::vector<std::string> lineage(std::string_view run_id);
  // How many ancestors a run has (0 for a run nobody started as a child).
  int depth_of(std::string_view run_id) { return static_cast<int>(lineage(run_id).size()) - 1; }
  struct RunScan {
    std::vector<Run> matched;  // of the scanned rows, those whose labels match
    int scanned = 0;
    std::string last_id;  // of the last scanned row
  };
  // Up to `limit` runs after the filter's page token, newest first; labels are
  // matched on the scanned rows.
  RunScan list_runs_scanned(const RunFilter& filter, int limit);
  // Running runs whose deadline has passed.
  std::vector<std::string> overdue_runs(Micros now);

  void insert_task(const TaskRow& row);
  void insert_tasks(std::span<const TaskRow> rows);
  void update_task(const TaskRow& row);
  struct Success {
    std::string task_id;
    int attempt = 0;
    std::string lease_owner;
    std::string output;
  };
  // succeed_leased() for several attempts in one statement (PostgreSQL:
  // UPDATE ... FROM VALUES ... RETURNING); returns the task ids whose fence
  // held and which are now recorded.
  std::unordered_set<std::string> succeed_leased_many(const std::vector<Success>& successes,
                                                      Micros now);
  std::optional<TaskRow> find_task(std::string_view id);
  std::vector<TaskRow> tasks_of(std::string_view run_id);
  // The tasks of a run with these keys (elements excluded unless named).
  std::vector<TaskRow> tasks_by_keys(std::string_view run_id, const std::vector<std::string>& keys);
  // Ready tasks that may start at `now`, best first by priority with aging.
  std::vector<TaskRow> ready_tasks(Micros now, std::int64_t aging_step_us, int limit);
  // The tasks of `ids` that are ready, for claim(). On PostgreSQL they are
  // locked FOR UPDATE SKIP LOCKED: a task another engine is claiming right
  // now is left out at once instead of waited for (its claim would win).
  std::vector<TaskRow> claimable(std::span<const std::string> ids);
  // PostgreSQL: up to `limit` ready tasks in claim order (as ready_tasks()),
  // each with its run's workflow id, locked FOR UPDATE SKIP LOCKED — rows
  // another engine is claiming at this moment are left to it.
  std::vector<std::pair<TaskRow, std::string>> lock_ready(Micros now, std::int64_t aging_step_us,
                                                          int limit, int offset = 0);
  std::vector<TaskRow> expired_leases(Micros now);
  // Running attempts per agent (fan-out groups, which run on no agent, aside).
  std::unordered_map<std::string, int> running_by_agent();
  // PostgreSQL: takes a lock on the agent until the transaction ends and
  // counts its running attempts; nullopt when another transaction holds it.
  std::optional<int> lock_and_count_running(std::string_view agent_id);
  bool postgres() const noexcept { return t_.dialect() == Dialect::kPostgres; }
  std::vector<TaskRow> missed_starts(Micros now);
  // The fenced claim: true when this call moved the task from ready to running.
  bool claim(const TaskRow& row, const std::string& lease_owner, const std::string& agent_id,
             Micros now, Micros lease_expires_at, std::optional<Micros> close_deadline);
  // The fenced heartbeat; false when the attempt no longer holds a valid lease.
  bool extend_lease(std::string_view task_id, int attempt, std::string_view lease_owner, Micros now,
                    Micros lease_expires_at);
  // The fence of a completion: the row, when this attempt still holds a valid lease.
  std::optional<TaskRow> leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                                Micros now);

  // Whether fan-out elements of `definition_id` in the run are not finished yet.
  bool has_open_elements(std::string_view run_id, std::string_view definition_id);
  // The fenced success: records `output` when this attempt still holds a
  // valid lease, in one statement; false when it does not.
  bool succeed_leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                      Micros now, std::string_view output);

  void insert_attempt(const std::string& task_id, const TaskAttempt& a);
  void insert_attempts(std::span<const std::pair<std::string, TaskAttempt>> attempts);
  // Records the row's current attempt as ended (agent, owner and start from the row).
  void end_attempt(const TaskRow& row, std::string_view status, std::string_view error, Micros at);
  // Ended attempts, then the one in progress (from the task row), oldest first.
  std::vector<TaskAttempt> attempts_of(const TaskRow& row);

  void insert_log(const TaskLogLine& line);
  std::vector<TaskLogLine> logs(std::string_view task_id, std::optional<int> attempt,
                                const std::string& after_id, int limit);

  // For a batch of completions on PostgreSQL, where each statement is a
  // round trip: the rows the batch will read, read at once, and its task
  // updates written at once.
  struct Want {
    std::string run_id;
    std::vector<std::string> keys;  // none: every row of the run
  };
  // Reads the rows wanted (one statement); tasks_by_keys() and tasks_of()
  // then answer from them while this RunStore has not changed the run's
  // tasks by other means than update_task(). Sound because the runs are
  // locked (lock_runs()): nobody else changes their tasks meanwhile but
  // through a lease (a heartbeat), which the batch does not judge by.
  // SQLite: nothing to do.
  void prefetch(const std::vector<Want>& wants);
  // From now on (PostgreSQL), writes that can wait are kept and written
  // together, each kind in one statement, at flush() or before a statement
  // that could see them: new runs, run ends (for runs this RunStore locked
  // or inserted), new tasks, task updates, and claims of rows lock_ready()
  // returned. A statement on workflow_runs writes the runs first; any other
  // statement writes everything first. Code that uses the transaction
  // directly calls flush() first.
  void defer_writes() { defer_ = postgres(); }
  // Writes what was deferred. Call before the transaction ends.
  void flush();

 private:
  struct Prefetched {
    bool whole = false;
    std::unordered_set<std::string> keys;  // when not whole
    std::vector<TaskRow> rows;
  };
  // A prefetched run's rows for `keys`, or nullopt when the cache cannot tell.
  std::optional<std::vector<TaskRow>> cached(std::string_view run_id,
                                             const std::vector<std::string>* keys) const;
  // The transaction, for a statement that touches only workflow_runs: the
  // deferred run writes are written first.
  Txn& runs_txn() {
    if (!pending_runs_.empty() || !pending_finishes_.empty()) flush_runs();
    return t_;
  }
  // The transaction, for any other statement: everything deferred is written first.
  Txn& tasks_txn() {
    flush();
    return t_;
  }
  void flush_runs();
  void flush_task_updates();
  // The inserts themselves, on the transaction as it is (flushing calls them).
  void write_runs(std::span<const std::pair<Run, std::string>> runs);  // with their workflow ids
  void write_tasks(std::span<const TaskRow> rows);
  // What finish_run() returns, from a locking read (columns from `first` on).
  void note_run_info(std::string_view id, const Row& r, std::size_t first);

  // On PostgreSQL, an advisory lock on a concurrency group until the
  // transaction ends, so that engines count and admit its runs one at a time.
  void lock_group(std::string_view workflow, std::string_view key);

  Txn& t_;
  std::set<std::string, std::less<>> locked_runs_;  // run ids, and groups locked
  std::set<std::string, std::less<>> paused_runs_;  // of the locked runs, those paused
  std::set<std::string, std::less<>> finished_here_;
  std::unordered_map<std::string, Prefetched> prefetched_;  // by run id
  bool defer_ = false;
  struct Pending {
    TaskRow row;
    std::optional<Micros> updated_at;  // claims set it; update_task() leaves it
  };
  std::vector<Pending> pending_;                           // deferred updates, in order
  std::vector<std::pair<Run, std::string>> pending_runs_;  // new runs, with their workflow ids
  std::vector<TaskRow> pending_new_tasks_;
  std::vector<Run> pending_finishes_;
  std::unordered_map<std::string, Finished> run_info_;  // of runs locked or inserted here
  // Rows lock_ready() locked FOR UPDATE, by id: their attempt as read.
  std::unordered_map<std::string, int> ready_locked_;
};

}  // namespace devcycle::internal
