#include "workflow/engine/ready_tracker.h"

#include "workflow/run_store.h"

namespace devcycle::internal {

void ReadyTracker::note(const std::vector<EngineEvent>& events, Micros at) {
  std::lock_guard lock(mu_);
  // Bounded: an engine that never claims (or whose tasks others run) would
  // otherwise keep every entry; the database refills what is still ready.
  if (ready_.size() > kMaxQueued) {
    ready_.clear();
    next_refill_ = 0;
  }
  for (const auto& e : events) {
    switch (e.kind) {
      case EngineEvent::Kind::kTaskReady:
      case EngineEvent::Kind::kTaskRetrying:
        ready_.push({e.task_id, e.run_id, e.task_key.substr(0, e.task_key.find('[')), e.attempt,
                     e.priority, e.at, e.available_at},
                    at);
        break;
      case EngineEvent::Kind::kTaskStarted:
      case EngineEvent::Kind::kTaskSucceeded:
      case EngineEvent::Kind::kTaskFailed:
      case EngineEvent::Kind::kTaskSkipped:
      case EngineEvent::Kind::kTaskCancelled:
        ready_.erase(e.task_id);
        break;
      default:
        break;
    }
  }
}

void ReadyTracker::refill(Micros at) {
  {
    std::lock_guard lock(mu_);
    if (!ready_.empty() && at < next_refill_ && at >= last_refill_) return;
  }
  auto rows = db_.read([&](Txn& t) { return RunStore(t).ready_tasks(at, aging_, kRefillLimit); });
  std::lock_guard lock(mu_);
  for (auto& r : rows) {
    ready_.push({std::move(r.task.id), std::move(r.task.run_id), std::move(r.task.definition_id),
                 r.task.attempt, r.task.priority, r.task.ready_at.value_or(at),
                 r.task.available_at.value_or(at)},
                at);
  }
  last_refill_ = at;
  next_refill_ = at + 1'000'000;
}

std::optional<ReadyEntry> ReadyTracker::pop(Micros at) {
  std::lock_guard lock(mu_);
  return ready_.pop(at);
}

void ReadyTracker::push(ReadyEntry entry, Micros at) {
  std::lock_guard lock(mu_);
  ready_.push(std::move(entry), at);
}

}  // namespace devcycle::internal
