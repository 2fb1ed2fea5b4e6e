#include "workflow/store/task_table.h"

#include <algorithm>

namespace devcycle::internal {

void TaskTable::insert_task(const TaskRow& row) { insert_tasks({&row, 1}); }

void TaskTable::insert_tasks(std::span<const TaskRow> rows) {
  for (const auto& r : rows) prefetched_.erase(r.task.run_id);
  w_.insert_tasks(rows);
}

void TaskTable::update_task(const TaskRow& row) {
  if (auto it = prefetched_.find(row.task.run_id); it != prefetched_.end()) {
    auto& rows = it->second.rows;
    auto same = std::find_if(rows.begin(), rows.end(),
                             [&](const TaskRow& r) { return r.task.id == row.task.id; });
    if (same != rows.end()) {
      *same = row;
    } else if (it->second.whole || it->second.keys.contains(row.task.key)) {
      prefetched_.erase(it);  // a row it should hold: trust it no more
    }
  }
  w_.update_task(row);
}

std::optional<TaskRow> TaskTable::find_task(std::string_view id) {
  auto found = select_tasks(w_.any(), "WHERE id = $1", {id});
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::vector<TaskRow> TaskTable::tasks_of(std::string_view run_id) {
  // Sorted here: ten rows sort faster in C++ than through SQLite's sorter.
  auto rows = cached(run_id, nullptr);
  if (!rows) rows = select_tasks(w_.any(), "WHERE run_id = $1", {run_id});
  std::sort(rows->begin(), rows->end(),
            [](const TaskRow& a, const TaskRow& b) { return a.task.id < b.task.id; });
  return std::move(*rows);
}

std::vector<TaskRow> TaskTable::tasks_by_keys(std::string_view run_id,
                                              const std::vector<std::string>& keys) {
  if (keys.empty()) return {};
  if (auto rows = cached(run_id, &keys)) {
    std::sort(rows->begin(), rows->end(),
              [](const TaskRow& a, const TaskRow& b) { return a.task.id < b.task.id; });
    return std::move(*rows);
  }
  if (keys.size() == 1)
    return select_tasks(w_.any(), "WHERE run_id = $1 AND task_key = $2", {run_id, keys[0]});
  std::string where = "WHERE run_id = $1 AND task_key IN (";
  std::vector<Value> params{Value(run_id)};
  for (std::size_t i = 0; i < keys.size(); ++i) {
    where += (i ? ", $" : "$") + std::to_string(i + 2);
    params.emplace_back(keys[i]);
  }
  where += ")";
  auto rows = select_tasks(w_.any(), where, params);
  std::sort(rows.begin(), rows.end(),
            [](const TaskRow& a, const TaskRow& b) { return a.task.id < b.task.id; });
  return rows;
}

bool TaskTable::has_open_elements(std::string_view run_id, std::string_view definition_id) {
  // Elements are keyed "<definition>[<index>]": a range of the (run_id,
  // task_key) index, with no index of its own to maintain on every change.
  // Searched from the end, because elements finish roughly in the order they
  // were made ready: the last keys are open until near the end, so this
  // stops at the first row it looks at instead of counting the group.
  const std::string from = std::string(definition_id) + "[";
  const std::string to = std::string(definition_id) + "\\";  // the character after '['
  return !w_.any()
              .query(
                  "SELECT 1 FROM tasks WHERE run_id = $1 AND task_key > $2 AND task_key < $3 AND "
                  "status IN ('pending', 'ready', 'running') ORDER BY task_key DESC LIMIT 1",
                  {run_id, from, to})
              .empty();
}

void TaskTable::prefetch(const std::vector<Want>& wants) {
  if (!w_.postgres() || wants.empty()) return;
  // One entry per run; a run wanted whole once is read whole.
  std::unordered_map<std::string_view, const Want*> whole;
  std::unordered_map<std::string_view, std::unordered_set<std::string>> keyed;
  for (const auto& w : wants) {
    if (prefetched_.contains(w.run_id)) continue;
    if (w.keys.empty()) {
      whole.emplace(w.run_id, &w);
    } else {
      keyed[w.run_id].insert(w.keys.begin(), w.keys.end());
    }
  }
  PgArray whole_ids, pair_runs, pair_keys;
  for (const auto& [run, w] : whole) {
    whole_ids.add(run);
    prefetched_[std::string(run)].whole = true;
  }
  for (auto& [run, keys] : keyed) {
    if (whole.contains(run)) continue;
    for (const auto& k : keys) {
      pair_runs.add(run);
      pair_keys.add(k);
    }
    prefetched_[std::string(run)].keys = std::move(keys);
  }
  const std::string columns = "SELECT " + std::string(kTaskColumns) + " FROM tasks ";
  for (const auto& r : w_.any().query(
           columns + "WHERE run_id = ANY($1::text[]) UNION ALL " + columns +
               "WHERE (run_id, task_key) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
           {whole_ids.str(), pair_runs.str(), pair_keys.str()})) {
    auto row = task_from(r);
    prefetched_[row.task.run_id].rows.push_back(std::move(row));
  }
}

std::optional<std::vector<TaskRow>> TaskTable::cached(std::string_view run_id,
                                                      const std::vector<std::string>* keys) const {
  const auto it = prefetched_.find(std::string(run_id));
  if (it == prefetched_.end()) return std::nullopt;
  const auto& p = it->second;
  if (!keys) {
    if (!p.whole) return std::nullopt;
    return p.rows;
  }
  if (!p.whole && !std::all_of(keys->begin(), keys->end(),
                               [&](const std::string& k) { return p.keys.contains(k); }))
    return std::nullopt;
  std::vector<TaskRow> out;
  for (const auto& r : p.rows) {
    if (std::find(keys->begin(), keys->end(), r.task.key) != keys->end()) out.push_back(r);
  }
  return out;
}

bool TaskTable::task_exists(std::string_view id) {
  return !w_.any().query("SELECT 1 FROM tasks WHERE id = $1", {id}).empty();
}

void TaskTable::delete_task(std::string_view id) {
  prefetched_.clear();  // rows changed by id: their runs are not known here
  w_.any().execute("DELETE FROM tasks WHERE id = $1", {id});
}

void TaskTable::delete_of_run(std::string_view run_id) {
  prefetched_.erase(std::string(run_id));
  w_.any().execute("DELETE FROM tasks WHERE run_id = $1", {run_id});
}

}  // namespace devcycle::internal
