// Claiming ready tasks: for this engine's workers or for bus agents, within
// each agent's capacity and its capability's rate limit, and eagerly, in a
// completion's own write, for a successor this engine already knows it can
// run.
#include <algorithm>
#include <unordered_map>

#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::AgentLoad;
using internal::Claim;
using internal::kBusPrefix;
using internal::Runner;
using internal::Runners;
using internal::RunProgress;
using internal::RunStore;
using internal::TaskRow;
using internal::us;

// Claims a task that this very transaction is readying (the row is not
// written yet), for this engine, when it already knows who runs it: as
// fenced as the conditional UPDATE of claim(), since the row was found
// pending (or made) in the same transaction.
std::optional<Claim> Engine::Impl::claim_in_place(TaskRow& row, const TaskDefinition& d,
                                                  const std::string& workflow_id, Micros at,
                                                  std::vector<EngineEvent>& events,
                                                  AgentLoad& load) {
  if (row.task.available_at.value_or(at) > at || resolver.rate_limited(d)) return std::nullopt;
  const auto runners = resolver.remembered(d, at);
  // Bus agents are claimed by claim(), which sends their assignments.
  if (runners.empty() || runners.front().function.starts_with(kBusPrefix)) return std::nullopt;
  const Runner* found = load.take(runners);
  if (!found) return std::nullopt;
  std::optional<Micros> close_deadline;
  if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
  const auto lease = lease_until(d.timeouts, at, close_deadline);
  row.task.status = TaskStatus::kRunning;
  row.task.attempt += 1;
  row.task.agent_id = found->agent_id;
  row.task.lease_expires_at = lease;
  row.task.started_at = at;
  row.close_deadline = close_deadline;
  row.start_deadline.reset();
  row.lease_owner = options.engine_id;
  events.push_back({EngineEvent::Kind::kTaskStarted, row.task.run_id, row.task.id, row.task.key,
                    row.task.attempt, "running", "", at, ""});
  return Claim{
      row.task.id,     row.task.run_id,   row.task.key,   workflow_id,      found->function,
      found->agent_id, options.engine_id, row.task.input, row.task.attempt, at,
      lease,           close_deadline,    d.timeouts};
}

// Claims one ready row for the first of `runners` with room: a Claim for
// this engine's workers, or an assignment sent with the transaction for a
// bus agent. kFull: every runner is at capacity; kLost: the fenced UPDATE
// found the row changed.
Engine::Impl::RowClaim Engine::Impl::claim_row(
    RunStore& store, const TaskRow& row, const TaskDefinition& d, const std::string& workflow_id,
    const Runners& runners, AgentLoad& load, Micros at, std::vector<Claim>& claims,
    std::vector<EngineEvent>& events, std::vector<Message>& assignments) {
  const Runner* runner = load.take(runners);
  if (!runner) return RowClaim::kFull;
  std::optional<Micros> close_deadline;
  if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
  const auto lease = lease_until(d.timeouts, at, close_deadline);
  if (!store.claim(row, options.engine_id, runner->agent_id, at, lease, close_deadline))
    return RowClaim::kLost;
  const int attempt = row.task.attempt + 1;
  events.push_back({EngineEvent::Kind::kTaskStarted, row.task.run_id, row.task.id, row.task.key,
                    attempt, "running", "", at, ""});
  if (runner->function.starts_with(kBusPrefix)) {
    // Runs in another process: the assignment leaves with the claim.
    assignments.push_back(assignment(runner->function.substr(kBusPrefix.size()), row, attempt,
                                     runner->agent_id, at, lease));
  } else {
    claims.push_back({row.task.id, row.task.run_id, row.task.key, workflow_id, runner->function,
                      runner->agent_id, options.engine_id, row.task.input, attempt, at, lease,
                      close_deadline, d.timeouts});
  }
  return RowClaim::kClaimed;
}

