// Run control from the API: cancel a run or a task, signals, pause and
// resume, retry. Each is one write that changes the run and lets its
// progress decide what follows.
#include <set>

#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::group_name;
using internal::run_not_found;
using internal::RunProgress;
using internal::RunStore;
using internal::task_not_found;
using internal::us;

Run Engine::cancel(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status == RunStatus::kCancelled) return *r;
    if (is_terminal(r->status)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "run " + r->id + " already " + std::string(to_string(r->status)));
    }
    Impl::Hooks(*impl_, t, store, at, events).cancel_run(*r, "cancelled");
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  return run;
}

TaskRun Engine::cancel_task(std::string_view task_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto task = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    auto row = store.find_task(task_id);
    if (!row) throw task_not_found(task_id);
    if (row->task.status == TaskStatus::kCancelled) return row->task;
    if (is_terminal(row->task.status)) {
      throw Error(ErrorCode::kInvalidArgument,
                  "task " + row->task.key + " already " + std::string(to_string(row->task.status)));
    }
    if (row->task.status == TaskStatus::kRunning && row->task.lease_expires_at) {
      store.end_attempt(*row, "cancelled", "cancelled", at);
    }
    const bool had_child =
        row->task.status == TaskStatus::kWaiting && !row->task.child_run_id.empty();
    row->task.status = TaskStatus::kCancelled;
    row->task.error = "cancelled";
    row->task.finished_at = at;
    row->task.lease_expires_at.reset();
    row->start_deadline.reset();
    store.update_task(*row);
    events.push_back({EngineEvent::Kind::kTaskCancelled, row->task.run_id, row->task.id,
                      row->task.key, row->task.attempt, "cancelled", "cancelled", at, ""});
    if (had_child) {
      Impl::Hooks(*impl_, t, store, at, events)
          .cancel_child(row->task.child_run_id, "its parent task was cancelled");
    }
    impl_->advance(t, store, row->task.run_id, at, events);
    impl_->stage(t, events);
    return row->task;
  });
  impl_->cancelled.mark(task.id);
  impl_->emit(events);
  return task;
}

bool Engine::signal(std::string_view run_id, std::string_view name, std::string_view payload) {
  internal::check_lower_name("signal", name, 64);
  if (payload.size() > 1024 * 1024) {
    throw Error(ErrorCode::kInvalidArgument, "payload: larger than 1 MiB");
  }
  const std::string canonical = internal::parse_json(payload, "payload").dump();
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  const bool delivered = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (is_terminal(r->status)) {
      throw Error(ErrorCode::kInvalidArgument, "run " + r->id + " already " +
                                                   std::string(to_string(r->status)) +
                                                   "; it takes no signals");
    }
    const auto def = impl_->definition(t, impl_->workflow_of(store, r->id));
    for (auto row : store.tasks_of(r->id)) {
      if (row.task.status != TaskStatus::kWaiting) continue;
      if (RunProgress::definition_of(*def, row.task.definition_id).signal != name) continue;
      row.task.status = TaskStatus::kSucceeded;
      row.task.output = canonical;
      row.task.finished_at = at;
      row.close_deadline.reset();
      store.update_task(row);
      events.push_back({EngineEvent::Kind::kTaskSucceeded, row.task.run_id, row.task.id,
                        row.task.key, row.task.attempt, "succeeded", "", at, ""});
      impl_->advance(t, store, r->id, at, events);
      impl_->stage(t, events);
      return true;
    }
    store.keep_signal(r->id, name, canonical, at);
    return false;
  });
  impl_->emit(events);
  return delivered;
}

Run Engine::pause(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status == RunStatus::kPaused) return *r;
    if (r->status != RunStatus::kRunning) {
      throw Error(ErrorCode::kInvalidArgument, "run " + r->id + " is " +
                                                   std::string(to_string(r->status)) +
                                                   "; only running runs can be paused");
    }
    r->status = RunStatus::kPaused;
    store.update_run(*r);
    // What is ready waits; what runs finishes.
    for (auto row : store.tasks_of(r->id)) {
      if (row.task.status != TaskStatus::kReady) continue;
      row.task.status = TaskStatus::kPending;
      row.task.ready_at.reset();
      row.task.available_at.reset();
      row.start_deadline.reset();
      store.update_task(row);
    }
    events.push_back({EngineEvent::Kind::kRunPaused, r->id, "", "", 0, "paused", "", at, ""});
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  return run;
}

