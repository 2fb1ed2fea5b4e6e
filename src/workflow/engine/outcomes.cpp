// Recording what attempts came to: fenced by their lease, advancing their
// run, and claiming a successor in the same write. Engines with worker
// threads record asynchronously: a worker hands its outcome over and takes
// its next task; one write closure records every outcome gathered by the
// time the writer reaches it, and the successors it claimed go to the
// workers once it has committed. So the writer's work per task is
// statements, not thread hand-offs and one savepoint each.
#include <algorithm>

#include "common/json_schema_internal.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::AgentLoad;
using internal::Claim;
using internal::RunProgress;
using internal::RunStore;
using internal::TaskRow;
using nlohmann::json;

Engine::Impl::Outcome Engine::Impl::outcome_of(Claim c, bool ok, std::string output_or_error,
                                               bool retryable) {
  Outcome o{std::move(c), ok, "", "", retryable};
  if (!ok) {
    o.error = std::move(output_or_error);
    return o;
  }
  if (output_or_error.empty()) output_or_error = "null";
  try {
    o.output = internal::parse_json(output_or_error, "output")
                   .dump(-1, ' ', false, json::error_handler_t::replace);
  } catch (const Error& e) {
    o.success = false;
    o.retryable = false;
    o.error = std::string(e.what()) + " (a task's output must be JSON)";
  }
  return o;
}

// advance() after a success, reading only the rows concerned when it can.
// When it can, it also claims one newly ready successor for the same
// worker in the same write as readying it (`next`).
std::vector<TaskRow> Engine::Impl::advance_after_success(Txn& t, RunStore& store, const Claim& c,
                                                         Micros at,
                                                         std::vector<EngineEvent>& events,
                                                         std::optional<Claim>& next) {
  if (c.task_key.find('[') == std::string::npos && !store.run_paused(c.run_id)) {
    // The fence just held, so the run has not finished (a finished run has
    // cancelled its tasks and their leases) and it is not paused: it runs.
    Run run;
    run.id = c.run_id;
    run.status = RunStatus::kRunning;
    const auto def = definition(t, c.workflow_id);
    Hooks hooks(*this, t, store, at, events);
    auto progress = hooks.progress(*def, run);
    AgentLoad load(store, c.agent_id);
    progress.set_claim_hook([&](TaskRow& row, const TaskDefinition& d) {
      if (next) return false;
      next = claim_in_place(row, d, c.workflow_id, at, events, load);
      return next.has_value();
    });
    if (progress.advance_after_success(c.task_key)) return progress.take_rows();
    next.reset();  // nothing was written: the full advance decides
  }
  return advance(t, store, c.run_id, at, events);
}

// Records one outcome inside a write. Returns false when the attempt was
// fenced off (its lease expired or moved on) and nothing was written.
bool Engine::Impl::record(Txn& t, RunStore& store, const Outcome& o, Micros at,
                          std::vector<EngineEvent>& events, std::optional<Claim>& next,
                          Deferred& later) {
  const Claim& c = o.claim;
  // The run before its task, as every transaction that judges a run's
  // progress takes them (a batch locked its runs already): the other order
  // could deadlock with a batch that ends this run's tasks.
  store.lock_run(c.run_id);
  if (o.success) {
    // The fence and the record in one statement (or one for the batch).
    if (later.fenced ? !later.fenced->contains(c.task_id)
                     : !store.succeed_leased(c.task_id, c.attempt, c.lease_owner, at, o.output))
      return false;
    later.attempts.push_back(
        {c.task_id, {c.attempt, c.agent_id, c.lease_owner, "succeeded", "", c.started_at, at}});
    events.push_back({EngineEvent::Kind::kTaskSucceeded, c.run_id, c.task_id, c.task_key, c.attempt,
                      "succeeded", "", at, ""});
    // Fenced with the whole batch before any outcome was applied: an
    // earlier outcome of the batch may have ended this run since (a
    // failure, or the last other task); then there is nothing to advance.
    if (later.fenced && store.finished_here(c.run_id)) return true;
    // A fan-out element changes nothing else in the run unless it was the
    // last open one of its group: the batch's end asks, once per group.
    if (const auto bracket = c.task_key.find('['); bracket != std::string::npos) {
      const auto group = std::string_view(c.task_key).substr(0, bracket + 1);  // "<id>["
      const auto same = std::find_if(later.groups.begin(), later.groups.end(), [&](const Claim& g) {
        return g.run_id == c.run_id && std::string_view(g.task_key).starts_with(group);
      });
      if (same != later.groups.end()) {
        *same = c;
      } else {
        later.groups.push_back(c);
      }
      return true;
    }
    const auto first_new = events.size();
    auto rows = advance_after_success(t, store, c, at, events, next);
    if (!next) next = claim_successor(t, store, c, first_new, at, rows, events);
    return true;
  }
  auto row = store.leased(c.task_id, c.attempt, c.lease_owner, at);
  if (!row) return false;
  fail_attempt(t, store, *row, "failed", o.error, o.retryable, at, events);
  return true;
}

void Engine::Impl::finish_batch(Txn& t, RunStore& store, Deferred& later, Micros at,
                                std::vector<EngineEvent>& events, std::vector<Claim>& next) {
  store.insert_attempts(later.attempts);
  for (const auto& c : later.groups) {
    if (store.finished_here(c.run_id)) continue;  // ended by another outcome of the batch
    const auto bracket = c.task_key.find('[');
    // Locked first: a sibling completing in another engine's transaction
    // has committed by then, so one of the two sees the group closed.
    store.lock_run(c.run_id);
    if (store.has_open_elements(c.run_id, std::string_view(c.task_key).substr(0, bracket)))
      continue;
    std::optional<Claim> n;
    const auto first_new = events.size();
    auto rows = advance_after_success(t, store, c, at, events, n);
    if (!n) n = claim_successor(t, store, c, first_new, at, rows, events);
    if (n) next.push_back(std::move(*n));
  }
}

