// The engine's store, one object per transaction: runs, tasks, attempts,
// task logs, timers and signals, artifacts. A facade over one small class
// per table family in store/, which hold the SQL:
//
//   store/run_table.h       workflow_runs: rows, ends, locks, run queries
//   store/task_table.h      tasks as a run's rows, and the batch prefetch
//   store/task_leases.h     tasks as a queue: claims, leases, fenced success
//   store/attempt_table.h   task_attempts
//   store/task_log_table.h  task_logs
//   store/waits.h           due timers and signal waits, run_signals
//   store/artifact_table.h  artifacts
//   store/deferred_writes.h the shared transaction and the writes deferred
//                           on PostgreSQL (decision 0023)
//   store/rows.h            column lists and row decoding
//   store/schema.h          the migrations
//
// Every function runs inside the caller's transaction; the methods' contracts
// are in the family headers. Not thread-safe: used by the thread that runs
// the transaction. Throws what Txn throws (devcycle::Error). Internal.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"
#include "workflow/store/artifact_table.h"
#include "workflow/store/attempt_table.h"
#include "workflow/store/deferred_writes.h"
#include "workflow/store/rows.h"
#include "workflow/store/run_table.h"
#include "workflow/store/task_leases.h"
#include "workflow/store/task_log_table.h"
#include "workflow/store/task_table.h"
#include "workflow/store/waits.h"

namespace devcycle::internal {

class RunStore {
 public:
  explicit RunStore(Txn& t)
      : writes_(t),
        runs_(writes_),
        tasks_(writes_),
        leases_(writes_, tasks_),
        attempts_(writes_),
        logs_(writes_),
        waits_(writes_),
        artifacts_(writes_) {}
  // The families hold references to each other's members.
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;
  static std::vector<Migration> migrations();

  // workflow_runs (store/run_table.h).
  using Finished = RunTable::Finished;
  using RunScan = RunTable::RunScan;
  void insert_run(const Run& run, const std::string& workflow_id) {
    runs_.insert_run(run, workflow_id);
  }
  std::optional<Run> find_run(std::string_view id) { return runs_.find_run(id); }
  bool run_paused(std::string_view id) { return runs_.run_paused(id); }
  void lock_run(std::string_view id) { runs_.lock_run(id); }
  void lock_runs(std::vector<std::string> ids) { runs_.lock_runs(std::move(ids)); }
  std::optional<Run> find_run_by_key(std::string_view owner, std::string_view key) {
    return runs_.find_run_by_key(owner, key);
  }
  std::string workflow_id_of(std::string_view run_id) { return runs_.workflow_id_of(run_id); }
  void update_run(const Run& run) { runs_.update_run(run); }
  Finished finish_run(const Run& run) { return runs_.finish_run(run); }
  bool finished_here(std::string_view run_id) const { return runs_.finished_here(run_id); }
  std::int64_t active_runs_of(std::string_view owner) { return runs_.active_runs_of(owner); }
  std::int64_t active_in_group(std::string_view workflow, std::string_view key) {
    return runs_.active_in_group(workflow, key);
  }
  std::optional<Run> first_in_group(std::string_view workflow, std::string_view key, bool active,
                                    std::string_view except = {}) {
    return runs_.first_in_group(workflow, key, active, except);
  }
  std::vector<Run> oldest_active(std::string_view workflow, std::string_view key, std::int64_t n) {
    return runs_.oldest_active(workflow, key, n);
  }
  std::vector<std::string> lineage(std::string_view run_id) { return runs_.lineage(run_id); }
  // How many ancestors a run has (0 for a run nobody started as a child).
  int depth_of(std::string_view run_id) { return static_cast<int>(lineage(run_id).size()) - 1; }
  RunScan list_runs_scanned(const RunFilter& filter, int limit) {
    return runs_.list_runs_scanned(filter, limit);
  }
  std::vector<std::string> overdue_runs(Micros now) { return runs_.overdue_runs(now); }
  std::vector<std::string> finished_runs_before(Micros before, int limit) {
    return runs_.finished_before(before, limit);
  }
  // Deletes a finished run and everything recorded of it, in this order:
  // its task logs, task attempts, artifacts (not their blobs), tasks, and
  // the run's row.
  void purge_run(std::string_view run_id);

  // tasks as a run's rows (store/task_table.h).
  using Want = TaskTable::Want;
  void insert_task(const TaskRow& row) { tasks_.insert_task(row); }
  void insert_tasks(std::span<const TaskRow> rows) { tasks_.insert_tasks(rows); }
  void update_task(const TaskRow& row) { tasks_.update_task(row); }
  std::optional<TaskRow> find_task(std::string_view id) { return tasks_.find_task(id); }
  bool task_exists(std::string_view id) { return tasks_.task_exists(id); }
  std::vector<TaskRow> tasks_of(std::string_view run_id) { return tasks_.tasks_of(run_id); }
  std::vector<TaskRow> tasks_by_keys(std::string_view run_id,
                                     const std::vector<std::string>& keys) {
    return tasks_.tasks_by_keys(run_id, keys);
  }
  bool has_open_elements(std::string_view run_id, std::string_view definition_id) {
    return tasks_.has_open_elements(run_id, definition_id);
  }
  void delete_task(std::string_view id) { tasks_.delete_task(id); }
  void prefetch(const std::vector<Want>& wants) { tasks_.prefetch(wants); }

