// The engine's clockwork, run by tick() at most every 20 ms: runs past
// their timeout, attempts whose lease expired, timers that fired and waits
// (signals, child runs) that ran out, and tasks not started in time.
#include <nlohmann/json.hpp>

#include "devcycle/common/duration.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::RunStore;
using nlohmann::json;

void Engine::Impl::maintenance(Micros at) {
  const bool due = db.read([&](Txn& t) {
    RunStore store(t);
    return !store.expired_leases(at).empty() || !store.missed_starts(at).empty() ||
           !store.overdue_runs(at).empty() || !store.due_waits(at).empty();
  });
  if (!due) return;
  std::vector<EngineEvent> events;
  db.write([&](Txn& t) {
    RunStore store(t);
    Hooks hooks(*this, t, store, at, events);
    for (const auto& run_id : store.overdue_runs(at)) {
      store.lock_run(run_id);
      auto run = store.find_run(run_id);
      // An earlier iteration may have finished it (a child of a run that timed out).
      if (!run || is_terminal(run->status)) continue;
      const auto def = definition(t, workflow_of(store, run_id));
      hooks.progress(*def, *run)
          .finish_run(RunStatus::kTimedOut,
                      "run timeout of " + format_duration(*def->timeout) + " passed");
    }
    for (const auto& seen : store.expired_leases(at)) {
      // An earlier iteration may have finished this run and cancelled the task.
      store.lock_run(seen.task.run_id);  // then read the task as it is now
      auto row = store.find_task(seen.task.id);
      if (!row || row->task.status != TaskStatus::kRunning ||
          row->task.attempt != seen.task.attempt || !row->task.lease_expires_at ||
          *row->task.lease_expires_at >= at) {
        continue;
      }
      fail_attempt(t, store, *row, "timed_out",
                   "lease expired (no heartbeat or completion in time)", true, at, events);
    }
    for (const auto& seen : store.due_waits(at)) {
      store.lock_run(seen.task.run_id);  // then read the task as it is now
      auto found = store.find_task(seen.task.id);
      if (!found || found->task.status != TaskStatus::kWaiting) continue;
      auto& row = *found;
      if (row.task.available_at && *row.task.available_at <= at) {
        // A timer fired.
        row.task.status = TaskStatus::kSucceeded;
        row.task.output = json{{"fired_at", *row.task.available_at}}.dump();
        row.task.finished_at = at;
        store.update_task(row);
        events.push_back({EngineEvent::Kind::kTaskSucceeded, row.task.run_id, row.task.id,
                          row.task.key, row.task.attempt, "succeeded", "", at, ""});
      } else {
        // A signal or a child run did not come in time.
        const bool child = !row.task.child_run_id.empty();
        row.task.status = TaskStatus::kTimedOut;
        row.task.error =
            child ? "child run " + row.task.child_run_id + " did not finish within start_to_close"
                  : "no signal came within start_to_close";
        row.task.finished_at = at;
        row.close_deadline.reset();
        store.update_task(row);
        events.push_back({EngineEvent::Kind::kTaskFailed, row.task.run_id, row.task.id,
                          row.task.key, row.task.attempt, "timed_out", row.task.error, at, ""});
        if (child) hooks.cancel_child(row.task.child_run_id, "its parent task timed out");
      }
      advance(t, store, row.task.run_id, at, events);
    }
    for (const auto& seen : store.missed_starts(at)) {
      store.lock_run(seen.task.run_id);  // then read the task as it is now
      auto found = store.find_task(seen.task.id);
      if (!found || found->task.status != TaskStatus::kReady || !found->start_deadline ||
          *found->start_deadline >= at) {
        continue;
      }
      auto& row = *found;
      row.task.status = TaskStatus::kTimedOut;
      row.task.finished_at = at;
      row.task.error = "not started within schedule_to_start";
      row.start_deadline.reset();
      store.update_task(row);
      events.push_back({EngineEvent::Kind::kTaskFailed, row.task.run_id, row.task.id, row.task.key,
                        row.task.attempt, "timed_out", row.task.error, at, ""});
      advance(t, store, row.task.run_id, at, events);
    }
    stage(t, events);
  });
  emit(events);
}

}  // namespace devcycle