std::optional<Claim> Engine::Impl::complete(const Claim& c, bool ok,
                                            const std::string& output_or_error, bool retryable,
                                            bool* recorded) {
  const auto o = outcome_of(c, ok, output_or_error, retryable);
  cancelled.forget(c.task_id);
  const Micros at = now();
  std::vector<EngineEvent> events;
  std::optional<Claim> next;
  db.write([&](Txn& t) {
    RunStore store(t);
    next.reset();
    events.clear();
    Deferred later;
    std::vector<Claim> more;
    const bool took = record(t, store, o, at, events, next, later);
    if (recorded) *recorded = took;
    finish_batch(t, store, later, at, events, more);
    stage(t, events);
    if (!next && !more.empty()) next = std::move(more.front());
  });
  if (next) cancelled.forget(next->task_id);
  emit(std::move(events));
  return next;
}

void Engine::Impl::record_later(Outcome o) {
  bool arm = false;
  {
    std::lock_guard lock(record_mu);
    to_record.push_back(std::move(o));
    if (!record_armed) {
      record_armed = arm = true;
      ++record_writes;
    }
  }
  if (arm) submit_records();
}

void Engine::Impl::submit_records() {
  auto batch = std::make_shared<RecordBatch>();
  db.submit(
      [this, batch](Txn& t) {
        {
          std::lock_guard lock(record_mu);
          batch->outcomes.swap(to_record);
          record_armed = false;
          batch->ran = true;
        }
        const Micros at = now();
        RunStore store(t);
        {
          // Every run this batch may advance, locked up front in one order.
          std::vector<std::string> runs;
          runs.reserve(batch->outcomes.size());
          for (const auto& o : batch->outcomes) runs.push_back(o.claim.run_id);
          store.lock_runs(std::move(runs));
        }
        Deferred later;
        std::unordered_set<std::string> fenced;
        if (t.dialect() == Dialect::kPostgres && batch->outcomes.size() > 1) {
          std::vector<RunStore::Success> successes;
          for (const auto& o : batch->outcomes) {
            if (o.success)
              successes.push_back(
                  {o.claim.task_id, o.claim.attempt, o.claim.lease_owner, o.output});
          }
          fenced = store.succeed_leased_many(successes, at);
          later.fenced = &fenced;
          // The rows the successes' advances read, in one statement, and
          // their writes (successors readied and claimed) in one more.
          std::vector<RunStore::Want> wants;
          for (const auto& o : batch->outcomes) {
            const auto& c = o.claim;
            if (!o.success || !fenced.contains(c.task_id) ||
                c.task_key.find('[') != std::string::npos || store.run_paused(c.run_id))
              continue;
            auto keys = RunProgress::keys_after_success(*definition(t, c.workflow_id), c.task_key);
            if (keys) wants.push_back({c.run_id, std::move(*keys)});
          }
          store.prefetch(wants);
          store.defer_writes();
        }
        for (const auto& o : batch->outcomes) {
          std::optional<Claim> next;
          record(t, store, o, at, batch->events, next, later);
          if (next) batch->next.push_back(std::move(*next));
        }
        finish_batch(t, store, later, at, batch->events, batch->next);
        store.flush();
        stage(t, batch->events);
      },
      [this, batch](std::exception_ptr e) {
        if (!e) {
          post(std::move(batch->events), std::move(batch->next));
        } else if (!batch->ran) {
          // Never ran (the database is closing): the outcomes stay queued;
          // if nothing records them, their leases expire and they run again.
          std::lock_guard lock(record_mu);
          record_armed = false;
        } else {
          // One outcome broke the shared closure: record each on its own,
          // so that the others are not lost with it.
          for (auto& o : batch->outcomes) record_alone(std::move(o));
        }
        std::lock_guard lock(record_mu);
        --record_writes;
        record_cv.notify_all();
      });
}

// Runs on the writer thread (from a done callback): must not wait for a write.
void Engine::Impl::record_alone(Outcome o) {
  auto batch = std::make_shared<RecordBatch>();
  batch->outcomes.push_back(std::move(o));
  {
    std::lock_guard lock(record_mu);
    ++record_writes;
  }
  db.submit(
      [this, batch](Txn& t) {
        const Micros at = now();
        RunStore store(t);
        std::optional<Claim> next;
        Deferred later;
        record(t, store, batch->outcomes[0], at, batch->events, next, later);
        if (next) batch->next.push_back(std::move(*next));
        finish_batch(t, store, later, at, batch->events, batch->next);
        stage(t, batch->events);
      },
      [this, batch](std::exception_ptr e) {
        // On failure the attempt's lease expires and the task runs again.
        if (!e) post(std::move(batch->events), std::move(batch->next));
        std::lock_guard lock(record_mu);
        --record_writes;
        record_cv.notify_all();
      });
}

// After a record write committed: events out, claimed successors to the
// workers (after their task.started events), the scheduler told.
void Engine::Impl::post(std::vector<EngineEvent> events, std::vector<Claim> next) {
  for (const auto& n : next) cancelled.forget(n.task_id);
  emit(std::move(events));
  {
    std::lock_guard lock(queue_mu);
    for (auto& n : next) queue.push_back(std::move(n));
    wake = true;
  }
  if (!next.empty()) queue_cv.notify_all();
  scheduler_cv.notify_one();
}

}  // namespace devcycle
