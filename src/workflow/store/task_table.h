// tasks, as rows of a run: inserting and updating them, reading a run's
// rows (all, by key, fan-out elements still open), and — for a batch of
// completions on PostgreSQL — the rows the batch will read, read at once
// and kept up to date with this transaction's own updates. Claims, leases
// and completions of a task are TaskLeases' (task_leases.h).
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "workflow/store/deferred_writes.h"
#include "workflow/store/rows.h"

namespace devcycle::internal {

class TaskTable {
 public:
  explicit TaskTable(DeferredWrites& w) : w_(w) {}
  TaskTable(const TaskTable&) = delete;
  TaskTable& operator=(const TaskTable&) = delete;

  void insert_task(const TaskRow& row);
  void insert_tasks(std::span<const TaskRow> rows);
  void update_task(const TaskRow& row);
  std::optional<TaskRow> find_task(std::string_view id);
  // Whether a task with this id exists.
  bool task_exists(std::string_view id);
  std::vector<TaskRow> tasks_of(std::string_view run_id);
  // The tasks of a run with these keys (elements excluded unless named).
  std::vector<TaskRow> tasks_by_keys(std::string_view run_id, const std::vector<std::string>& keys);
  // Whether fan-out elements of `definition_id` in the run are not finished yet.
  bool has_open_elements(std::string_view run_id, std::string_view definition_id);
  // Deletes one task row (its attempts and logs go with it: ON DELETE CASCADE).
  void delete_task(std::string_view id);
  // Deletes every task row of a run.
  void delete_of_run(std::string_view run_id);

  // For a batch of completions on PostgreSQL, where each statement is a
  // round trip: the rows the batch will read, read at once.
  struct Want {
    std::string run_id;
    std::vector<std::string> keys;  // none: every row of the run
  };
  // Reads the rows wanted (one statement); tasks_by_keys() and tasks_of()
  // then answer from them while this TaskTable has not changed the run's
  // tasks by other means than update_task(). Sound because the runs are
  // locked (RunTable::lock_runs()): nobody else changes their tasks
  // meanwhile but through a lease (a heartbeat), which the batch does not
  // judge by. SQLite: nothing to do.
  void prefetch(const std::vector<Want>& wants);
  // Rows of the run changed by other means: prefetched rows of it are not
  // trusted any more.
  void forget(const std::string& run_id) { prefetched_.erase(run_id); }
  // Rows changed by id, their runs not known: no prefetched row is trusted any more.
  void forget_all() { prefetched_.clear(); }

 private:
  struct Prefetched {
    bool whole = false;
    std::unordered_set<std::string> keys;  // when not whole
    std::vector<TaskRow> rows;
  };
  // A prefetched run's rows for `keys`, or nullopt when the cache cannot tell.
  std::optional<std::vector<TaskRow>> cached(std::string_view run_id,
                                             const std::vector<std::string>* keys) const;

  DeferredWrites& w_;
  std::unordered_map<std::string, Prefetched> prefetched_;  // by run id
};

}  // namespace devcycle::internal
