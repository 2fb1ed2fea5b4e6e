#include "workflow/store/task_log_table.h"

namespace devcycle::internal {

void TaskLogTable::insert_log(const TaskLogLine& l) {
  w_.any().execute(
      "INSERT INTO task_logs (id, task_id, attempt, level, message, at) VALUES ($1, $2, $3, $4, "
      "$5, $6)",
      {l.id, l.task_id, l.attempt, to_string(l.level), l.message, l.at});
}

std::vector<TaskLogLine> TaskLogTable::logs(std::string_view task_id, std::optional<int> attempt,
                                            const std::string& after_id, int limit) {
  std::vector<TaskLogLine> out;
  const auto rs =
      attempt
          ? w_.any().query(
                "SELECT id, task_id, attempt, level, message, at FROM task_logs WHERE task_id = $1 "
                "AND attempt = $2 AND id > $3 ORDER BY id LIMIT $4",
                {task_id, *attempt, after_id, limit})
          : w_.any().query(
                "SELECT id, task_id, attempt, level, message, at FROM task_logs WHERE task_id = $1 "
                "AND id > $2 ORDER BY id LIMIT $3",
                {task_id, after_id, limit});
  for (const auto& r : rs) {
    out.push_back({r[0].as_text(), r[1].as_text(), static_cast<int>(r[2].as_int()),
                   parse_log_level(r[3].as_text(), "task_logs.level"), r[4].as_text(),
                   r[5].as_int()});
  }
  return out;
}

void TaskLogTable::delete_of_run(std::string_view run_id) {
  w_.any().execute(
      "DELETE FROM task_logs WHERE task_id IN (SELECT id FROM tasks WHERE run_id = $1)", {run_id});
}

}  // namespace devcycle::internal
