#include "workflow/run_store.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <span>

#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle::internal {
namespace {

constexpr std::string_view kRunColumns =
    "id, workflow_name, workflow_version, owner, status, input, output, error, idempotency_key, "
    "labels, created_at, started_at, finished_at, deadline_at, parent_run_id, parent_task_id, "
    "concurrency_key";

constexpr std::string_view kTaskColumns =
    "id, run_id, task_key, definition_id, item_index, status, priority, input, output, error, "
    "attempt, max_attempts, agent_id, lease_expires_at, ready_at, available_at, started_at, "
    "finished_at, item, close_deadline, start_deadline, lease_owner, child_run_id";

// kTaskColumns as "tasks.id, tasks.run_id, ...", for queries that join.
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

std::string text_or_empty(const Value& v) { return v.is_null() ? std::string() : v.as_text(); }
Value null_if_empty(const std::string& s) { return s.empty() ? Value() : Value(s); }

// A PostgreSQL array literal built element by element, for statements whose
// text stays the same whatever the number of rows (one prepared statement).
class PgArray {
 public:
  void add(std::string_view text) {
    next();
    out_ += '"';
    for (const char c : text) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
  }
  // "" as NULL, as null_if_empty() writes it.
  void add_or_null(const std::string& text) {
    if (text.empty()) {
      next();
      out_ += "NULL";
    } else {
      add(text);
    }
  }
  void add_optional(const std::optional<std::string>& text) {
    if (text) {
      add(std::string_view(*text));
    } else {
      next();
      out_ += "NULL";
    }
  }
  void add(std::int64_t n) {
    next();
    out_ += std::to_string(n);
  }
  void add(std::optional<Micros> n) {
    if (n) {
      add(static_cast<std::int64_t>(*n));
    } else {
      next();
      out_ += "NULL";
    }
  }
  std::string str() const { return "{" + out_ + "}"; }

