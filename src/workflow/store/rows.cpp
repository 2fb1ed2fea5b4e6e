#include "workflow/store/rows.h"

#include <map>
#include <nlohmann/json.hpp>
#include <utility>

namespace devcycle::internal {

const std::string& qualified_task_columns() {
  static const std::string out = [] {
    std::string q;
    std::string_view rest = kTaskColumns;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      auto name = rest.substr(0, comma);
      while (name.starts_with(' ')) name.remove_prefix(1);
      q += (q.empty() ? "tasks." : ", tasks.") + std::string(name);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
    return q;
  }();
  return out;
}

void TaskArrays::add(const TaskRow& row, std::optional<Micros> updated_at) {
  const auto& t = row.task;
  auto* c = columns_.data();
  c[0].add(t.id);
  c[1].add(t.run_id);
  c[2].add(t.key);
  c[3].add(t.definition_id);
  c[4].add(t.index ? std::optional<Micros>(*t.index) : std::nullopt);
  c[5].add(to_string(t.status));
  c[6].add(static_cast<std::int64_t>(t.priority));
  c[7].add_or_null(t.input);
  c[8].add_or_null(t.output);
  c[9].add_or_null(t.error);
  c[10].add(static_cast<std::int64_t>(t.attempt));
  c[11].add(static_cast<std::int64_t>(t.max_attempts));
  c[12].add_or_null(t.agent_id);
  c[13].add(t.lease_expires_at);
  c[14].add(t.ready_at);
  c[15].add(t.available_at);
  c[16].add(t.started_at);
  c[17].add(t.finished_at);
  c[18].add_or_null(row.item);
  c[19].add(row.close_deadline);
  c[20].add(row.start_deadline);
  c[21].add_or_null(row.lease_owner);
  c[22].add_or_null(t.child_run_id);
  c[23].add(static_cast<std::int64_t>(row.created_at));
  c[24].add(updated_at);
}

std::vector<Value> TaskArrays::params() const {
  std::vector<Value> out;
  for (const auto& c : columns_) out.emplace_back(c.str());
  return out;
}

const std::string& TaskArrays::unnest() {
  static const std::string sql = [] {
    // Column names in add()'s order, and whether each is a bigint.
    constexpr std::pair<const char*, bool> kColumns[] = {{"id", false},
                                                         {"run_id", false},
                                                         {"task_key", false},
                                                         {"definition_id", false},
                                                         {"item_index", true},
                                                         {"status", false},
                                                         {"priority", true},
                                                         {"input", false},
                                                         {"output", false},
                                                         {"error", false},
                                                         {"attempt", true},
                                                         {"max_attempts", true},
                                                         {"agent_id", false},
                                                         {"lease_expires_at", true},
                                                         {"ready_at", true},
                                                         {"available_at", true},
                                                         {"started_at", true},
                                                         {"finished_at", true},
                                                         {"item", false},
                                                         {"close_deadline", true},
                                                         {"start_deadline", true},
                                                         {"lease_owner", false},
                                                         {"child_run_id", false},
                                                         {"created_at", true},
                                                         {"updated_at", true}};
    static_assert(std::size(kColumns) == kCount);
    std::string types, names;
    for (std::size_t i = 0; i < kCount; ++i) {
      types += (i ? ", $" : "$") + std::to_string(i + 1) +
               (kColumns[i].second ? "::bigint[]" : "::text[]");
      names += (i ? ", " : "") + std::string(kColumns[i].first);
    }
    return "unnest(" + types + ") AS v (" + names + ")";
  }();
  return sql;
}

Run run_from(const Row& r) {
  Run run;
  run.id = r[0].as_text();
  run.workflow = r[1].as_text();
  run.workflow_version = static_cast<int>(r[2].as_int());
  run.owner = r[3].as_text();
  run.status = parse_run_status(r[4].as_text(), "workflow_runs.status");
  run.input = r[5].as_text();
  run.output = text_or_empty(r[6]);
  run.error = text_or_empty(r[7]);
  run.idempotency_key = text_or_empty(r[8]);
  if (const auto& labels = r[9].as_text(); labels != "{}")
    run.labels = nlohmann::json::parse(labels).get<std::map<std::string, std::string>>();
  run.created_at = r[10].as_int();
  run.started_at = r[11].as_optional_int();
  run.finished_at = r[12].as_optional_int();
  run.deadline_at = r[13].as_optional_int();
  run.parent_run_id = text_or_empty(r[14]);
  run.parent_task_id = text_or_empty(r[15]);
  if (!r[16].is_null()) run.concurrency_key = r[16].as_text();
  return run;
}

TaskRow task_from(const Row& r) {
  TaskRow row;
  auto& t = row.task;
  t.id = r[0].as_text();
  t.run_id = r[1].as_text();
  t.key = r[2].as_text();
  t.definition_id = r[3].as_text();
  if (!r[4].is_null()) t.index = static_cast<int>(r[4].as_int());
  t.status = parse_task_status(r[5].as_text(), "tasks.status");
  t.priority = static_cast<int>(r[6].as_int());
  t.input = text_or_empty(r[7]);
  t.output = text_or_empty(r[8]);
  t.error = text_or_empty(r[9]);
  t.attempt = static_cast<int>(r[10].as_int());
  t.max_attempts = static_cast<int>(r[11].as_int());
  t.agent_id = text_or_empty(r[12]);
  t.lease_expires_at = r[13].as_optional_int();
  t.ready_at = r[14].as_optional_int();
  t.available_at = r[15].as_optional_int();
  t.started_at = r[16].as_optional_int();
  t.finished_at = r[17].as_optional_int();
  row.item = text_or_empty(r[18]);
  row.close_deadline = r[19].as_optional_int();
  row.start_deadline = r[20].as_optional_int();
  row.lease_owner = text_or_empty(r[21]);
  t.child_run_id = text_or_empty(r[22]);
  return row;
}

std::vector<TaskRow> select_tasks(Txn& t, const std::string& where, std::span<const Value> params) {
  std::vector<TaskRow> out;
  for (const auto& r :
       t.query("SELECT " + std::string(kTaskColumns) + " FROM tasks " + where, params)) {
    out.push_back(task_from(r));
  }
  return out;
}

std::vector<TaskRow> select_tasks(Txn& t, const std::string& where,
                                  std::initializer_list<Value> params) {
  return select_tasks(t, where, std::span<const Value>(params.begin(), params.size()));
}

}  // namespace devcycle::internal
