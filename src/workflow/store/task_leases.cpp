#include "workflow/store/task_leases.h"

#include <algorithm>
#include <cstddef>

namespace devcycle::internal {

std::vector<TaskRow> TaskLeases::ready_tasks(Micros now, std::int64_t aging_step_us, int limit) {
  return select_tasks(w_.any(),
                      "WHERE status = 'ready' AND available_at <= $1 "
                      "ORDER BY priority + ($1 - ready_at) / $2 DESC, ready_at, id LIMIT $3",
                      {now, aging_step_us, limit});
}

std::vector<TaskRow> TaskLeases::claimable(std::span<const std::string> ids) {
  if (ids.empty()) return {};
  std::string where = "WHERE status = 'ready' AND id IN (";
  std::vector<Value> params;
  params.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    where += (i ? ", $" : "$") + std::to_string(i + 1);
    params.emplace_back(ids[i]);
  }
  where += ")";
  if (w_.postgres()) where += " FOR UPDATE SKIP LOCKED";
  return select_tasks(w_.any(), where, params);
}

std::vector<std::pair<TaskRow, std::string>> TaskLeases::lock_ready(Micros now,
                                                                    std::int64_t aging_step_us,
                                                                    int limit, int offset) {
  std::vector<std::pair<TaskRow, std::string>> out;
  for (const auto& r : w_.any().query(
           "SELECT " + qualified_task_columns() +
               ", r.workflow_id FROM tasks JOIN workflow_runs r ON r.id = tasks.run_id"
               " WHERE tasks.status = 'ready' AND tasks.available_at <= $1"
               " ORDER BY tasks.priority + ($1 - tasks.ready_at) / $2 DESC, tasks.ready_at,"
               " tasks.id LIMIT $3 OFFSET $4"
               " FOR UPDATE OF tasks SKIP LOCKED FOR KEY SHARE OF r SKIP LOCKED",
           {now, aging_step_us, limit, offset})) {
    out.emplace_back(task_from(r), r[23].as_text());
    ready_locked_[out.back().first.task.id] = out.back().first.task.attempt;
  }
  return out;
}

std::vector<TaskRow> TaskLeases::expired_leases(Micros now) {
  return select_tasks(
      w_.raw(),
      "WHERE status = 'running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1", {now});
}

std::vector<TaskRow> TaskLeases::missed_starts(Micros now) {
  return select_tasks(
      w_.any(), "WHERE status = 'ready' AND start_deadline IS NOT NULL AND start_deadline < $1",
      {now});
}

std::unordered_map<std::string, int> TaskLeases::running_by_agent() {
  std::unordered_map<std::string, int> out;
  for (const auto& r :
       w_.any().query("SELECT agent_id, COUNT(*) FROM tasks WHERE status = 'running' AND "
                      "agent_id IS NOT NULL GROUP BY agent_id")) {
    out[r[0].as_text()] = static_cast<int>(r[1].as_int());
  }
  return out;
}

std::optional<int> TaskLeases::lock_and_count_running(std::string_view agent_id) {
  const auto rs = w_.any().query("SELECT pg_try_advisory_xact_lock(hashtext($1))",
                                 {"agent\n" + std::string(agent_id)});
  if (rs[0][0].as_int() == 0) return std::nullopt;
  // A statement of its own: its snapshot is taken after the lock was granted,
  // so it sees every claim of the transaction that held the lock before.
  return static_cast<int>(
      w_.any()
          .query("SELECT COUNT(*) FROM tasks WHERE status = 'running' AND agent_id = $1",
                 {agent_id})[0][0]
          .as_int());
}

bool TaskLeases::claim(const TaskRow& row, const std::string& lease_owner,
                       const std::string& agent_id, Micros now, Micros lease_expires_at,
                       std::optional<Micros> close_deadline) {
  tasks_.forget(row.task.run_id);
  if (w_.on()) {
    // A row lock_ready() locked in this transaction is as it read it (this
    // transaction has not claimed it yet): the fence is decided here, and
    // the claim written with the deferred updates.
    if (auto it = ready_locked_.find(row.task.id);
        it != ready_locked_.end() && it->second == row.task.attempt) {
      ready_locked_.erase(it);
      if (row.task.status != TaskStatus::kReady || !row.task.available_at ||
          *row.task.available_at > now)
        return false;
      TaskRow claimed = row;
      claimed.task.status = TaskStatus::kRunning;
      claimed.task.attempt += 1;
      claimed.lease_owner = lease_owner;
      claimed.task.agent_id = agent_id;
      claimed.task.lease_expires_at = lease_expires_at;
      claimed.close_deadline = close_deadline;
      claimed.task.started_at = now;
      w_.claim_later(std::move(claimed), now);
      return true;
    }
  }
  return w_.any().execute(
             "UPDATE tasks SET status = 'running', attempt = attempt + 1, lease_owner = $2, "
             "agent_id = $3, "
             "lease_expires_at = $4, close_deadline = $5, started_at = $6, updated_at = $6 "
             "WHERE id = $1 AND status = 'ready' AND attempt = $7 AND available_at <= $6",
             {row.task.id, lease_owner, agent_id, lease_expires_at, Value(close_deadline), now,
              row.task.attempt}) == 1;
}

