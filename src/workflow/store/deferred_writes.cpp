#include "workflow/store/deferred_writes.h"

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_map>

namespace devcycle::internal {

void DeferredWrites::insert_run(const Run& r, const std::string& workflow_id) {
  if (on_) {
    pending_runs_.emplace_back(r, workflow_id);
    return;
  }
  const std::pair<Run, std::string> one(r, workflow_id);
  write_runs({&one, 1});
}

void DeferredWrites::insert_tasks(std::span<const TaskRow> rows) {
  if (on_) {
    pending_new_tasks_.insert(pending_new_tasks_.end(), rows.begin(), rows.end());
    return;
  }
  write_tasks(rows);
}

void DeferredWrites::update_task(const TaskRow& row) {
  if (on_) {
    pending_.push_back({row, std::nullopt});
    return;
  }
  const auto& t = row.task;
  t_.execute(
      "UPDATE tasks SET status = $2, input = $3, output = $4, error = $5, attempt = $6, "
      "max_attempts = $7, "
      "agent_id = $8, lease_expires_at = $9, ready_at = $10, available_at = $11, started_at = $12, "
      "finished_at = $13, close_deadline = $14, start_deadline = $15, lease_owner = $16, "
      "child_run_id = $17 WHERE id = $1",
      {t.id, to_string(t.status), null_if_empty(t.input), null_if_empty(t.output),
       null_if_empty(t.error), t.attempt, t.max_attempts, null_if_empty(t.agent_id),
       Value(t.lease_expires_at), Value(t.ready_at), Value(t.available_at), Value(t.started_at),
       Value(t.finished_at), Value(row.close_deadline), Value(row.start_deadline),
       null_if_empty(row.lease_owner), null_if_empty(t.child_run_id)});
}

void DeferredWrites::flush() {
  flush_runs();
  if (!pending_new_tasks_.empty()) {
    const auto rows = std::move(pending_new_tasks_);
    pending_new_tasks_.clear();
    write_tasks(rows);
  }
  flush_task_updates();
}

void DeferredWrites::flush_runs() {
  if (!pending_runs_.empty()) {
    const auto runs = std::move(pending_runs_);
    pending_runs_.clear();
    write_runs(runs);
  }
  if (pending_finishes_.empty()) return;
  // A run finished twice is written as it ended up.
  std::vector<const Run*> finishes;
  {
    std::unordered_map<std::string_view, std::size_t> at;
    for (const auto& r : pending_finishes_) {
      auto [it, fresh] = at.try_emplace(r.id, finishes.size());
      if (fresh) {
        finishes.push_back(&r);
      } else {
        finishes[it->second] = &r;
      }
    }
  }
  PgArray id, status, output, error, finished_at;
  for (const auto* f : finishes) {
    const Run& r = *f;
    id.add(r.id);
    status.add(to_string(r.status));
    output.add_or_null(r.output);
    error.add_or_null(r.error);
    finished_at.add(r.finished_at);
  }
  t_.execute(
      "UPDATE workflow_runs SET status = v.status, output = v.output, error = v.error, "
      "finished_at = v.finished_at, updated_at = v.finished_at FROM unnest($1::text[], "
      "$2::text[], $3::text[], $4::text[], $5::bigint[]) AS v (id, status, output, error, "
      "finished_at) WHERE workflow_runs.id = v.id",
      {id.str(), status.str(), output.str(), error.str(), finished_at.str()});
  pending_finishes_.clear();
}

void DeferredWrites::flush_task_updates() {
  if (pending_.empty()) return;
  // A row updated twice is written as it ended up.
  std::vector<const Pending*> rows;
  {
    std::unordered_map<std::string_view, std::size_t> at;
    for (const auto& r : pending_) {
      auto [it, fresh] = at.try_emplace(r.row.task.id, rows.size());
      if (fresh) {
        rows.push_back(&r);
      } else {
        rows[it->second] = &r;
      }
    }
  }
  TaskArrays arrays;
  for (const auto* p : rows) arrays.add(p->row, p->updated_at);
  t_.execute(
      "UPDATE tasks SET status = v.status, input = v.input, output = v.output, error = v.error, "
      "attempt = v.attempt, max_attempts = v.max_attempts, agent_id = v.agent_id, "
      "lease_expires_at = v.lease_expires_at, ready_at = v.ready_at, available_at = "
      "v.available_at, started_at = v.started_at, finished_at = v.finished_at, close_deadline = "
      "v.close_deadline, start_deadline = v.start_deadline, lease_owner = v.lease_owner, "
      "child_run_id = v.child_run_id, updated_at = COALESCE(v.updated_at, tasks.updated_at) "
      "FROM " +
          TaskArrays::unnest() + " WHERE tasks.id = v.id",
      arrays.params());
  pending_.clear();
}

void DeferredWrites::write_runs(std::span<const std::pair<Run, std::string>> runs) {
  if (runs.empty()) return;
  const std::string insert =
      "INSERT INTO workflow_runs (" + std::string(kRunColumns) + ", workflow_id, updated_at) ";
  if (!postgres()) {
    for (const auto& [r, workflow_id] : runs) {
      t_.execute(
          insert +
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
              "$17, $18, $19)",
          {r.id, r.workflow, r.workflow_version, r.owner, to_string(r.status), r.input,
           null_if_empty(r.output), null_if_empty(r.error), null_if_empty(r.idempotency_key),
           nlohmann::json(r.labels).dump(), r.created_at, Value(r.started_at), Value(r.finished_at),
           Value(r.deadline_at), null_if_empty(r.parent_run_id), null_if_empty(r.parent_task_id),
           r.concurrency_key ? Value(*r.concurrency_key) : Value(), workflow_id, r.created_at});
    }
    return;
  }
  // One statement whatever the number of runs.
  PgArray id, workflow, version, owner, status, input, output, error, idempotency_key, labels,
      created_at, started_at, finished_at, deadline_at, parent_run_id, parent_task_id,
      concurrency_key, workflow_ids;
  for (const auto& [r, workflow_id] : runs) {
    id.add(r.id);
    workflow.add(r.workflow);
    version.add(static_cast<std::int64_t>(r.workflow_version));
    owner.add(r.owner);
    status.add(to_string(r.status));
    input.add(r.input);
    output.add_or_null(r.output);
    error.add_or_null(r.error);
    idempotency_key.add_or_null(r.idempotency_key);
    labels.add(nlohmann::json(r.labels).dump());
    created_at.add(static_cast<std::int64_t>(r.created_at));
    started_at.add(r.started_at);
    finished_at.add(r.finished_at);
    deadline_at.add(r.deadline_at);
    parent_run_id.add_or_null(r.parent_run_id);
    parent_task_id.add_or_null(r.parent_task_id);
    concurrency_key.add_optional(r.concurrency_key);  // "" is a key of its own
    workflow_ids.add(workflow_id);
  }
  t_.execute(
      insert +
          "SELECT v.*, v.created_at FROM unnest($1::text[], $2::text[], $3::bigint[], "
          "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], "
          "$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::text[], $16::text[], "
          "$17::text[], $18::text[]) AS v (id, workflow_name, workflow_version, owner, status, "
          "input, output, error, idempotency_key, labels, created_at, started_at, finished_at, "
          "deadline_at, parent_run_id, parent_task_id, concurrency_key, workflow_id)",
      {id.str(), workflow.str(), version.str(), owner.str(), status.str(), input.str(),
       output.str(), error.str(), idempotency_key.str(), labels.str(), created_at.str(),
       started_at.str(), finished_at.str(), deadline_at.str(), parent_run_id.str(),
       parent_task_id.str(), concurrency_key.str(), workflow_ids.str()});
}

void DeferredWrites::write_tasks(std::span<const TaskRow> rows) {
  if (rows.empty()) return;
  if (postgres()) {
    TaskArrays arrays;
    for (const auto& row : rows) arrays.add(row, row.created_at);
    t_.execute("INSERT INTO tasks (" + std::string(kTaskColumns) +
                   ", created_at, updated_at) SELECT v.id, v.run_id, v.task_key, v.definition_id, "
                   "v.item_index, v.status, v.priority, v.input, v.output, v.error, v.attempt, "
                   "v.max_attempts, v.agent_id, v.lease_expires_at, v.ready_at, v.available_at, "
                   "v.started_at, v.finished_at, v.item, v.close_deadline, v.start_deadline, "
                   "v.lease_owner, v.child_run_id, v.created_at, v.updated_at FROM " +
                   TaskArrays::unnest(),
               arrays.params());
    return;
  }
  // Multi-row INSERTs: one statement per 32 rows (24 parameters each).
  constexpr std::size_t kPerStatement = 32;
  constexpr int kParams = 24;
  std::vector<Value> params;
  for (std::size_t first = 0; first < rows.size(); first += kPerStatement) {
    const auto chunk = rows.subspan(first, std::min(kPerStatement, rows.size() - first));
    std::string sql =
        "INSERT INTO tasks (" + std::string(kTaskColumns) + ", created_at, updated_at) VALUES ";
    params.clear();
    params.reserve(chunk.size() * kParams);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      const int base = static_cast<int>(i) * kParams;
      sql += i ? ", (" : "(";
      for (int k = 1; k <= kParams; ++k) sql += "$" + std::to_string(base + k) + ", ";
      sql += "$" + std::to_string(base + kParams) + ")";  // updated_at = created_at
      const auto& row = chunk[i];
      const auto& t = row.task;
      params.insert(params.end(), {t.id,
                                   t.run_id,
                                   t.key,
                                   t.definition_id,
                                   Value(t.index),
                                   to_string(t.status),
                                   t.priority,
                                   null_if_empty(t.input),
                                   null_if_empty(t.output),
                                   null_if_empty(t.error),
                                   t.attempt,
                                   t.max_attempts,
                                   null_if_empty(t.agent_id),
                                   Value(t.lease_expires_at),
                                   Value(t.ready_at),
                                   Value(t.available_at),
                                   Value(t.started_at),
                                   Value(t.finished_at),
                                   null_if_empty(row.item),
                                   Value(row.close_deadline),
                                   Value(row.start_deadline),
                                   null_if_empty(row.lease_owner),
                                   null_if_empty(t.child_run_id),
                                   row.created_at});
    }
    t_.execute(sql, params);
  }
}

}  // namespace devcycle::internal
