#include "workflow/store/schema.h"

namespace devcycle::internal {

std::vector<Migration> engine_migrations() {
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

}  // namespace devcycle::internal
