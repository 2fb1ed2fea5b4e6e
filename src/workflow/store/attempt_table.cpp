#include "workflow/store/attempt_table.h"

#include <algorithm>
#include <cstddef>

namespace devcycle::internal {

void AttemptTable::insert_attempt(const std::string& task_id, const TaskAttempt& a) {
  w_.any().execute(
      "INSERT INTO task_attempts (task_id, attempt, agent_id, lease_owner, status, error, "
      "started_at, "
      "finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {task_id, a.attempt, a.agent_id, a.lease_owner, a.status, null_if_empty(a.error),
       a.started_at, Value(a.finished_at)});
}

void AttemptTable::insert_attempts(std::span<const std::pair<std::string, TaskAttempt>> attempts) {
  constexpr std::size_t kPerStatement = 64;
  constexpr int kParams = 8;
  std::vector<Value> params;
  for (std::size_t first = 0; first < attempts.size(); first += kPerStatement) {
    const auto chunk = attempts.subspan(first, std::min(kPerStatement, attempts.size() - first));
    std::string sql =
        "INSERT INTO task_attempts (task_id, attempt, agent_id, lease_owner, status, error, "
        "started_at, finished_at) VALUES ";
    params.clear();
    params.reserve(chunk.size() * kParams);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const int base = static_cast<int>(i) * kParams;
      sql += i ? ", (" : "(";
      for (int k = 1; k <= kParams; ++k)
        sql += "$" + std::to_string(base + k) + (k < kParams ? ", " : ")");
      const auto& [task_id, a] = chunk[i];
      params.insert(params.end(), {task_id, a.attempt, a.agent_id, a.lease_owner, a.status,
                                   null_if_empty(a.error), a.started_at, Value(a.finished_at)});
    }
    w_.any().execute(sql, params);
  }
}

void AttemptTable::end_attempt(const TaskRow& row, std::string_view status, std::string_view error,
                               Micros at) {
  insert_attempt(row.task.id,
                 {row.task.attempt, row.task.agent_id, row.lease_owner, std::string(status),
                  std::string(error), row.task.started_at.value_or(at), at});
}

std::vector<TaskAttempt> AttemptTable::attempts_of(const TaskRow& row) {
  std::vector<TaskAttempt> out;
  for (const auto& r :
       w_.any().query("SELECT attempt, agent_id, lease_owner, status, error, started_at, "
                      "finished_at FROM task_attempts "
                      "WHERE task_id = $1 ORDER BY attempt",
                      {row.task.id})) {
    out.push_back({static_cast<int>(r[0].as_int()), r[1].as_text(), r[2].as_text(), r[3].as_text(),
                   text_or_empty(r[4]), r[5].as_int(), r[6].as_optional_int()});
  }
  // The attempt in progress is described by the task row until it ends.
  if (row.task.status == TaskStatus::kRunning && row.task.attempt > 0 &&
      (out.empty() || out.back().attempt < row.task.attempt)) {
    out.push_back({row.task.attempt, row.task.agent_id, row.lease_owner, "running", "",
                   row.task.started_at.value_or(0), std::nullopt});
  }
  return out;
}

void AttemptTable::delete_of_run(std::string_view run_id) {
  w_.any().execute(
      "DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM tasks WHERE run_id = $1)",
      {run_id});
}

}  // namespace devcycle::internal
