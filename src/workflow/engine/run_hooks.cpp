// What a run's progress asks of the engine inside one write transaction
// (cancelling runs, children that finished), and how an attempt that
// failed is retried or fails its task.
#include <algorithm>

#include "devcycle/common/duration.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::RunProgress;
using internal::RunStore;
using internal::TaskRow;
using internal::us;

std::vector<TaskRow> Engine::Impl::advance(Txn& t, RunStore& store, const std::string& run_id,
                                           Micros at, std::vector<EngineEvent>& events) {
  store.lock_run(run_id);
  auto run = store.find_run(run_id);
  if (!run || is_terminal(run->status)) return {};
  const auto def = definition(t, workflow_of(store, run_id));
  Hooks hooks(*this, t, store, at, events);
  auto progress = hooks.progress(*def, *run);
  progress.advance();
  return progress.take_rows();
}

Micros Engine::Impl::backoff(const RetryPolicy& p, int attempt) {
  double delay = static_cast<double>(us(p.initial));
  for (int i = 1; i < attempt; ++i) delay *= p.multiplier;
  delay = std::min(delay, static_cast<double>(us(p.max)));
  std::lock_guard lock(rng_mu);
  const double j = std::uniform_real_distribution<double>(-p.jitter, p.jitter)(rng);
  return static_cast<Micros>(std::max(0.0, delay * (1.0 + j)));
}

Micros Engine::Impl::lease_until(const TaskTimeouts& t, Micros now,
                                 std::optional<Micros> close_deadline) const {
  Micros until = now + us(t.heartbeat        ? *t.heartbeat
                          : t.start_to_close ? *t.start_to_close
                                             : options.default_lease);
  if (close_deadline) until = std::min(until, *close_deadline);
  return until;
}

void Engine::Impl::fail_attempt(Txn& t, RunStore& store, TaskRow& row,
                                const std::string& attempt_status, const std::string& error,
                                bool retryable, Micros at, std::vector<EngineEvent>& events) {
  store.end_attempt(row, attempt_status, error, at);
  const auto def = definition(t, workflow_of(store, row.task.run_id));
  const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
  row.task.error = error;
  row.task.lease_expires_at.reset();
  row.lease_owner.clear();
  row.close_deadline.reset();
  if (retryable && row.task.attempt < row.task.max_attempts) {
    row.task.status = TaskStatus::kReady;
    row.task.ready_at = at;  // ready again: aging starts over
    row.task.available_at = at + backoff(d.retry, row.task.attempt);
    if (d.timeouts.schedule_to_start)
      row.start_deadline = *row.task.available_at + us(*d.timeouts.schedule_to_start);
    store.update_task(row);
    events.push_back({EngineEvent::Kind::kTaskRetrying, row.task.run_id, row.task.id, row.task.key,
                      row.task.attempt, "ready", error, at, "", *row.task.available_at,
                      row.task.priority});
    return;
  }
  row.task.status = attempt_status == "timed_out" ? TaskStatus::kTimedOut : TaskStatus::kFailed;
  row.task.finished_at = at;
  row.start_deadline.reset();
  store.update_task(row);
  events.push_back({EngineEvent::Kind::kTaskFailed, row.task.run_id, row.task.id, row.task.key,
                    row.task.attempt, std::string(to_string(row.task.status)), error, at, ""});
  advance(t, store, row.task.run_id, at, events);
}

void Engine::Impl::Hooks::cancel_run(Run& r, const std::string& reason) {
  for (const auto& row : store.tasks_of(r.id)) {
    if (row.task.status == TaskStatus::kRunning) impl.cancelled.mark(row.task.id);
  }
  const auto def = impl.definition(t, impl.workflow_of(store, r.id));
  progress(*def, r).finish_run(RunStatus::kCancelled, reason);
}

void Engine::Impl::Hooks::cancel_child(const std::string& child_run_id, const std::string& reason) {
  store.lock_run(child_run_id);
  auto child = store.find_run(child_run_id);
  if (child && !is_terminal(child->status)) cancel_run(*child, reason);
}

void Engine::Impl::Hooks::run_finished(const Run& run, const RunStore::Finished& what) {
  if (!what.parent_task_id.empty()) {
    // The task waiting for this child ends as it ended.
    auto row = store.find_task(what.parent_task_id);
    if (row && row->task.status == TaskStatus::kWaiting && row->task.child_run_id == run.id) {
      auto& task = row->task;
      if (run.status == RunStatus::kSucceeded) {
        task.status = TaskStatus::kSucceeded;
        task.output = run.output;
      } else {
        task.status =
            run.status == RunStatus::kTimedOut ? TaskStatus::kTimedOut : TaskStatus::kFailed;
        task.error = internal::child_error(run);
      }
      task.finished_at = at;
      row->close_deadline.reset();
      store.update_task(*row);
      events.push_back({task.status == TaskStatus::kSucceeded ? EngineEvent::Kind::kTaskSucceeded
                                                              : EngineEvent::Kind::kTaskFailed,
                        task.run_id, task.id, task.key, task.attempt,
                        std::string(to_string(task.status)), task.error, at, ""});
      impl.advance(t, store, task.run_id, at, events);
    }
  }
  if (what.concurrency_key) release(what.workflow, *what.concurrency_key);
}

}  // namespace devcycle
