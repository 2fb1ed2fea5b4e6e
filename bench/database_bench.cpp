// Single-row durable writes per second on a SQLite file, with and without
// group commit, at synchronous NORMAL and FULL. Each write is one submit()
// that waits for its COMMIT; `threads` writers run at once.
//
//   build/dev/bench/database_bench --benchmark_counters_tabular=true
//   DEVCYCLE_BENCH_DIR=/some/disk build/dev/bench/database_bench   (default: $TMPDIR)
#include <benchmark/benchmark.h>
#include <devcycle/devcycle.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace {

std::unique_ptr<devcycle::Database> g_db;
std::filesystem::path g_dir;
std::atomic<std::int64_t> g_next{0};

void open_db(bool group_commit, bool full) {
  const char* base = std::getenv("DEVCYCLE_BENCH_DIR");
  g_dir = std::filesystem::path(base ? base : std::filesystem::temp_directory_path().c_str()) /
          ("devcycle-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(g_dir);
  std::filesystem::create_directories(g_dir);
  devcycle::DatabaseOptions options;
  options.group_commit = group_commit;
  options.synchronous = full ? devcycle::Synchronous::kFull : devcycle::Synchronous::kNormal;
  options.migrations = {{"bench", 1, "events",
                         "CREATE TABLE events (id TEXT PRIMARY KEY, n BIGINT NOT NULL, "
                         "payload TEXT NOT NULL)",
                         ""}};
  g_db = devcycle::Database::open("sqlite://" + (g_dir / "bench.db").string(), options);
}

void close_db() {
  g_db.reset();
  std::filesystem::remove_all(g_dir);
}

// Args: {group_commit 0/1, synchronous full 0/1}.
void BM_SingleRowDurableWrite(benchmark::State& state) {
  if (state.thread_index() == 0) open_db(state.range(0) != 0, state.range(1) != 0);
  const std::string payload(200, 'x');
  for (auto _ : state) {
    const auto n = g_next.fetch_add(1);
    g_db->write([&](devcycle::Txn& t) {
      t.execute("INSERT INTO events (id, n, payload) VALUES ($1, $2, $3)",
                {devcycle::new_uuid_v7(), n, payload});
    });
  }
  state.counters["writes_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  if (state.thread_index() == 0) close_db();
}

BENCHMARK(BM_SingleRowDurableWrite)
    ->ArgNames({"group_commit", "full"})
    ->ArgsProduct({{0, 1}, {0, 1}})
    ->Threads(1)
    ->Threads(16)
    ->UseRealTime()
    ->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
