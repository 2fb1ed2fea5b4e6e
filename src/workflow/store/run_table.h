// workflow_runs: a run's row and its end, the locks that make transactions
// on one run or one concurrency group take turns (PostgreSQL), and the
// queries over runs (by idempotency key, by group, lineage, filter,
// deadline, age). Remembers for its transaction the runs it locked, which
// of them are paused, which it finished, and what finish_run() returns for
// runs locked or inserted here.
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error); workflow_id_of() throws
// Error{kNotFound} naming the run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"
#include "workflow/store/deferred_writes.h"

namespace devcycle::internal {

class RunTable {
 public:
  explicit RunTable(DeferredWrites& w) : w_(w) {}
  RunTable(const RunTable&) = delete;
  RunTable& operator=(const RunTable&) = delete;

  void insert_run(const Run& run, const std::string& workflow_id);
  std::optional<Run> find_run(std::string_view id);
  // Whether the run is paused (one indexed lookup, for the completion fast
  // path). On PostgreSQL it locks the run (lock_run()), which reads it.
  bool run_paused(std::string_view id);
  // On PostgreSQL, locks the run's row until the transaction ends (once per
  // RunTable), so that transactions that change a run's tasks and then judge
  // its progress — a join, the run's end — take turns across engines: under
  // READ COMMITTED two sibling completions could otherwise each see the
  // other still running, and neither would release the join. SQLite has a
  // single writer: nothing to do.
  void lock_run(std::string_view id);
  // lock_run() for several runs in one statement, in id order, so that two
  // transactions locking overlapping sets cannot deadlock.
  void lock_runs(std::vector<std::string> ids);

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
  // Whether finish_run() ended this run in this transaction (through this RunTable).
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
  // Up to `limit` ids of runs that finished (succeeded, failed, cancelled,
  // timed out) before `before`, the earliest finished first.
  std::vector<std::string> finished_before(Micros before, int limit);
  // Deletes the run's row (its tasks, attempts, logs and artifacts are the
  // other tables' to delete first).
  void delete_run(std::string_view run_id);

 private:
  // What finish_run() returns, from a locking read (columns from `first` on).
  void note_run_info(std::string_view id, const Row& r, std::size_t first);
  // On PostgreSQL, an advisory lock on a concurrency group until the
  // transaction ends, so that engines count and admit its runs one at a time.
  void lock_group(std::string_view workflow, std::string_view key);

  DeferredWrites& w_;
  std::set<std::string, std::less<>> locked_runs_;  // run ids, and groups locked
  std::set<std::string, std::less<>> paused_runs_;  // of the locked runs, those paused
  std::set<std::string, std::less<>> finished_here_;
  std::unordered_map<std::string, Finished> run_info_;  // of runs locked or inserted here
};

}  // namespace devcycle::internal
