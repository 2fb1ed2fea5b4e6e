// The transaction the store's tables share, and the writes they defer on
// PostgreSQL, where each statement is a round trip (decision 0023): new
// runs, run ends, new tasks and task updates (claims included), each kind
// kept and written together in one statement. Owns the statements that
// write those rows, now or later: INSERT INTO workflow_runs and tasks, the
// UPDATE of a task row as a whole, and the batched UPDATEs of run ends and
// task rows.
//
// Tables take the transaction from here for each statement: runs() for one
// that touches only workflow_runs (the deferred run writes are written
// first), any() for any other (everything deferred is written first), raw()
// where the statement cannot see a deferred write. Code that uses the
// transaction directly calls flush() first.
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"
#include "workflow/store/rows.h"

namespace devcycle::internal {

class DeferredWrites {
 public:
  explicit DeferredWrites(Txn& t) : t_(t) {}
  DeferredWrites(const DeferredWrites&) = delete;
  DeferredWrites& operator=(const DeferredWrites&) = delete;

  bool postgres() const noexcept { return t_.dialect() == Dialect::kPostgres; }
  // From now on (PostgreSQL only), writes that can wait are kept.
  void start() { on_ = postgres(); }
  // Whether writes are being kept.
  bool on() const noexcept { return on_; }

  // The transaction as it is.
  Txn& raw() { return t_; }
  // The transaction, for a statement that touches only workflow_runs: the
  // deferred run writes are written first.
  Txn& runs() {
    if (!pending_runs_.empty() || !pending_finishes_.empty()) flush_runs();
    return t_;
  }
  // The transaction, for any other statement: everything deferred is written first.
  Txn& any() {
    flush();
    return t_;
  }

  // A new run (with its workflow id), written now or, when on(), later.
  void insert_run(const Run& run, const std::string& workflow_id);
  // A run's end (status, output, error, finished_at), written later; only when on().
  void finish_later(const Run& run) { pending_finishes_.push_back(run); }
  // New tasks, written now or, when on(), later.
  void insert_tasks(std::span<const TaskRow> rows);
  // A task row written as it is (but updated_at), now or, when on(), later.
  void update_task(const TaskRow& row);
  // A claimed task row, written later with updated_at = `at`; only when on().
  void claim_later(TaskRow row, Micros at) { pending_.push_back({std::move(row), at}); }

  // Writes everything deferred: runs first, then new tasks, then task updates.
  void flush();
  // Writes the deferred new runs and run ends.
  void flush_runs();

 private:
  void flush_task_updates();
  // The inserts themselves, on the transaction as it is (flushing calls them).
  void write_runs(std::span<const std::pair<Run, std::string>> runs);  // with their workflow ids
  void write_tasks(std::span<const TaskRow> rows);

  Txn& t_;
  bool on_ = false;
  struct Pending {
    TaskRow row;
    std::optional<Micros> updated_at;  // claims set it; update_task() leaves it
  };
  std::vector<Pending> pending_;                           // deferred updates, in order
  std::vector<std::pair<Run, std::string>> pending_runs_;  // new runs, with their workflow ids
  std::vector<TaskRow> pending_new_tasks_;
  std::vector<Run> pending_finishes_;
};

}  // namespace devcycle::internal
