// The scheduler's decisions without a database: the engine's in-memory
// ready queue (src/workflow/ready_queue.h), on one thread.
//
//   build/dev/bench/scheduler_bench
//
// BM_SchedulerDecisions: a steady state with `ready` tasks waiting, mixed
// priorities and ages, a tenth of them in retry backoff. Each iteration is
// one decision — the best available task is taken — and one new task
// arriving (the successor the finished task made ready), as in a busy
// engine. Counter decisions_per_second.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "workflow/ready_queue.h"

namespace {

using devcycle::Micros;
using devcycle::internal::ReadyEntry;
using devcycle::internal::ReadyQueue;

void BM_SchedulerDecisions(benchmark::State& state) {
  const auto ready = static_cast<std::size_t>(state.range(0));
  constexpr Micros kStep = 10'000'000;
  std::mt19937_64 rng(42);
  // Arrivals are prepared beforehand: making ids is not the scheduler's work.
  std::vector<ReadyEntry> arrivals(ready + 4096);
  for (std::size_t i = 0; i < arrivals.size(); ++i) {
    auto& e = arrivals[i];
    e.task_id = "0190c8a0-0000-7000-8000-" + std::to_string(100000000000 + i);
    e.run_id = "0190c8a0-0000-7000-9000-" + std::to_string(100000000000 + i / 10);
    e.definition_id = "step";
    e.priority = static_cast<int>(rng() % 5) - 2;
  }
  ReadyQueue q(kStep);
  Micros now = 1'000'000'000;
  std::size_t next = 0;
  auto arrive = [&] {
    ReadyEntry e = arrivals[next % arrivals.size()];
    e.task_id += std::to_string(next / arrivals.size());  // unique across laps
    ++next;
    e.ready_at = now - static_cast<Micros>(rng() % 60'000'000);
    e.available_at = rng() % 10 == 0 ? now + static_cast<Micros>(rng() % 1'000) : e.ready_at;
    q.push(std::move(e), now);
  };
  for (std::size_t i = 0; i < ready; ++i) arrive();
  std::int64_t decisions = 0;
  for (auto _ : state) {
    now += 1;  // a microsecond per decision: backoffs expire as they would
    auto e = q.pop(now);
    benchmark::DoNotOptimize(e);
    decisions += e.has_value();
    arrive();
  }
  state.counters["decisions_per_second"] =
      benchmark::Counter(static_cast<double>(decisions), benchmark::Counter::kIsRate);
  state.counters["ready_tasks"] = static_cast<double>(q.size());
}
BENCHMARK(BM_SchedulerDecisions)->ArgNames({"ready"})->Arg(1'000)->Arg(10'000)->Arg(100'000);

}  // namespace

BENCHMARK_MAIN();