bool TaskLeases::extend_lease(std::string_view task_id, int attempt, std::string_view lease_owner,
                              Micros now, Micros lease_expires_at) {
  tasks_.forget_all();  // rows changed by id: their runs are not known here
  return w_.any().execute(
             "UPDATE tasks SET lease_expires_at = $4, updated_at = $5 WHERE id = $1 AND attempt = "
             "$2 "
             "AND lease_owner = $3 AND status = 'running' AND lease_expires_at >= $5",
             {task_id, attempt, lease_owner, lease_expires_at, now}) == 1;
}

std::optional<TaskRow> TaskLeases::leased(std::string_view task_id, int attempt,
                                          std::string_view lease_owner, Micros now) {
  auto found =
      select_tasks(w_.any(),
                   "WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running' "
                   "AND lease_expires_at >= $4",
                   {task_id, attempt, lease_owner, now});
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

bool TaskLeases::succeed_leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                                Micros now, std::string_view output) {
  tasks_.forget_all();  // rows changed by id: their runs are not known here
  return w_.any().execute(
             "UPDATE tasks SET status = 'succeeded', output = $5, error = NULL, finished_at = $4, "
             "lease_expires_at = NULL, close_deadline = NULL, updated_at = $4 "
             "WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running' "
             "AND lease_expires_at >= $4",
             {task_id, attempt, lease_owner, now, output}) == 1;
}

std::unordered_set<std::string> TaskLeases::succeed_leased_many(
    const std::vector<Success>& successes, Micros now) {
  tasks_.forget_all();  // rows changed by id: their runs are not known here
  std::unordered_set<std::string> out;
  for (std::size_t first = 0; first < successes.size(); first += 200) {
    const std::size_t n = std::min<std::size_t>(200, successes.size() - first);
    std::string sql =
        "UPDATE tasks SET status = 'succeeded', output = v.output, error = NULL, finished_at = $1, "
        "lease_expires_at = NULL, close_deadline = NULL, updated_at = $1 FROM (VALUES ";
    std::vector<Value> params{Value(now)};
    params.reserve(1 + n * 4);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& x = successes[first + i];
      const auto b = std::to_string(2 + i * 4);
      sql += (i ? ", ($" : "($") + b + ", $" + std::to_string(3 + i * 4) + "::bigint, $" +
             std::to_string(4 + i * 4) + ", $" + std::to_string(5 + i * 4) + ")";
      params.emplace_back(x.task_id);
      params.emplace_back(x.attempt);
      params.emplace_back(x.lease_owner);
      params.emplace_back(x.output);
    }
    sql +=
        ") AS v (id, attempt, lease_owner, output) WHERE tasks.id = v.id AND "
        "tasks.attempt = v.attempt AND tasks.lease_owner = v.lease_owner AND "
        "tasks.status = 'running' AND tasks.lease_expires_at >= $1 RETURNING tasks.id";
    for (const auto& r : w_.any().query(sql, params)) out.insert(r[0].as_text());
  }
  return out;
}

std::optional<TaskLeases::Holder> TaskLeases::holder_of(std::string_view task_id) {
  auto rs =
      w_.any().query("SELECT status, attempt, lease_owner FROM tasks WHERE id = $1", {task_id});
  if (rs.empty()) return std::nullopt;
  Holder out;
  out.status = rs[0][0].as_text();
  out.attempt = rs[0][1].as_int();
  if (!rs[0][2].is_null()) out.lease_owner = rs[0][2].as_text();
  return out;
}

bool TaskLeases::release_unstarted(std::string_view task_id, int attempt,
                                   std::string_view lease_owner) {
  tasks_.forget_all();  // rows changed by id: their runs are not known here
  // (An attempt is recorded when it ends, so there is no row to remove.)
  return w_.any().execute(
             "UPDATE tasks SET status = 'ready', attempt = attempt - 1, lease_owner = NULL, "
             "lease_expires_at = NULL, close_deadline = NULL WHERE id = $1 AND attempt = $2 "
             "AND lease_owner = $3 AND status = 'running'",
             {task_id, attempt, lease_owner}) == 1;
}

}  // namespace devcycle::internal