 private:
  void next() {
    if (!out_.empty()) out_ += ',';
  }
  std::string out_;
};

// Task rows as PostgreSQL arrays, one per column (kTaskColumns, then
// created_at and updated_at), for one statement whatever the number of rows.
class TaskArrays {
 public:
  // `updated_at` null: the UPDATE leaves the column as it is.
  void add(const TaskRow& row, std::optional<Micros> updated_at) {
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
  std::vector<Value> params() const {
    std::vector<Value> out;
    for (const auto& c : columns_) out.emplace_back(c.str());
    return out;
  }
  // "unnest($1::text[], ...) AS v (id, ...)", in the order add() fills.
  static const std::string& unnest() {
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

 private:
  static constexpr std::size_t kCount = 25;
  std::array<PgArray, kCount> columns_;
};

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

std::vector<TaskRow> tasks(Txn& t, const std::string& where, std::span<const Value> params) {
  std::vector<TaskRow> out;
  for (const auto& r :
       t.query("SELECT " + std::string(kTaskColumns) + " FROM tasks " + where, params)) {
    out.push_back(task_from(r));
  }
  return out;
}

std::vector<TaskRow> tasks(Txn& t, const std::string& where, std::initializer_list<Value> params) {
  return tasks(t, where, std::span<const Value>(params.begin(), params.size()));
}

}  // namespace

std::vector<Migration> RunStore::migrations() {
  return {{"engine", 1, "runs, tasks, attempts, task logs",
           R"sql(
CREATE TABLE workflow_runs (
  id TEXT PRIMARY KEY,
  workflow_id TEXT NOT NULL REFERENCES workflows (id),
  workflow_name TEXT NOT NULL,
  workflow_version BIGINT NOT NULL,
  owner TEXT NOT NULL,
  status TEXT NOT NULL,
  input TEXT NOT NULL,
  output TEXT,
  error TEXT,
  idempotency_key TEXT,
  labels TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  deadline_at BIGINT,
  updated_at BIGINT NOT NULL,
  UNIQUE (owner, idempotency_key)
);
CREATE INDEX workflow_runs_status ON workflow_runs (status, deadline_at);
CREATE INDEX workflow_runs_workflow ON workflow_runs (workflow_name, id);
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  task_key TEXT NOT NULL,
  definition_id TEXT NOT NULL,
  item_index BIGINT,
  item TEXT,
  status TEXT NOT NULL,
  priority BIGINT NOT NULL,
  input TEXT,
  output TEXT,
  error TEXT,
  attempt BIGINT NOT NULL,
  max_attempts BIGINT NOT NULL,
  agent_id TEXT,
  lease_owner TEXT,
  lease_expires_at BIGINT,
  close_deadline BIGINT,
  start_deadline BIGINT,
  ready_at BIGINT,
  available_at BIGINT,
  started_at BIGINT,
  finished_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (run_id, task_key)
);
CREATE INDEX tasks_claimable ON tasks (status, available_at);
CREATE INDEX tasks_leases ON tasks (status, lease_expires_at);
CREATE TABLE task_attempts (
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  attempt BIGINT NOT NULL,
  agent_id TEXT NOT NULL,
  lease_owner TEXT NOT NULL,
  status TEXT NOT NULL,
  error TEXT,
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  PRIMARY KEY (task_id, attempt)
);
CREATE TABLE task_logs (
  id TEXT PRIMARY KEY,
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  attempt BIGINT NOT NULL,
  level TEXT NOT NULL,
  message TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX task_logs_task ON task_logs (task_id, id);
)sql",
           ""},
          // Only ready and running tasks need finding by state; partial
          // indexes keep finished tasks out of them, and a state change
          // touches only the index of the state it leaves or enters.
          {"engine", 2, "partial indexes for ready and running tasks",
           R"sql(
DROP INDEX tasks_claimable;
DROP INDEX tasks_leases;
CREATE INDEX tasks_ready ON tasks (available_at) WHERE status = 'ready';
CREATE INDEX tasks_running ON tasks (lease_expires_at) WHERE status = 'running';
)sql",
           ""},
          // An attempt is written once, when it ends; while it runs the task
          // row describes it. Rows of attempts running at the upgrade go:
          // their end writes them again.
          {"engine", 3, "attempts recorded when they end",
           "DELETE FROM task_attempts WHERE status = 'running';", ""},
          {"engine", 4, "artifacts",
           "CREATE TABLE artifacts ("
           " id TEXT PRIMARY KEY, run_id TEXT NOT NULL, task_id TEXT NOT NULL,"
           " task_key TEXT NOT NULL, attempt INTEGER NOT NULL, name TEXT NOT NULL,"
           " digest TEXT NOT NULL, size BIGINT NOT NULL, created_at BIGINT NOT NULL);"
           "CREATE INDEX artifacts_run ON artifacts (run_id, id);"
           "CREATE INDEX artifacts_digest ON artifacts (digest)",
           ""},
          // Timers and signal waits: tasks in `waiting`, and the signals sent
          // before a task waited for them.
          {"engine", 5, "timers and signals",
           "CREATE INDEX tasks_waiting ON tasks (available_at) WHERE status = 'waiting';"
           "CREATE TABLE run_signals ("
           " id TEXT PRIMARY KEY, run_id TEXT NOT NULL, name TEXT NOT NULL, payload TEXT NOT NULL,"
           " created_at BIGINT NOT NULL, taken_by TEXT);"
           "CREATE INDEX run_signals_open ON run_signals (run_id, name, id) WHERE taken_by IS NULL",
           ""},
          // Child runs know the task that waits for them (and the task its
          // child); runs of a workflow with a concurrency limit carry their
          // group's key.
          {"engine", 6, "child workflows and concurrency limits",
           "ALTER TABLE workflow_runs ADD COLUMN parent_run_id TEXT;"
           "ALTER TABLE workflow_runs ADD COLUMN parent_task_id TEXT;"
           "ALTER TABLE workflow_runs ADD COLUMN concurrency_key TEXT;"
           "ALTER TABLE tasks ADD COLUMN child_run_id TEXT;"
           "CREATE INDEX workflow_runs_group ON workflow_runs (workflow_name, concurrency_key, "
           "status, id) WHERE concurrency_key IS NOT NULL",
           ""},
          // PostgreSQL: a task row is rewritten several times in its life, and
          // the batched statements are planned well only on current
          // statistics; vacuum and analyze the queue tables after 2% of their
          // rows changed rather than the default 20% and 10% (decision 0023).
          {"engine", 7, "autovacuum that keeps up with the queue tables",
           "SELECT 1",  // SQLite has nothing of the kind
           "ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0.02, "
           "autovacuum_analyze_scale_factor = 0.02);"
           "ALTER TABLE workflow_runs SET (autovacuum_vacuum_scale_factor = 0.02, "
           "autovacuum_analyze_scale_factor = 0.02);"
           "ALTER TABLE task_attempts SET (autovacuum_analyze_scale_factor = 0.02)"}};
}

