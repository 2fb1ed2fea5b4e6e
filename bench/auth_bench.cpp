// Authentication costs.
//
//   build/dev/bench/auth_bench
//
// BM_Argon2idHash: time to hash one password with argon2id at the default
// parameters (64 MiB, 3 passes) and at OWASP's minimum (19 MiB, 2 passes).
// JWT verification benchmarks join when tokens land.
#include <benchmark/benchmark.h>
#include <devcycle/auth.h>

namespace {

void BM_Argon2idHash(benchmark::State& state) {
  devcycle::Argon2Options options;
  options.memory_bytes = static_cast<std::size_t>(state.range(0)) * 1024 * 1024;
  options.passes = static_cast<unsigned long long>(state.range(1));
  auto hasher = devcycle::make_argon2id_hasher(options);
  for (auto _ : state) benchmark::DoNotOptimize(hasher->hash("tolerable mule 9"));
  state.counters["hashes_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Argon2idHash)
    ->ArgNames({"mib", "passes"})
    ->Args({64, 3})
    ->Args({19, 2})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
