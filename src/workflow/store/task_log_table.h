// task_logs: the lines a task's attempts logged, in id (time) order.
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error), and Error{kInvalidArgument}
// when a stored level is not one the code knows.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/workflow/engine.h"
#include "workflow/store/deferred_writes.h"

namespace devcycle::internal {

class TaskLogTable {
 public:
  explicit TaskLogTable(DeferredWrites& w) : w_(w) {}
  TaskLogTable(const TaskLogTable&) = delete;
  TaskLogTable& operator=(const TaskLogTable&) = delete;

  void insert_log(const TaskLogLine& line);
  // Up to `limit` lines of the task (of one attempt, if given) after `after_id`.
  std::vector<TaskLogLine> logs(std::string_view task_id, std::optional<int> attempt,
                                const std::string& after_id, int limit);
  // Deletes the lines of every task of a run.
  void delete_of_run(std::string_view run_id);

 private:
  DeferredWrites& w_;
};

}  // namespace devcycle::internal
