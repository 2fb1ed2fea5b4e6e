#include "workflow/store/run_table.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "devcycle/common/error.h"

namespace devcycle::internal {

void RunTable::insert_run(const Run& r, const std::string& workflow_id) {
  if (w_.postgres()) {
    // Nobody else sees the row before this transaction commits: as good as locked.
    locked_runs_.emplace(r.id);
    run_info_[r.id] = {r.parent_task_id, r.workflow, r.concurrency_key};
  }
  w_.insert_run(r, workflow_id);
}

std::optional<Run> RunTable::find_run(std::string_view id) {
  auto rs = w_.runs().query(
      "SELECT " + std::string(kRunColumns) + " FROM workflow_runs WHERE id = $1", {id});
  if (rs.empty()) return std::nullopt;
  return run_from(rs[0]);
}

bool RunTable::run_paused(std::string_view id) {
  if (w_.postgres()) {
    lock_run(id);
    return paused_runs_.contains(id);  // read by the lock
  }
  auto rs =
      w_.runs().query("SELECT 1 FROM workflow_runs WHERE id = $1 AND status = 'paused'", {id});
  return !rs.empty();
}

void RunTable::lock_runs(std::vector<std::string> ids) {
  if (!w_.postgres()) return;
  std::erase_if(ids, [&](const std::string& id) { return locked_runs_.contains(id); });
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (ids.empty()) return;
  std::string sql =
      "SELECT id, status, parent_task_id, workflow_name, concurrency_key FROM workflow_runs "
      "WHERE id IN (";
  std::vector<Value> params;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    sql += (i ? ", $" : "$") + std::to_string(i + 1);
    params.emplace_back(ids[i]);
  }
  sql += ") ORDER BY id FOR UPDATE";
  // Locked, a run's status stays as read until this transaction changes it.
  for (const auto& r : w_.runs().query(sql, params)) {
    if (r[1].as_text() == "paused") paused_runs_.insert(r[0].as_text());
    note_run_info(r[0].as_text(), r, 2);
  }
  for (auto& id : ids) locked_runs_.insert(std::move(id));
}

void RunTable::lock_run(std::string_view id) {
  if (!w_.postgres() || locked_runs_.contains(id)) return;
  auto rs = w_.runs().query(
      "SELECT status, parent_task_id, workflow_name, concurrency_key FROM workflow_runs "
      "WHERE id = $1 FOR UPDATE",
      {id});
  locked_runs_.emplace(id);
  if (rs.empty()) return;
  note_run_info(id, rs[0], 1);
  // Locked, a run's status stays as read until this transaction changes it.
  if (rs[0][0].as_text() == "paused") paused_runs_.emplace(id);
}

std::optional<Run> RunTable::find_run_by_key(std::string_view owner, std::string_view key) {
  auto rs = w_.runs().query("SELECT " + std::string(kRunColumns) +
                                " FROM workflow_runs WHERE owner = $1 AND idempotency_key = $2",
                            {owner, key});
  if (rs.empty()) return std::nullopt;
  return run_from(rs[0]);
}

std::string RunTable::workflow_id_of(std::string_view run_id) {
  auto rs = w_.runs().query("SELECT workflow_id FROM workflow_runs WHERE id = $1", {run_id});
  if (rs.empty())
    throw Error(ErrorCode::kNotFound, "run \"" + std::string(run_id) + "\" not found");
  return rs[0][0].as_text();
}

void RunTable::update_run(const Run& r) {
  w_.runs().execute(
      "UPDATE workflow_runs SET status = $2, output = $3, error = $4, started_at = $5, finished_at "
      "= $6, "
      "deadline_at = $7, updated_at = $8 WHERE id = $1",
      {r.id, to_string(r.status), null_if_empty(r.output), null_if_empty(r.error),
       Value(r.started_at), Value(r.finished_at), Value(r.deadline_at),
       r.finished_at.value_or(r.created_at)});
}

RunTable::Finished RunTable::finish_run(const Run& r) {
  finished_here_.emplace(r.id);
  if (w_.on()) {
    // What RETURNING would say is known from the lock: written with the
    // other deferred writes.
    if (auto it = run_info_.find(r.id); it != run_info_.end()) {
      w_.finish_later(r);
      return it->second;
    }
  }
  auto rs = w_.runs().query(
      "UPDATE workflow_runs SET status = $2, output = $3, error = $4, finished_at = $5, "
      "updated_at = $5 WHERE id = $1 RETURNING parent_task_id, workflow_name, concurrency_key",
      {r.id, to_string(r.status), null_if_empty(r.output), null_if_empty(r.error),
       Value(r.finished_at)});
  Finished out;
  if (rs.empty()) return out;
  out.parent_task_id = text_or_empty(rs[0][0]);
  out.workflow = rs[0][1].as_text();
  if (!rs[0][2].is_null()) out.concurrency_key = rs[0][2].as_text();
  return out;
}

void RunTable::note_run_info(std::string_view id, const Row& r, std::size_t first) {
  Finished f;
  f.parent_task_id = text_or_empty(r[first]);
  f.workflow = r[first + 1].as_text();
  if (!r[first + 2].is_null()) f.concurrency_key = r[first + 2].as_text();
  run_info_[std::string(id)] = std::move(f);
}