void RunStore::insert_run(const Run& r, const std::string& workflow_id) {
  if (postgres()) {
    // Nobody else sees the row before this transaction commits: as good as locked.
    locked_runs_.emplace(r.id);
    run_info_[r.id] = {r.parent_task_id, r.workflow, r.concurrency_key};
  }
  if (defer_) {
    pending_runs_.emplace_back(r, workflow_id);
    return;
  }
  const std::pair<Run, std::string> one(r, workflow_id);
  write_runs({&one, 1});
}

void RunStore::write_runs(std::span<const std::pair<Run, std::string>> runs) {
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

std::optional<Run> RunStore::find_run(std::string_view id) {
  auto rs = runs_txn().query(
      "SELECT " + std::string(kRunColumns) + " FROM workflow_runs WHERE id = $1", {id});
  if (rs.empty()) return std::nullopt;
  return run_from(rs[0]);
}

void RunStore::insert_artifact(const Artifact& a) {
  tasks_txn().execute(
      "INSERT INTO artifacts (id, run_id, task_id, task_key, attempt, name, digest, size, "
      "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
      {a.id, a.run_id, a.task_id, a.task_key, a.attempt, a.name, a.digest,
       static_cast<std::int64_t>(a.size), a.created_at});
}

std::vector<Artifact> RunStore::artifacts_of(std::string_view run_id) {
  std::vector<Artifact> out;
  for (const auto& r :
       tasks_txn().query("SELECT id, run_id, task_id, task_key, attempt, name, digest, size, "
                         "created_at FROM artifacts WHERE run_id = $1 ORDER BY id",
                         {run_id})) {
    out.push_back({r[0].as_text(), r[1].as_text(), r[2].as_text(), r[3].as_text(),
                   static_cast<int>(r[4].as_int()), r[5].as_text(), r[6].as_text(),
                   static_cast<std::uint64_t>(r[7].as_int()), r[8].as_int()});
  }
  return out;
}

std::vector<TaskRow> RunStore::due_waits(Micros now) {
  return tasks(tasks_txn(),
               "WHERE status = 'waiting' AND ((available_at IS NOT NULL AND available_at <= $1) "
               "OR (close_deadline IS NOT NULL AND close_deadline <= $1))",
               {now});
}

std::optional<std::string> RunStore::take_signal(std::string_view run_id, std::string_view name,
                                                 std::string_view task_id) {
  auto rs = tasks_txn().query(
      "SELECT id, payload FROM run_signals WHERE run_id = $1 AND name = $2 AND taken_by IS NULL "
      "ORDER BY id LIMIT 1",
      {run_id, name});
  if (rs.empty()) return std::nullopt;
  tasks_txn().execute("UPDATE run_signals SET taken_by = $2 WHERE id = $1",
                      {rs[0][0].as_text(), task_id});
  return rs[0][1].as_text();
}

void RunStore::keep_signal(std::string_view run_id, std::string_view name, std::string_view payload,
                           Micros at) {
  tasks_txn().execute(
      "INSERT INTO run_signals (id, run_id, name, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
      {new_uuid_v7(), run_id, name, payload, at});
}

bool RunStore::run_paused(std::string_view id) {
  if (t_.dialect() == Dialect::kPostgres) {
    lock_run(id);
    return paused_runs_.contains(id);  // read by the lock
  }
  auto rs =
      runs_txn().query("SELECT 1 FROM workflow_runs WHERE id = $1 AND status = 'paused'", {id});
  return !rs.empty();
}

void RunStore::lock_runs(std::vector<std::string> ids) {
  if (t_.dialect() != Dialect::kPostgres) return;
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
  for (const auto& r : runs_txn().query(sql, params)) {
    if (r[1].as_text() == "paused") paused_runs_.insert(r[0].as_text());
    note_run_info(r[0].as_text(), r, 2);
  }
  for (auto& id : ids) locked_runs_.insert(std::move(id));
}

void RunStore::lock_run(std::string_view id) {
  if (t_.dialect() != Dialect::kPostgres || locked_runs_.contains(id)) return;
  auto rs = runs_txn().query(
      "SELECT status, parent_task_id, workflow_name, concurrency_key FROM workflow_runs "
      "WHERE id = $1 FOR UPDATE",
      {id});
  locked_runs_.emplace(id);
  if (rs.empty()) return;
  note_run_info(id, rs[0], 1);
  // Locked, a run's status stays as read until this transaction changes it.
  if (rs[0][0].as_text() == "paused") paused_runs_.emplace(id);
}

std::optional<Run> RunStore::find_run_by_key(std::string_view owner, std::string_view key) {
  auto rs = runs_txn().query("SELECT " + std::string(kRunColumns) +
                                 " FROM workflow_runs WHERE owner = $1 AND idempotency_key = $2",
                             {owner, key});
  if (rs.empty()) return std::nullopt;
  return run_from(rs[0]);
}

std::string RunStore::workflow_id_of(std::string_view run_id) {
  auto rs = runs_txn().query("SELECT workflow_id FROM workflow_runs WHERE id = $1", {run_id});
  if (rs.empty())
    throw Error(ErrorCode::kNotFound, "run \"" + std::string(run_id) + "\" not found");
  return rs[0][0].as_text();
}

void RunStore::update_run(const Run& r) {
  runs_txn().execute(
      "UPDATE workflow_runs SET status = $2, output = $3, error = $4, started_at = $5, finished_at "
      "= $6, "
      "deadline_at = $7, updated_at = $8 WHERE id = $1",
      {r.id, to_string(r.status), null_if_empty(r.output), null_if_empty(r.error),
       Value(r.started_at), Value(r.finished_at), Value(r.deadline_at),
       r.finished_at.value_or(r.created_at)});
}

RunStore::Finished RunStore::finish_run(const Run& r) {
  finished_here_.emplace(r.id);
  if (defer_) {
    // What RETURNING would say is known from the lock: written with the
    // other deferred writes.
    if (auto it = run_info_.find(r.id); it != run_info_.end()) {
      pending_finishes_.push_back(r);
      return it->second;
    }
  }
  auto rs = runs_txn().query(
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

void RunStore::note_run_info(std::string_view id, const Row& r, std::size_t first) {
  Finished f;
  f.parent_task_id = text_or_empty(r[first]);
  f.workflow = r[first + 1].as_text();
  if (!r[first + 2].is_null()) f.concurrency_key = r[first + 2].as_text();
  run_info_[std::string(id)] = std::move(f);
}

void RunStore::lock_group(std::string_view workflow, std::string_view key) {
  if (t_.dialect() != Dialect::kPostgres) return;
  std::string name = "group\n" + std::string(workflow) + "\n" + std::string(key);
  if (locked_runs_.contains(name)) return;
  tasks_txn().query("SELECT pg_advisory_xact_lock(hashtext($1))", {name});
  locked_runs_.insert(std::move(name));
}

std::int64_t RunStore::active_in_group(std::string_view workflow, std::string_view key) {
  lock_group(workflow, key);
  return t_
      .query(
          "SELECT COUNT(*) FROM workflow_runs WHERE workflow_name = $1 AND "
          "concurrency_key = $2 AND status IN ('running', 'paused')",
          {workflow, key})[0][0]
      .as_int();
}

std::int64_t RunStore::active_runs_of(std::string_view owner) {
  return runs_txn()
      .query(
          "SELECT COUNT(*) FROM workflow_runs WHERE status IN ('pending', 'running', 'paused') "
          "AND owner = $1",
          {owner})[0][0]
      .as_int();
}

std::optional<Run> RunStore::first_in_group(std::string_view workflow, std::string_view key,
                                            bool active, std::string_view except) {
  lock_group(workflow, key);
  auto rs = runs_txn().query(
      "SELECT " + std::string(kRunColumns) +
          " FROM workflow_runs WHERE workflow_name = $1 AND concurrency_key = $2 "
          "AND status IN ($3, $4) AND id <> $5 ORDER BY id LIMIT 1",
      {workflow, key, active ? "running" : "pending", active ? "paused" : "pending", except});
  if (rs.empty()) return std::nullopt;
  return run_from(rs[0]);
}

std::vector<Run> RunStore::oldest_active(std::string_view workflow, std::string_view key,
                                         std::int64_t n) {
  std::vector<Run> out;
  for (const auto& r :
       runs_txn().query("SELECT " + std::string(kRunColumns) +
                            " FROM workflow_runs WHERE workflow_name = $1 AND "
                            "concurrency_key = $2 AND status IN ('running', 'paused') "
                            "ORDER BY id LIMIT $3",
                        {workflow, key, n})) {
    out.push_back(run_from(r));
  }
  return out;
}

std::vector<std::string> RunStore::lineage(std::string_view run_id) {
  std::vector<std::string> out{std::string(run_id)};
  while (out.size() <= 64) {
    auto rs =
        runs_txn().query("SELECT parent_run_id FROM workflow_runs WHERE id = $1", {out.back()});
    if (rs.empty() || rs[0][0].is_null()) break;
    out.push_back(rs[0][0].as_text());
  }
  return out;
}

RunStore::RunScan RunStore::list_runs_scanned(const RunFilter& f, int limit) {
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
  for (const auto& r : runs_txn().query(sql, params)) {
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

std::vector<std::string> RunStore::overdue_runs(Micros now) {
  std::vector<std::string> out;
  for (const auto& r : runs_txn().query("SELECT id FROM workflow_runs WHERE status = 'running' AND "
                                        "deadline_at IS NOT NULL AND deadline_at < $1",
                                        {now})) {
    out.push_back(r[0].as_text());
  }
  return out;
}

void RunStore::insert_task(const TaskRow& row) { insert_tasks({&row, 1}); }

void RunStore::insert_tasks(std::span<const TaskRow> rows) {
  for (const auto& r : rows) prefetched_.erase(r.task.run_id);
  if (defer_) {
    pending_new_tasks_.insert(pending_new_tasks_.end(), rows.begin(), rows.end());
    return;
  }
  write_tasks(rows);
}

void RunStore::write_tasks(std::span<const TaskRow> rows) {
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

void RunStore::update_task(const TaskRow& row) {
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
  if (defer_) {
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

void RunStore::flush() {
  flush_runs();
  if (!pending_new_tasks_.empty()) {
    const auto rows = std::move(pending_new_tasks_);
    pending_new_tasks_.clear();
    write_tasks(rows);
  }
  flush_task_updates();
}

void RunStore::flush_runs() {
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

void RunStore::flush_task_updates() {
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

void RunStore::prefetch(const std::vector<Want>& wants) {
  if (!postgres() || wants.empty()) return;
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
  for (const auto& r : tasks_txn().query(
           columns + "WHERE run_id = ANY($1::text[]) UNION ALL " + columns +
               "WHERE (run_id, task_key) IN (SELECT * FROM unnest($2::text[], $3::text[]))",
           {whole_ids.str(), pair_runs.str(), pair_keys.str()})) {
    auto row = task_from(r);
    prefetched_[row.task.run_id].rows.push_back(std::move(row));
  }
}

std::optional<std::vector<TaskRow>> RunStore::cached(std::string_view run_id,
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

bool RunStore::has_open_elements(std::string_view run_id, std::string_view definition_id) {
  // Elements are keyed "<definition>[<index>]": a range of the (run_id,
  // task_key) index, with no index of its own to maintain on every change.
  // Searched from the end, because elements finish roughly in the order they
  // were made ready: the last keys are open until near the end, so this
  // stops at the first row it looks at instead of counting the group.
  const std::string from = std::string(definition_id) + "[";
  const std::string to = std::string(definition_id) + "\\";  // the character after '['
  return !tasks_txn()
              .query(
                  "SELECT 1 FROM tasks WHERE run_id = $1 AND task_key > $2 AND task_key < $3 AND "
                  "status IN ('pending', 'ready', 'running') ORDER BY task_key DESC LIMIT 1",
                  {run_id, from, to})
              .empty();
}

bool RunStore::succeed_leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                              Micros now, std::string_view output) {
  prefetched_.clear();  // rows changed by id: their runs are not known here
  return tasks_txn().execute(
             "UPDATE tasks SET status = 'succeeded', output = $5, error = NULL, finished_at = $4, "
             "lease_expires_at = NULL, close_deadline = NULL, updated_at = $4 "
             "WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running' "
             "AND lease_expires_at >= $4",
             {task_id, attempt, lease_owner, now, output}) == 1;
}

std::unordered_set<std::string> RunStore::succeed_leased_many(const std::vector<Success>& successes,
                                                              Micros now) {
  prefetched_.clear();  // rows changed by id: their runs are not known here
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
    for (const auto& r : tasks_txn().query(sql, params)) out.insert(r[0].as_text());
  }
  return out;
}

std::optional<TaskRow> RunStore::find_task(std::string_view id) {
  auto found = tasks(tasks_txn(), "WHERE id = $1", {id});
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::vector<TaskRow> RunStore::tasks_by_keys(std::string_view run_id,
                                             const std::vector<std::string>& keys) {
  if (keys.empty()) return {};
  if (auto rows = cached(run_id, &keys)) {
    std::sort(rows->begin(), rows->end(),
              [](const TaskRow& a, const TaskRow& b) { return a.task.id < b.task.id; });
    return std::move(*rows);
  }
  if (keys.size() == 1)
    return tasks(tasks_txn(), "WHERE run_id = $1 AND task_key = $2", {run_id, keys[0]});
  std::string where = "WHERE run_id = $1 AND task_key IN (";
  std::vector<Value> params{Value(run_id)};
  for (std::size_t i = 0; i < keys.size(); ++i) {
    where += (i ? ", $" : "$") + std::to_string(i + 2);
    params.emplace_back(keys[i]);
  }
  where += ")";
  auto rows = tasks(tasks_txn(), where, params);
  std::sort(rows.begin(), rows.end(),
            [](const TaskRow& a, const TaskRow& b) { return a.task.id < b.task.id; });
  return rows;
}

std::vector<TaskRow> RunStore::tasks_of(std::string_view run_id) {
  // Sorted here: ten rows sort faster in C++ than through SQLite's sorter.
  auto rows = cached(run_id, nullptr);
  if (!rows) rows = tasks(tasks_txn(), "WHERE run_id = $1", {run_id});
  std::sort(rows->begin(), rows->end(),
            [](const TaskRow& a, const TaskRow& b) { return a.task.id < b.task.id; });
  return std::move(*rows);
}

std::vector<TaskRow> RunStore::ready_tasks(Micros now, std::int64_t aging_step_us, int limit) {
  return tasks(tasks_txn(),
               "WHERE status = 'ready' AND available_at <= $1 "
               "ORDER BY priority + ($1 - ready_at) / $2 DESC, ready_at, id LIMIT $3",
               {now, aging_step_us, limit});
}

std::vector<TaskRow> RunStore::claimable(std::span<const std::string> ids) {
  if (ids.empty()) return {};
  std::string where = "WHERE status = 'ready' AND id IN (";
  std::vector<Value> params;
  params.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    where += (i ? ", $" : "$") + std::to_string(i + 1);
    params.emplace_back(ids[i]);
  }
  where += ")";
  if (t_.dialect() == Dialect::kPostgres) where += " FOR UPDATE SKIP LOCKED";
  return tasks(tasks_txn(), where, params);
}

std::vector<std::pair<TaskRow, std::string>> RunStore::lock_ready(Micros now,
                                                                  std::int64_t aging_step_us,
                                                                  int limit, int offset) {
  std::vector<std::pair<TaskRow, std::string>> out;
  for (const auto& r : tasks_txn().query(
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

std::optional<int> RunStore::lock_and_count_running(std::string_view agent_id) {
  const auto rs = tasks_txn().query("SELECT pg_try_advisory_xact_lock(hashtext($1))",
                                    {"agent\n" + std::string(agent_id)});
  if (rs[0][0].as_int() == 0) return std::nullopt;
  // A statement of its own: its snapshot is taken after the lock was granted,
  // so it sees every claim of the transaction that held the lock before.
  return static_cast<int>(
      tasks_txn()
          .query("SELECT COUNT(*) FROM tasks WHERE status = 'running' AND agent_id = $1",
                 {agent_id})[0][0]
          .as_int());
}

std::unordered_map<std::string, int> RunStore::running_by_agent() {
  std::unordered_map<std::string, int> out;
  for (const auto& r :
       tasks_txn().query("SELECT agent_id, COUNT(*) FROM tasks WHERE status = 'running' AND "
                         "agent_id IS NOT NULL GROUP BY agent_id")) {
    out[r[0].as_text()] = static_cast<int>(r[1].as_int());
  }
  return out;
}

std::vector<TaskRow> RunStore::expired_leases(Micros now) {
  return tasks(
      t_, "WHERE status = 'running' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1",
      {now});
}

std::vector<TaskRow> RunStore::missed_starts(Micros now) {
  return tasks(tasks_txn(),
               "WHERE status = 'ready' AND start_deadline IS NOT NULL AND start_deadline < $1",
               {now});
}

bool RunStore::claim(const TaskRow& row, const std::string& lease_owner,
                     const std::string& agent_id, Micros now, Micros lease_expires_at,
                     std::optional<Micros> close_deadline) {
  prefetched_.erase(row.task.run_id);
  if (defer_) {
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
      pending_.push_back({std::move(claimed), now});
      return true;
    }
  }
  return tasks_txn().execute(
             "UPDATE tasks SET status = 'running', attempt = attempt + 1, lease_owner = $2, "
             "agent_id = $3, "
             "lease_expires_at = $4, close_deadline = $5, started_at = $6, updated_at = $6 "
             "WHERE id = $1 AND status = 'ready' AND attempt = $7 AND available_at <= $6",
             {row.task.id, lease_owner, agent_id, lease_expires_at, Value(close_deadline), now,
              row.task.attempt}) == 1;
}

bool RunStore::extend_lease(std::string_view task_id, int attempt, std::string_view lease_owner,
                            Micros now, Micros lease_expires_at) {
  prefetched_.clear();  // rows changed by id: their runs are not known here
  return tasks_txn().execute(
             "UPDATE tasks SET lease_expires_at = $4, updated_at = $5 WHERE id = $1 AND attempt = "
             "$2 "
             "AND lease_owner = $3 AND status = 'running' AND lease_expires_at >= $5",
             {task_id, attempt, lease_owner, lease_expires_at, now}) == 1;
}

std::optional<TaskRow> RunStore::leased(std::string_view task_id, int attempt,
                                        std::string_view lease_owner, Micros now) {
  auto found = tasks(tasks_txn(),
                     "WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND status = 'running' "
                     "AND lease_expires_at >= $4",
                     {task_id, attempt, lease_owner, now});
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

void RunStore::insert_attempt(const std::string& task_id, const TaskAttempt& a) {
  tasks_txn().execute(
      "INSERT INTO task_attempts (task_id, attempt, agent_id, lease_owner, status, error, "
      "started_at, "
      "finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {task_id, a.attempt, a.agent_id, a.lease_owner, a.status, null_if_empty(a.error),
       a.started_at, Value(a.finished_at)});
}

void RunStore::insert_attempts(std::span<const std::pair<std::string, TaskAttempt>> attempts) {
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
    tasks_txn().execute(sql, params);
  }
}

void RunStore::end_attempt(const TaskRow& row, std::string_view status, std::string_view error,
                           Micros at) {
  insert_attempt(row.task.id,
                 {row.task.attempt, row.task.agent_id, row.lease_owner, std::string(status),
                  std::string(error), row.task.started_at.value_or(at), at});
}

std::vector<TaskAttempt> RunStore::attempts_of(const TaskRow& row) {
  std::vector<TaskAttempt> out;
  for (const auto& r :
       tasks_txn().query("SELECT attempt, agent_id, lease_owner, status, error, started_at, "
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

void RunStore::insert_log(const TaskLogLine& l) {
  tasks_txn().execute(
      "INSERT INTO task_logs (id, task_id, attempt, level, message, at) VALUES ($1, $2, $3, $4, "
      "$5, $6)",
      {l.id, l.task_id, l.attempt, to_string(l.level), l.message, l.at});
}

std::vector<TaskLogLine> RunStore::logs(std::string_view task_id, std::optional<int> attempt,
                                        const std::string& after_id, int limit) {
  std::vector<TaskLogLine> out;
  const auto rs =
      attempt
          ? tasks_txn().query(
                "SELECT id, task_id, attempt, level, message, at FROM task_logs WHERE task_id = $1 "
                "AND attempt = $2 AND id > $3 ORDER BY id LIMIT $4",
                {task_id, *attempt, after_id, limit})
          : tasks_txn().query(
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

}  // namespace devcycle::internal