Run Engine::resume(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status == RunStatus::kRunning) return *r;
    if (r->status != RunStatus::kPaused) {
      throw Error(ErrorCode::kInvalidArgument, "run " + r->id + " is " +
                                                   std::string(to_string(r->status)) +
                                                   "; only paused runs can be resumed");
    }
    r->status = RunStatus::kRunning;
    store.update_run(*r);
    events.push_back({EngineEvent::Kind::kRunResumed, r->id, "", "", 0, "running", "", at, ""});
    // Fan-out elements were made ready when their group began: they are
    // ready again as they are; everything else is advanced as usual.
    for (auto row : store.tasks_of(r->id)) {
      if (!row.task.index || row.task.status != TaskStatus::kPending) continue;
      row.task.status = TaskStatus::kReady;
      row.task.ready_at = at;
      row.task.available_at = at;
      store.update_task(row);
      EngineEvent e{EngineEvent::Kind::kTaskReady,
                    r->id,
                    row.task.id,
                    row.task.key,
                    row.task.attempt,
                    "ready",
                    "",
                    at,
                    ""};
      e.available_at = at;
      e.priority = row.task.priority;
      events.push_back(std::move(e));
    }
    const auto def = impl_->definition(t, impl_->workflow_of(store, r->id));
    Impl::Hooks(*impl_, t, store, at, events).progress(*def, *r).advance();
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  return run;
}

Run Engine::retry(std::string_view run_id) {
  const Micros at = impl_->now();
  std::vector<EngineEvent> events;
  auto run = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    store.lock_run(run_id);
    auto r = store.find_run(run_id);
    if (!r) throw run_not_found(run_id);
    if (r->status != RunStatus::kFailed && r->status != RunStatus::kTimedOut &&
        r->status != RunStatus::kCancelled) {
      throw Error(ErrorCode::kInvalidArgument,
                  "run " + r->id + " is " + std::string(to_string(r->status)) +
                      "; only failed, timed-out or cancelled runs can be retried");
    }
    const auto def = impl_->definition(t, impl_->workflow_of(store, r->id));
    const auto rows = store.tasks_of(r->id);
    std::set<std::string> redo;  // definition ids to run again
    for (const auto& row : rows) {
      if (!row.task.index && row.task.status != TaskStatus::kSucceeded &&
          row.task.status != TaskStatus::kSkipped) {
        redo.insert(row.task.definition_id);
      }
    }
    for (auto row : rows) {
      if (!redo.count(row.task.definition_id)) continue;
      if (row.task.index) {
        store.delete_task(row.task.id);  // fan-out elements are made anew
        continue;
      }
      const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
      row.task.status = TaskStatus::kPending;
      row.task.error.clear();
      row.task.output.clear();
      row.task.input.clear();
      row.task.max_attempts = row.task.attempt + d.retry.max_attempts;
      row.task.finished_at.reset();
      row.task.lease_expires_at.reset();
      row.task.ready_at.reset();
      row.task.available_at.reset();
      row.lease_owner.clear();
      row.start_deadline.reset();
      row.close_deadline.reset();
      row.task.child_run_id.clear();
      store.update_task(row);
    }
    Impl::Hooks hooks(*impl_, t, store, at, events);
    // Under a concurrency limit a retry takes a place like a new run.
    std::int64_t over = 0;
    if (def->concurrency && r->concurrency_key) {
      over = store.active_in_group(r->workflow, *r->concurrency_key) + 1 - def->concurrency->limit;
      if (over > 0 && def->concurrency->strategy == ConcurrencyStrategy::kCancelNewest) {
        throw Error(ErrorCode::kResourceExhausted,
                    "concurrency limit: " + group_name(*r) +
                        " is at its limit (strategy cancel_newest); retry when a run finishes");
      }
    }
    r->error.clear();
    r->output.clear();
    r->finished_at.reset();
    if (over > 0 && def->concurrency->strategy == ConcurrencyStrategy::kQueue) {
      r->status = RunStatus::kPending;
      r->deadline_at.reset();
      store.update_run(*r);
      events.push_back({EngineEvent::Kind::kRunQueued, r->id, "", "", 0, "pending", "", at, ""});
      impl_->stage(t, events);
      return *r;
    }
    r->status = RunStatus::kRunning;
    if (def->timeout) r->deadline_at = at + us(*def->timeout);
    store.update_run(*r);
    events.push_back({EngineEvent::Kind::kRunStarted, r->id, "", "", 0, "running", "", at, ""});
    for (; over > 0; --over) {  // cancel_oldest
      auto oldest = store.first_in_group(r->workflow, *r->concurrency_key, true, r->id);
      if (!oldest) break;
      hooks.cancel_run(*oldest, "concurrency limit: replaced by the retried run " + r->id +
                                    " (strategy cancel_oldest)");
    }
    auto progress = hooks.progress(*def, *r);
    progress.advance();
    impl_->stage(t, events);
    return *r;
  });
  impl_->emit(events);
  impl_->notify_scheduler();
  return run;
}

}  // namespace devcycle
