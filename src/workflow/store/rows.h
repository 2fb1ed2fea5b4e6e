// Rows of workflow_runs and tasks as the store's tables read and write them:
// the column lists, a row decoded into a Run or a TaskRow, and task rows as
// PostgreSQL arrays for statements over many rows. Internal.
//
// Value types and pure functions, safe from any thread. Decoding throws
// Error{kInvalidArgument} (parse_run_status(), parse_task_status()) on a
// status the code does not know, and what nlohmann::json throws on labels
// that are not a JSON object of strings.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/sql_rows.h"
#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"

namespace devcycle::internal {

// A task row with the columns the engine needs beyond TaskRun.
struct TaskRow {
  TaskRun task;
  std::string item;                      // JSON of the fan-out element, or ""
  std::optional<Micros> close_deadline;  // started_at + start_to_close
  std::optional<Micros> start_deadline;  // ready_at + schedule_to_start
  std::string lease_owner;
  Micros created_at = 0;
};

inline constexpr std::string_view kRunColumns =
    "id, workflow_name, workflow_version, owner, status, input, output, error, idempotency_key, "
    "labels, created_at, started_at, finished_at, deadline_at, parent_run_id, parent_task_id, "
    "concurrency_key";

inline constexpr std::string_view kTaskColumns =
    "id, run_id, task_key, definition_id, item_index, status, priority, input, output, error, "
    "attempt, max_attempts, agent_id, lease_expires_at, ready_at, available_at, started_at, "
    "finished_at, item, close_deadline, start_deadline, lease_owner, child_run_id";

// kTaskColumns as "tasks.id, tasks.run_id, ...", for queries that join.
const std::string& qualified_task_columns();

// A row of kRunColumns.
Run run_from(const Row& r);
// A row of kTaskColumns (further columns are left alone).
TaskRow task_from(const Row& r);

// "SELECT kTaskColumns FROM tasks " + `where`, decoded.
std::vector<TaskRow> select_tasks(Txn& t, const std::string& where, std::span<const Value> params);
std::vector<TaskRow> select_tasks(Txn& t, const std::string& where,
                                  std::initializer_list<Value> params);

// Task rows as PostgreSQL arrays, one per column (kTaskColumns, then
// created_at and updated_at), for one statement whatever the number of rows.
class TaskArrays {
 public:
  // `updated_at` null: the UPDATE leaves the column as it is.
  void add(const TaskRow& row, std::optional<Micros> updated_at);
  std::vector<Value> params() const;
  // "unnest($1::text[], ...) AS v (id, ...)", in the order add() fills.
  static const std::string& unnest();

 private:
  static constexpr std::size_t kCount = 25;
  std::array<PgArray, kCount> columns_;
};

}  // namespace devcycle::internal
