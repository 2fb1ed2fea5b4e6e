// How fast SQLite alone can carry tasks through their life on this machine,
// with no engine at all: the floor under bench/engine_bench.
//
//   build/dev/bench/sqlite_floor_bench
//
// A file database in WAL mode, synchronous NORMAL, foreign keys on, every
// statement prepared once, 50 tasks (5 runs of 10) per transaction. Each
// iteration creates 5 runs and carries their 50 tasks through their life.
//
// BM_EngineSchema: the engine's own schema (Engine::migrations()) and the
//   statements a task needs there: insert, make ready, claim, insert the
//   attempt, complete (fenced), finish the attempt.
// BM_LeanSchema: a leaner layout — integer row keys, only ready/running
//   tasks indexed, the attempt kept in the task row — with two statements
//   per task besides its insert: claim (straight from pending) and complete.
//
// Counter tasks_per_second.
#include <benchmark/benchmark.h>
#include <devcycle/workflow/engine.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

class Db {
 public:
  Db() {
    path_ = std::filesystem::temp_directory_path() /
            ("devcycle-sqlite-floor-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path_);
    if (sqlite3_open(path_.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open");
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
  }
  ~Db() {
    for (auto* s : statements_) sqlite3_finalize(s);
    sqlite3_close(db_);
    std::filesystem::remove(path_);
    std::filesystem::remove(path_.string() + "-wal");
    std::filesystem::remove(path_.string() + "-shm");
  }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(msg + " in " + sql.substr(0, 80));
    }
  }
  sqlite3_stmt* prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string(sqlite3_errmsg(db_)) + " in " + sql);
    statements_.push_back(s);
    return s;
  }
  // Binds text and integer arguments in order, steps, resets; returns the changes.
  template <typename... A>
  int run(sqlite3_stmt* s, const A&... args) {
    int i = 0;
    (bind(s, ++i, args), ...);
    if (const int rc = sqlite3_step(s); rc != SQLITE_DONE && rc != SQLITE_ROW)
      throw std::runtime_error(sqlite3_errmsg(db_));
    sqlite3_reset(s);
    return sqlite3_changes(db_);
  }

 private:
  static void bind(sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  static void bind(sqlite3_stmt* s, int i, long long v) { sqlite3_bind_int64(s, i, v); }
  static void bind(sqlite3_stmt* s, int i, int v) { sqlite3_bind_int64(s, i, v); }

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  std::vector<sqlite3_stmt*> statements_;
};

std::string id(long long n) {
  char b[48];
  std::snprintf(b, sizeof b, "0190c8a0-0000-7000-8000-%012lld", n);
  return b;
}

void expect_one(int changes) {
  if (changes != 1) throw std::runtime_error("a fenced statement changed no row");
}

constexpr int kRuns = 5, kTasks = 10;

