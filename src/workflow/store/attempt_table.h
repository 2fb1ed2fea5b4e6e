// task_attempts: one row per ended attempt of a task (an attempt in progress
// is described by its task row until it ends).
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "workflow/store/deferred_writes.h"
#include "workflow/store/rows.h"

namespace devcycle::internal {

class AttemptTable {
 public:
  explicit AttemptTable(DeferredWrites& w) : w_(w) {}
  AttemptTable(const AttemptTable&) = delete;
  AttemptTable& operator=(const AttemptTable&) = delete;

  void insert_attempt(const std::string& task_id, const TaskAttempt& a);
  void insert_attempts(std::span<const std::pair<std::string, TaskAttempt>> attempts);
  // Records the row's current attempt as ended (agent, owner and start from the row).
  void end_attempt(const TaskRow& row, std::string_view status, std::string_view error, Micros at);
  // Ended attempts, then the one in progress (from the task row), oldest first.
  std::vector<TaskAttempt> attempts_of(const TaskRow& row);
  // Deletes the attempts of every task of a run.
  void delete_of_run(std::string_view run_id);

 private:
  DeferredWrites& w_;
};

}  // namespace devcycle::internal
