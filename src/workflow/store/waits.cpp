#include "workflow/store/waits.h"

#include "devcycle/common/uuid.h"

namespace devcycle::internal {

std::vector<TaskRow> Waits::due_waits(Micros now) {
  return select_tasks(
      w_.any(),
      "WHERE status = 'waiting' AND ((available_at IS NOT NULL AND available_at <= $1) "
      "OR (close_deadline IS NOT NULL AND close_deadline <= $1))",
      {now});
}

std::optional<std::string> Waits::take_signal(std::string_view run_id, std::string_view name,
                                              std::string_view task_id) {
  auto rs = w_.any().query(
      "SELECT id, payload FROM run_signals WHERE run_id = $1 AND name = $2 AND taken_by IS NULL "
      "ORDER BY id LIMIT 1",
      {run_id, name});
  if (rs.empty()) return std::nullopt;
  w_.any().execute("UPDATE run_signals SET taken_by = $2 WHERE id = $1",
                   {rs[0][0].as_text(), task_id});
  return rs[0][1].as_text();
}

void Waits::keep_signal(std::string_view run_id, std::string_view name, std::string_view payload,
                        Micros at) {
  w_.any().execute(
      "INSERT INTO run_signals (id, run_id, name, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
      {new_uuid_v7(), run_id, name, payload, at});
}

}  // namespace devcycle::internal
