// Cache throughput: token-bucket checks (Cache::take) and increments per
// second, on memory:// and on Redis at $DEVCYCLE_BENCH_REDIS_URL (skipped
// when unset; scripts/redis.sh starts one).
//
//   DEVCYCLE_BENCH_REDIS_URL=redis://127.0.0.1:19751/0 build/dev/bench/cache_bench
//
// `backend`: 0 = memory://, 1 = Redis. Threads share one cache object (and
// its connection pool); each thread takes from buckets of its own keys, so
// the figure is the server's and the client's, not one hot key's.
#include <benchmark/benchmark.h>
#include <devcycle/cache/cache.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace {

std::unique_ptr<devcycle::Cache> open_cache(int backend) {
  if (backend == 0) return devcycle::Cache::open("memory://");
  return devcycle::Cache::open(std::string(std::getenv("DEVCYCLE_BENCH_REDIS_URL")) +
                               "?prefix=bench" + std::to_string(::getpid()) + ":");
}

bool skip(benchmark::State& state) {
  if (state.range(0) != 1 || std::getenv("DEVCYCLE_BENCH_REDIS_URL")) return false;
  state.SkipWithError("set DEVCYCLE_BENCH_REDIS_URL=redis://... to run backend=1");
  for (auto _ : state) {
  }
  return true;
}

// One cache per backend for every thread and benchmark (and its pool).
std::shared_ptr<devcycle::Cache> cache_for(benchmark::State& state) {
  static std::mutex mu;
  static std::shared_ptr<devcycle::Cache> caches[2];
  std::lock_guard lock(mu);
  auto& c = caches[state.range(0)];
  if (!c) c = open_cache(static_cast<int>(state.range(0)));
  return c;
}

void BM_TokenBucketTake(benchmark::State& state) {
  if (skip(state)) return;
  auto cache = cache_for(state);
  const std::string key = "bucket-" + std::to_string(state.thread_index());
  std::int64_t allowed = 0;
  for (auto _ : state) {
    // A generous bucket: most takes are allowed, as on a healthy service.
    allowed += cache->take(key, 1e6, 1e6).allowed ? 1 : 0;
  }
  state.counters["checks_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["allowed"] = static_cast<double>(allowed);
}
BENCHMARK(BM_TokenBucketTake)
    ->ArgNames({"backend"})
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(8)
    ->UseRealTime();

void BM_Increment(benchmark::State& state) {
  if (skip(state)) return;
  auto cache = cache_for(state);
  const std::string key = "counter-" + std::to_string(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize(cache->increment(key));
  state.counters["ops_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Increment)
    ->ArgNames({"backend"})
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(8)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