void BM_EngineSchema(benchmark::State& state) {
  Db db;
  for (const auto& m : devcycle::Engine::migrations()) db.exec(m.sql);
  db.exec(
      "INSERT INTO workflows (id, name, version, owner, definition, checksum, created_at) "
      "VALUES ('w', 'w', 1, 'o', '{}', 'c', 1)");
  auto run = db.prepare(
      "INSERT INTO workflow_runs (id, workflow_id, workflow_name, workflow_version, owner, "
      "status, input, labels, created_at, updated_at) "
      "VALUES (?1, 'w', 'w', 1, 'o', 'running', '{}', '{}', 1, 1)");
  auto task = db.prepare(
      "INSERT INTO tasks (id, run_id, task_key, definition_id, status, priority, attempt, "
      "max_attempts, created_at, updated_at) VALUES (?1, ?2, ?3, ?3, 'pending', 0, 0, 1, 1, 1)");
  auto ready = db.prepare(
      "UPDATE tasks SET status = 'ready', input = '{}', ready_at = ?2, available_at = ?2, "
      "updated_at = ?2 WHERE id = ?1 AND status = 'pending'");
  auto claim = db.prepare(
      "UPDATE tasks SET status = 'running', attempt = attempt + 1, lease_owner = 'e', agent_id = "
      "'a', lease_expires_at = ?2, started_at = ?3, updated_at = ?3 "
      "WHERE id = ?1 AND status = 'ready' AND attempt = 0 AND available_at <= ?3");
  auto attempt = db.prepare(
      "INSERT INTO task_attempts (task_id, attempt, agent_id, lease_owner, status, started_at) "
      "VALUES (?1, 1, 'a', 'e', 'running', ?2)");
  auto complete = db.prepare(
      "UPDATE tasks SET status = 'succeeded', output = '{}', finished_at = ?2, lease_expires_at "
      "= NULL, updated_at = ?2 WHERE id = ?1 AND attempt = 1 AND lease_owner = 'e' "
      "AND status = 'running' AND lease_expires_at >= ?2");
  auto finish = db.prepare(
      "UPDATE task_attempts SET status = 'succeeded', finished_at = ?2 WHERE task_id = ?1 AND "
      "attempt = 1");
  long long next = 0;
  const long long t = 1'000'000;
  for (auto _ : state) {
    std::vector<std::string> tasks;
    db.exec("BEGIN IMMEDIATE");
    for (int r = 0; r < kRuns; ++r) {
      const auto run_id = id(next++);
      db.run(run, run_id);
      for (int k = 0; k < kTasks; ++k) {
        tasks.push_back(id(next++));
        db.run(task, tasks.back(), run_id, "t" + std::to_string(k));
      }
    }
    db.exec("COMMIT");
    db.exec("BEGIN IMMEDIATE");
    for (const auto& tid : tasks) {
      expect_one(db.run(ready, tid, t));
      expect_one(db.run(claim, tid, t + 100, t));
      db.run(attempt, tid, t);
      expect_one(db.run(complete, tid, t + 1));
      db.run(finish, tid, t + 1);
    }
    db.exec("COMMIT");
  }
  state.counters["tasks_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kRuns * kTasks), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EngineSchema)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_LeanSchema(benchmark::State& state) {
  Db db;
  db.exec(
      "CREATE TABLE runs (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, status TEXT NOT NULL);"
      "CREATE TABLE tasks (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
      " run INTEGER NOT NULL REFERENCES runs (n), task_key TEXT NOT NULL, status TEXT NOT NULL,"
      " attempt INT NOT NULL, lease_owner TEXT, lease_expires_at INT, input TEXT, output TEXT,"
      " started_at INT, finished_at INT, updated_at INT);"
      "CREATE INDEX tasks_run ON tasks (run);"
      "CREATE INDEX tasks_ready ON tasks (n) WHERE status = 'ready';"
      "CREATE INDEX tasks_running ON tasks (lease_expires_at) WHERE status = 'running'");
  auto run = db.prepare("INSERT INTO runs (n, id, status) VALUES (?1, ?2, 'running')");
  auto task = db.prepare(
      "INSERT INTO tasks (n, id, run, task_key, status, attempt) "
      "VALUES (?1, ?2, ?3, ?4, 'pending', 0)");
  auto claim = db.prepare(
      "UPDATE tasks SET status = 'running', attempt = attempt + 1, lease_owner = 'e', "
      "lease_expires_at = ?2, input = '{}', started_at = ?3, updated_at = ?3 "
      "WHERE n = ?1 AND status IN ('pending', 'ready') AND attempt = 0");
  auto complete = db.prepare(
      "UPDATE tasks SET status = 'succeeded', output = '{}', finished_at = ?2, "
      "lease_expires_at = NULL, updated_at = ?2 WHERE n = ?1 AND attempt = 1 "
      "AND lease_owner = 'e' AND status = 'running' AND lease_expires_at >= ?2");
  long long next = 1;
  const long long t = 1'000'000;
  for (auto _ : state) {
    std::vector<long long> tasks;
    db.exec("BEGIN IMMEDIATE");
    for (int r = 0; r < kRuns; ++r) {
      const long long run_n = next++;
      db.run(run, run_n, id(run_n));
      for (int k = 0; k < kTasks; ++k) {
        tasks.push_back(next++);
        db.run(task, tasks.back(), id(tasks.back()), run_n, "t" + std::to_string(k));
      }
    }
    db.exec("COMMIT");
    db.exec("BEGIN IMMEDIATE");
    for (const auto n : tasks) {
      expect_one(db.run(claim, n, t + 100, t));
      expect_one(db.run(complete, n, t + 1));
    }
    db.exec("COMMIT");
  }
  state.counters["tasks_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kRuns * kTasks), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LeanSchema)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