// claim() on PostgreSQL, where several engines share the ready tasks: the
// candidates are chosen inside the claim transaction, FOR UPDATE SKIP
// LOCKED, so that engines take different tasks instead of racing for the
// same head of the queue. Tasks whose runners this engine has not looked
// up yet are left ready and looked up after the transaction (the registry
// reads the database itself), to be claimed on the next pass.
std::vector<Claim> Engine::Impl::claim_locked(Micros at, int free) {
  saw_ready = false;
  std::vector<Claim> all;
  // A second pass when the first met tasks of runners not looked up yet.
  for (int pass = 0; pass < 2 && static_cast<int>(all.size()) < free; ++pass) {
    const int room = free - static_cast<int>(all.size());
    std::vector<Claim> claims;
    std::vector<EngineEvent> events;
    std::vector<Message> assignments;
    std::vector<std::pair<std::shared_ptr<const WorkflowDefinition>, std::string>> unknown;
    db.write([&](Txn& t) {
      RunStore store(t);
      store.defer_writes();  // the claims written in one statement
      claims.clear();
      events.clear();
      assignments.clear();
      unknown.clear();
      AgentLoad load(store);
      const auto aging = std::max<Micros>(1, us(options.aging_step));
      const int page = std::max(16, room);
      const auto taken = [&] { return static_cast<int>(claims.size() + assignments.size()); };
      // Further pages only while whole pages hold nothing this engine can
      // take, so that tasks nobody here runs cannot hide runnable ones.
      for (int offset = 0; taken() < room && offset < 20 * page; offset += page) {
        const auto rows = store.lock_ready(at, aging, page, offset);
        if (!rows.empty()) saw_ready = true;
        bool nobody_here = true;  // no row of the page has a runner known here
        for (const auto& [row, workflow_id] : rows) {
          if (taken() >= room) break;
          const auto def = definition(t, workflow_id);
          const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
          const auto runners = resolver.known(d, at);
          if (runners && !runners->empty()) nobody_here = false;
          if (!runners) {
            unknown.emplace_back(def, row.task.definition_id);
            continue;
          }
          if (runners->empty() || resolver.rate_wait(d) > 0) continue;  // nobody / over its rate
          claim_row(store, row, d, workflow_id, *runners, load, at, claims, events, assignments);
        }
        // Agents at capacity or over their rate end the pass too: the
        // pages below hold more of the same.
        if (static_cast<int>(rows.size()) < page || !nobody_here) break;
      }
      store.flush();
      stage(t, events);
      internal::Outbox::add(t, assignments, at);
    });
    for (const auto& c : claims) cancelled.forget(c.task_id);
    emit(events);
    all.insert(all.end(), std::make_move_iterator(claims.begin()),
               std::make_move_iterator(claims.end()));
    if (unknown.empty()) break;
    for (const auto& [def, definition_id] : unknown) {
      const auto& d = RunProgress::definition_of(*def, definition_id);
      if (!resolver.known(d, at)) resolver.resolve_and_remember(d, at);
    }
  }
  return all;
}

