// End-to-end engine throughput: no-op in-process agents, runs started in
// batches and driven by the threaded engine until they finish.
//
//   build/dev/bench/engine_bench --benchmark_counters_tabular=true
//
// Variants (the `db` argument): 0 = SQLite file, synchronous NORMAL;
// 1 = SQLite file, FULL; 2 = sqlite::memory:; 3 = PostgreSQL at
// $DEVCYCLE_BENCH_POSTGRES_URL (a fresh schema per benchmark; skipped when
// unset). `runs` is how many runs are in flight together. Counter
// durable_tasks_per_second: executed tasks per second of wall time
// (meaningful as "durable" for db=0, 1 and 3).
#include <benchmark/benchmark.h>
#include <devcycle/devcycle.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

namespace {

struct Setup {
  std::filesystem::path dir;
  std::unique_ptr<devcycle::Database> db;
  std::unique_ptr<devcycle::Registry> registry;
  std::unique_ptr<devcycle::WorkflowCatalog> catalog;
  std::unique_ptr<devcycle::Engine> engine;
  std::shared_ptr<devcycle::MetricsRegistry> metrics =
      std::make_shared<devcycle::MetricsRegistry>();

  // Transactions committed so far, and closures in them.
  double commits() { return metrics->counter("db_commits_total", "").value(); }
  double closures() {
    return metrics
        ->histogram("db_batch_size", "", devcycle::Histogram::exponential_buckets(1, 2, 10))
        .sum();
  }

  explicit Setup(int db_kind, int workers = 4) {
    dir = std::filesystem::temp_directory_path() /
          ("devcycle-engine-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    static int schemas = 0;
    const char* pg = std::getenv("DEVCYCLE_BENCH_POSTGRES_URL");
    if (db_kind == 3) {
      pg_url = pg ? pg : "";
      schema = "bench_" + std::to_string(::getpid()) + "_" + std::to_string(++schemas);
    }
    const std::string url =
        db_kind == 3
            ? pg_url + (pg_url.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema
        : db_kind == 2 ? "sqlite::memory:"
                       : "sqlite://" + (dir / "bench.db").string() +
                             (db_kind == 1 ? "?synchronous=full" : "?synchronous=normal");
    devcycle::DatabaseOptions dbo;
    dbo.metrics = metrics;
    db = devcycle::Database::open(url, dbo);
    registry = std::make_unique<devcycle::Registry>(*db);
    catalog = std::make_unique<devcycle::WorkflowCatalog>(*db, registry.get());
    devcycle::EngineOptions o;
    o.workers = workers;
    o.poll_interval = std::chrono::milliseconds(1);
    engine = std::make_unique<devcycle::Engine>(*db, *registry, *catalog, o);
    engine->register_function("noop", [](devcycle::TaskContext&) { return std::string("{}"); });
    registry->define_type({"noop", "", "{}"});
    devcycle::AgentSpec spec;
    spec.owner = "bench";
    spec.name = "noop";
    spec.type = "noop";
    spec.capacity = 1000;
    const auto a = registry->create(spec);
    registry->add_version(a.id, {"1.0.0", {"noop@1.0.0"}, {}, "inproc:noop", ""});
    registry->deploy(a.id, "1.0.0");
    catalog->create(R"({"name": "linear", "tasks": [
      {"id": "t0", "capability": "noop"}, {"id": "t1", "capability": "noop", "depends_on": ["t0"]},
      {"id": "t2", "capability": "noop", "depends_on": ["t1"]}, {"id": "t3", "capability": "noop", "depends_on": ["t2"]},
      {"id": "t4", "capability": "noop", "depends_on": ["t3"]}, {"id": "t5", "capability": "noop", "depends_on": ["t4"]},
      {"id": "t6", "capability": "noop", "depends_on": ["t5"]}, {"id": "t7", "capability": "noop", "depends_on": ["t6"]},
      {"id": "t8", "capability": "noop", "depends_on": ["t7"]}, {"id": "t9", "capability": "noop", "depends_on": ["t8"]}]})",
                    "bench");
    catalog->create(R"({"name": "fanout", "tasks": [
      {"id": "wide", "capability": "noop", "for_each": "input.items"}]})",
                    "bench");
  }
  ~Setup() {
    engine.reset();
    catalog.reset();
    registry.reset();
    db.reset();
    std::filesystem::remove_all(dir);
    if (!schema.empty()) {
      // Schemas left behind would keep the server's autovacuum busy with
      // tables nobody uses, and slow the benchmarks after this one.
      devcycle::Database::open(pg_url)->write(
          [&](devcycle::Txn& t) { t.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE"); });
    }
  }
  std::string pg_url;  // PostgreSQL: the server, and the schema made for this benchmark
  std::string schema;
};

// Ready-to-started delays of every task of a benchmark, in microseconds.
struct Latencies {
  std::mutex mu;
  std::map<std::string, devcycle::Micros> ready_at;
  std::vector<double> delays;

  void report(benchmark::State& state) {
    std::sort(delays.begin(), delays.end());
    if (delays.empty()) return;
    auto pct = [&](double p) {
      return delays[static_cast<std::size_t>(p * static_cast<double>(delays.size() - 1))];
    };
    state.counters["dispatch_p50_ms"] = pct(0.50) / 1000.0;
    state.counters["dispatch_p99_ms"] = pct(0.99) / 1000.0;
  }
};

// Starts `runs` runs of `workflow` in one start_many() and waits until all
// have finished.
void run_batch(Setup& s, const std::string& workflow, const std::string& input, int runs,
               Latencies* lat) {
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;
  auto sub = s.engine->subscribe([&](const devcycle::EngineEvent& e) {
    if (lat && e.kind == devcycle::EngineEvent::Kind::kTaskReady) {
      std::lock_guard lock(lat->mu);
      lat->ready_at[e.task_id] = e.at;
    } else if (lat && e.kind == devcycle::EngineEvent::Kind::kTaskStarted) {
      std::lock_guard lock(lat->mu);
      if (auto it = lat->ready_at.find(e.task_id); it != lat->ready_at.end()) {
        lat->delays.push_back(static_cast<double>(e.at - it->second));
        lat->ready_at.erase(it);
      }
    } else if (e.kind == devcycle::EngineEvent::Kind::kRunFinished) {
      std::lock_guard lock(mu);
      ++finished;
      cv.notify_all();
    }
  });
  std::vector<devcycle::StartRun> requests(static_cast<std::size_t>(runs));
  for (auto& r : requests) {
    r.workflow = workflow;
    r.owner = "bench";
    r.input = input;
  }
  s.engine->start_many(requests);
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished >= runs; });
}

