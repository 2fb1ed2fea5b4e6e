// Timers and signal waits: the waiting tasks that are due, and run_signals,
// the signals sent to a run — kept until a task that waits for one takes it.
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflow/store/deferred_writes.h"
#include "workflow/store/rows.h"

namespace devcycle::internal {

class Waits {
 public:
  explicit Waits(DeferredWrites& w) : w_(w) {}
  Waits(const Waits&) = delete;
  Waits& operator=(const Waits&) = delete;

  // Waiting tasks whose timer fired or whose signal wait ran out.
  std::vector<TaskRow> due_waits(Micros now);
  // The oldest signal `name` sent to the run that no task took yet, now
  // taken by `task_id`: its payload.
  std::optional<std::string> take_signal(std::string_view run_id, std::string_view name,
                                         std::string_view task_id);
  // Keeps a signal no task waits for yet.
  void keep_signal(std::string_view run_id, std::string_view name, std::string_view payload,
                   Micros at);

 private:
  DeferredWrites& w_;
};

}  // namespace devcycle::internal