  // tasks as a queue of leased work (store/task_leases.h).
  using Success = TaskLeases::Success;
  using Holder = TaskLeases::Holder;
  std::vector<TaskRow> ready_tasks(Micros now, std::int64_t aging_step_us, int limit) {
    return leases_.ready_tasks(now, aging_step_us, limit);
  }
  std::vector<TaskRow> claimable(std::span<const std::string> ids) {
    return leases_.claimable(ids);
  }
  std::vector<std::pair<TaskRow, std::string>> lock_ready(Micros now, std::int64_t aging_step_us,
                                                          int limit, int offset = 0) {
    return leases_.lock_ready(now, aging_step_us, limit, offset);
  }
  std::vector<TaskRow> expired_leases(Micros now) { return leases_.expired_leases(now); }
  std::vector<TaskRow> missed_starts(Micros now) { return leases_.missed_starts(now); }
  std::unordered_map<std::string, int> running_by_agent() { return leases_.running_by_agent(); }
  std::optional<int> lock_and_count_running(std::string_view agent_id) {
    return leases_.lock_and_count_running(agent_id);
  }
  bool claim(const TaskRow& row, const std::string& lease_owner, const std::string& agent_id,
             Micros now, Micros lease_expires_at, std::optional<Micros> close_deadline) {
    return leases_.claim(row, lease_owner, agent_id, now, lease_expires_at, close_deadline);
  }
  bool extend_lease(std::string_view task_id, int attempt, std::string_view lease_owner, Micros now,
                    Micros lease_expires_at) {
    return leases_.extend_lease(task_id, attempt, lease_owner, now, lease_expires_at);
  }
  std::optional<TaskRow> leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                                Micros now) {
    return leases_.leased(task_id, attempt, lease_owner, now);
  }
  std::optional<Holder> holder_of(std::string_view task_id) { return leases_.holder_of(task_id); }
  bool release_unstarted(std::string_view task_id, int attempt, std::string_view lease_owner) {
    return leases_.release_unstarted(task_id, attempt, lease_owner);
  }
  bool succeed_leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                      Micros now, std::string_view output) {
    return leases_.succeed_leased(task_id, attempt, lease_owner, now, output);
  }
  std::unordered_set<std::string> succeed_leased_many(const std::vector<Success>& successes,
                                                      Micros now) {
    return leases_.succeed_leased_many(successes, now);
  }

  // task_attempts (store/attempt_table.h).
  void insert_attempt(const std::string& task_id, const TaskAttempt& a) {
    attempts_.insert_attempt(task_id, a);
  }
  void insert_attempts(std::span<const std::pair<std::string, TaskAttempt>> attempts) {
    attempts_.insert_attempts(attempts);
  }
  void end_attempt(const TaskRow& row, std::string_view status, std::string_view error, Micros at) {
    attempts_.end_attempt(row, status, error, at);
  }
  std::vector<TaskAttempt> attempts_of(const TaskRow& row) { return attempts_.attempts_of(row); }

  // task_logs (store/task_log_table.h).
  void insert_log(const TaskLogLine& line) { logs_.insert_log(line); }
  std::vector<TaskLogLine> logs(std::string_view task_id, std::optional<int> attempt,
                                const std::string& after_id, int limit) {
    return logs_.logs(task_id, attempt, after_id, limit);
  }

  // Timers and signals (store/waits.h).
  std::vector<TaskRow> due_waits(Micros now) { return waits_.due_waits(now); }
  std::optional<std::string> take_signal(std::string_view run_id, std::string_view name,
                                         std::string_view task_id) {
    return waits_.take_signal(run_id, name, task_id);
  }
  void keep_signal(std::string_view run_id, std::string_view name, std::string_view payload,
                   Micros at) {
    waits_.keep_signal(run_id, name, payload, at);
  }

  // artifacts (store/artifact_table.h).
  void insert_artifact(const Artifact& a) { artifacts_.insert_artifact(a); }
  std::vector<Artifact> artifacts_of(std::string_view run_id) {
    return artifacts_.artifacts_of(run_id);
  }
  std::vector<std::string> artifact_digests_of(std::string_view run_id) {
    return artifacts_.digests_of(run_id);
  }
  bool digest_referenced(std::string_view digest) { return artifacts_.digest_referenced(digest); }

  // Deferred writes (store/deferred_writes.h). From now on (PostgreSQL),
  // writes that can wait are kept and written together, each kind in one
  // statement, at flush() or before a statement that could see them: new
  // runs, run ends (for runs this RunStore locked or inserted), new tasks,
  // task updates, and claims of rows lock_ready() returned. A statement on
  // workflow_runs writes the runs first; any other statement writes
  // everything first. Code that uses the transaction directly calls flush()
  // first.
  bool postgres() const noexcept { return writes_.postgres(); }
  void defer_writes() { writes_.start(); }
  // Writes what was deferred. Call before the transaction ends.
  void flush() { writes_.flush(); }

 private:
  DeferredWrites writes_;  // first: the others hold it
  RunTable runs_;
  TaskTable tasks_;
  TaskLeases leases_;
  AttemptTable attempts_;
  TaskLogTable logs_;
  Waits waits_;
  ArtifactTable artifacts_;
};

}  // namespace devcycle::internal