// How the writer batched the work: transactions per task, closures per transaction.
void report_commits(benchmark::State& state, Setup& s, double commits_before,
                    double closures_before, double tasks) {
  const double commits = s.commits() - commits_before;
  state.counters["commits_per_task"] = commits / tasks;
  state.counters["closures_per_commit"] =
      commits > 0 ? (s.closures() - closures_before) / commits : 0;
}

// db=3 needs a server: without one the benchmark says so and is skipped.
bool skip_without_postgres(benchmark::State& state) {
  if (state.range(0) != 3 || std::getenv("DEVCYCLE_BENCH_POSTGRES_URL")) return false;
  state.SkipWithError("set DEVCYCLE_BENCH_POSTGRES_URL=postgresql://... to run db=3");
  for (auto _ : state) {
  }
  return true;
}

void BM_Linear10(benchmark::State& state) {
  if (skip_without_postgres(state)) return;
  Setup s(static_cast<int>(state.range(0)), static_cast<int>(state.range(2)));
  const int runs = static_cast<int>(state.range(1));
  Latencies lat;
  const double commits = s.commits(), closures = s.closures();
  for (auto _ : state) run_batch(s, "linear", "{}", runs, &lat);
  lat.report(state);
  report_commits(state, s, commits, closures, static_cast<double>(state.iterations() * runs * 10));
  state.counters["durable_tasks_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * runs * 10), benchmark::Counter::kIsRate);
  state.counters["runs_in_flight"] = runs;
}
BENCHMARK(BM_Linear10)
    ->ArgNames({"db", "runs", "workers"})
    ->ArgsProduct({{0, 1, 2, 3}, {50, 200}, {4, 16}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_FanOut100(benchmark::State& state) {
  if (skip_without_postgres(state)) return;
  Setup s(static_cast<int>(state.range(0)));
  const int runs = static_cast<int>(state.range(1));
  std::string items = "{\"items\": [0";
  for (int i = 1; i < 100; ++i) items += "," + std::to_string(i);
  items += "]}";
  Latencies lat;
  const double commits = s.commits(), closures = s.closures();
  for (auto _ : state) run_batch(s, "fanout", items, runs, &lat);
  lat.report(state);
  report_commits(state, s, commits, closures, static_cast<double>(state.iterations() * runs * 100));
  state.counters["durable_tasks_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * runs * 100), benchmark::Counter::kIsRate);
  state.counters["runs_in_flight"] = runs;
}
BENCHMARK(BM_FanOut100)
    ->ArgNames({"db", "runs"})
    ->ArgsProduct({{0, 1, 2, 3}, {5}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

double rss_mb() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

// Resident memory before and after `tasks` finished tasks (10-task linear
// runs, 100 in flight, SQLite file): it must not grow with finished work.
// Run the full size by hand: --benchmark_filter=MemoryWithFinishedTasks/tasks:1000000/
void BM_MemoryWithFinishedTasks(benchmark::State& state) {
  Setup s(0);
  const auto tasks = state.range(0);
  // No latency bookkeeping here: it would grow with the tasks and hide what the engine does.
  run_batch(s, "linear", "{}", 100, nullptr);  // warm up caches before the first reading
  const double before = rss_mb();
  for (auto _ : state) {
    for (std::int64_t done = 0; done < tasks; done += 1000)
      run_batch(s, "linear", "{}", 100, nullptr);
  }
  state.counters["rss_before_mb"] = before;
  state.counters["rss_after_mb"] = rss_mb();
  state.counters["finished_tasks"] = static_cast<double>(tasks);
}
BENCHMARK(BM_MemoryWithFinishedTasks)
    ->ArgNames({"tasks"})
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