void RunTable::lock_group(std::string_view workflow, std::string_view key) {
  if (!w_.postgres()) return;
  std::string name = "group\n" + std::string(workflow) + "\n" + std::string(key);
  if (locked_runs_.contains(name)) return;
  w_.any().query("SELECT pg_advisory_xact_lock(hashtext($1))", {name});
  locked_runs_.insert(std::move(name));
}

std::int64_t RunTable::active_in_group(std::string_view workflow, std::string_view key) {
  lock_group(workflow, key);
  return w_.raw()
      .query(
          "SELECT COUNT(*) FROM workflow_runs WHERE workflow_name = $1 AND "
          "concurrency_key = $2 AND status IN ('running', 'paused')",
          {workflow, key})[0][0]
      .as_int();
}

std::int64_t RunTable::active_runs_of(std::string_view owner) {
  return w_.runs()
      .query(
          "SELECT COUNT(*) FROM workflow_runs WHERE status IN ('pending', 'running', 'paused') "
          "AND owner = $1",
          {owner})[0][0]
      .as_int();
}

std::optional<Run> RunTable::first_in_group(std::string_view workflow, std::string_view key,
                                            bool active, std::string_view except) {
  lock_group(workflow, key);
  auto rs = w_.runs().query(
      "SELECT " + std::string(kRunColumns) +
          " FROM workflow_runs WHERE workflow_name = $1 AND concurrency_key = $2 "
          "AND status IN ($3, $4) AND id <> $5 ORDER BY id LIMIT 1",
      {workflow, key, active ? "running" : "pending", active ? "paused" : "pending", except});
  if (rs.empty()) return std::nullopt;
  return run_from(rs[0]);
}

std::vector<Run> RunTable::oldest_active(std::string_view workflow, std::string_view key,
                                         std::int64_t n) {
  std::vector<Run> out;
  for (const auto& r :
       w_.runs().query("SELECT " + std::string(kRunColumns) +
                           " FROM workflow_runs WHERE workflow_name = $1 AND "
                           "concurrency_key = $2 AND status IN ('running', 'paused') "
                           "ORDER BY id LIMIT $3",
                       {workflow, key, n})) {
    out.push_back(run_from(r));
  }
  return out;
}

std::vector<std::string> RunTable::lineage(std::string_view run_id) {
  std::vector<std::string> out{std::string(run_id)};
  while (out.size() <= 64) {
    auto rs =
        w_.runs().query("SELECT parent_run_id FROM workflow_runs WHERE id = $1", {out.back()});
    if (rs.empty() || rs[0][0].is_null()) break;
    out.push_back(rs[0][0].as_text());
  }
  return out;
}

RunTable::RunScan RunTable::list_runs_scanned(const RunFilter& f, int limit) {
  std::string sql = "SELECT " + std::string(kRunColumns) + " FROM workflow_runs WHERE 1 = 1";
  std::vector<Value> params;
  auto param = [&](Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  if (!f.page_token.empty()) sql += " AND id < " + param(f.page_token);
  if (f.status) sql += " AND status = " + param(std::string(to_string(*f.status)));
  if (f.workflow) sql += " AND workflow_name = " + param(*f.workflow);
  if (f.owner) sql += " AND owner = " + param(*f.owner);
  if (f.created_after) sql += " AND created_at >= " + param(*f.created_after);
  if (f.created_before) sql += " AND created_at < " + param(*f.created_before);
  sql += " ORDER BY id DESC LIMIT " + param(limit);
  RunScan out;
  for (const auto& r : w_.runs().query(sql, params)) {
    Run run = run_from(r);
    ++out.scanned;
    out.last_id = run.id;
    bool labels_match = true;
    for (const auto& [k, v] : f.labels) {
      const auto it = run.labels.find(k);
      labels_match = labels_match && it != run.labels.end() && it->second == v;
    }
    if (labels_match) out.matched.push_back(std::move(run));
  }
  return out;
}

std::vector<std::string> RunTable::overdue_runs(Micros now) {
  std::vector<std::string> out;
  for (const auto& r : w_.runs().query("SELECT id FROM workflow_runs WHERE status = 'running' AND "
                                       "deadline_at IS NOT NULL AND deadline_at < $1",
                                       {now})) {
    out.push_back(r[0].as_text());
  }
  return out;
}

std::vector<std::string> RunTable::finished_before(Micros before, int limit) {
  std::vector<std::string> out;
  for (const auto& r : w_.runs().query(
           "SELECT id FROM workflow_runs WHERE status IN ('succeeded', 'failed', 'cancelled', "
           "'timed_out') AND finished_at < $1 ORDER BY finished_at LIMIT " +
               std::to_string(limit),
           {before})) {
    out.push_back(r[0].as_text());
  }
  return out;
}

void RunTable::delete_run(std::string_view run_id) {
  // Its tasks go with it (ON DELETE CASCADE): everything deferred is written first.
  w_.any().execute("DELETE FROM workflow_runs WHERE id = $1", {run_id});
}

}  // namespace devcycle::internal