std::vector<Claim> Engine::Impl::claim(Micros at, int free) {
  if (db.dialect() == Dialect::kPostgres) return claim_locked(at, free);
  ready.refill(at);
  struct Candidate {
    internal::ReadyEntry entry;
    std::string workflow_id;
    Runners runners;
  };
  // Candidates are chosen outside the write transaction: the registry reads
  // the database itself. Tasks nobody here can run are passed over and put
  // back, so that they cannot hide runnable work behind them.
  std::vector<Candidate> chosen;
  std::vector<internal::ReadyEntry> passed_over;
  const int max_looks = 20 * std::max(32, free * 4);
  for (int looked = 0; static_cast<int>(chosen.size()) < free && looked < max_looks; ++looked) {
    auto e = ready.pop(at);
    if (!e) break;
    std::string wid;
    std::shared_ptr<const WorkflowDefinition> def;
    try {
      wid = workflow_of(e->run_id);
      def = definitions.find(wid);
      if (!def) def = db.read([&](Txn& t) { return definition(t, wid); });
    } catch (const Error& err) {
      if (err.code() == ErrorCode::kNotFound) continue;  // the run is gone: a stale entry
      ready.push(std::move(*e), at);
      throw;
    }
    const auto& d = RunProgress::definition_of(*def, e->definition_id);
    auto known = resolver.known(d, at);
    Runners found = known ? std::move(*known) : resolver.resolve_and_remember(d, at);
    if (!found.empty()) {
      if (const Micros wait = resolver.rate_wait(d); wait > 0) {
        // Over its capability's rate: back in the queue until a token is due.
        e->available_at = at + wait;
        ready.push(std::move(*e), at);
        continue;
      }
      chosen.push_back({std::move(*e), std::move(wid), std::move(found)});
    } else {
      passed_over.push_back(std::move(*e));
    }
  }
  // Tasks passed over are dropped rather than put back: the next refill
  // brings back those still ready, and entries that went stale behind
  // them (finished by another engine) cannot pile up.
  passed_over.clear();
  if (chosen.empty()) return {};
  // If the claim transaction fails, the chosen tasks go back in the queue.
  struct Restore {
    internal::ReadyTracker& ready;
    std::vector<Candidate>& chosen;
    Micros at;
    bool armed = true;
    ~Restore() {
      if (!armed) return;
      for (auto& c : chosen) ready.push(std::move(c.entry), at);
    }
  } restore{ready, chosen, at};
  std::vector<Claim> claims;
  std::vector<EngineEvent> events;
  std::vector<Message> assignments;
  std::vector<std::size_t> full;  // chosen tasks whose agents are all at capacity
  db.write([&](Txn& t) {
    RunStore store(t);
    claims.clear();
    events.clear();
    assignments.clear();
    full.clear();
    AgentLoad load(store);
    std::vector<std::string> ids;
    ids.reserve(chosen.size());
    for (const auto& c : chosen) ids.push_back(c.entry.task_id);
    std::unordered_map<std::string, TaskRow> rows;
    for (auto& r : store.claimable(ids)) rows.emplace(r.task.id, std::move(r));
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      const auto& c = chosen[i];
      // The entry may be stale; the row and the fenced UPDATE decide.
      const auto found = rows.find(c.entry.task_id);
      if (found == rows.end() || found->second.task.attempt != c.entry.attempt) continue;
      const auto def = definition(t, c.workflow_id);
      const auto& d = RunProgress::definition_of(*def, found->second.task.definition_id);
      if (claim_row(store, found->second, d, c.workflow_id, c.runners, load, at, claims, events,
                    assignments) == RowClaim::kFull)
        full.push_back(i);
    }
    stage(t, events);
    internal::Outbox::add(t, assignments, at);
  });
  restore.armed = false;
  // Those whose agents are full stay ready, looked at again once an attempt may have ended.
  for (auto i : full) {
    chosen[i].entry.available_at = at + us(options.poll_interval);
    ready.push(std::move(chosen[i].entry), at);
  }
  // A new attempt starts uncancelled (an old entry may be left from a cancel before a retry).
  for (const auto& c : claims) cancelled.forget(c.task_id);
  emit(events);
  return claims;
}

// Eager dispatch: inside a completion's transaction, claims one task that
// this completion just made ready, when this engine already knows it can
// run it, so a chain of tasks skips the scheduler round trip. Registry
// lookups are not allowed here (they would read the database inside the
// write), so only remembered resolutions count.
std::optional<Claim> Engine::Impl::claim_successor(Txn& t, RunStore& store, const Claim& done,
                                                   std::size_t first_event, Micros at,
                                                   const std::vector<TaskRow>& rows,
                                                   std::vector<EngineEvent>& events) {
  AgentLoad load(store, done.agent_id);
  for (std::size_t i = first_event; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.kind != EngineEvent::Kind::kTaskReady || e.run_id != done.run_id) continue;
    const auto def = definition(t, done.workflow_id);
    // The row as this transaction's advance() just wrote it.
    const auto row = std::find_if(rows.begin(), rows.end(),
                                  [&](const TaskRow& r) { return r.task.id == e.task_id; });
    if (row == rows.end() || row->task.status != TaskStatus::kReady ||
        row->task.available_at.value_or(at) > at)
      continue;
    const auto& d = RunProgress::definition_of(*def, row->task.definition_id);
    if (resolver.rate_limited(d)) continue;  // claim() takes its tokens
    const auto runners = resolver.remembered(d, at);
    if (runners.empty() || runners.front().function.starts_with(kBusPrefix))
      continue;  // see claim()
    const Runner* found = load.take(runners);
    if (!found) continue;
    std::optional<Micros> close_deadline;
    if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
    const auto lease = lease_until(d.timeouts, at, close_deadline);
    if (!store.claim(*row, options.engine_id, found->agent_id, at, lease, close_deadline)) continue;
    const int attempt = row->task.attempt + 1;
    events.push_back({EngineEvent::Kind::kTaskStarted, row->task.run_id, row->task.id,
                      row->task.key, attempt, "running", "", at, ""});
    return Claim{
        row->task.id,    row->task.run_id,  row->task.key,   done.workflow_id, found->function,
        found->agent_id, options.engine_id, row->task.input, attempt,          at,
        lease,           close_deadline,    d.timeouts};
  }
  return std::nullopt;
}

}  // namespace devcycle
