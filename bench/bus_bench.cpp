// Message bus throughput, 100-byte messages.
//
//   build/dev/bench/bus_bench
//
// `db`: 0 = inproc on sqlite::memory:, 1 = inproc on a SQLite file (NORMAL).
// BM_PublishBatched: publish_batch of `batch` messages, waited for.
// BM_PublishEach: one publish at a time, each waited for (one round trip each).
// BM_EndToEnd: publish a batch of 1000, fetch it for a group, acknowledge it.
// Counter messages_per_second.
#include <benchmark/benchmark.h>
#include <devcycle/messaging.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace {

struct Setup {
  std::filesystem::path dir;
  std::unique_ptr<devcycle::Database> db;
  std::unique_ptr<devcycle::MessageBus> bus;
  explicit Setup(int kind) {
    dir = std::filesystem::temp_directory_path() /
          ("devcycle-bus-bench-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    db = devcycle::Database::open(kind == 0 ? "sqlite::memory:"
                                            : "sqlite://" + (dir / "bus.db").string());
    bus = devcycle::MessageBus::open("inproc://", *db);
  }
  ~Setup() {
    bus.reset();
    db.reset();
    std::filesystem::remove_all(dir);
  }
};

std::vector<devcycle::Message> messages(int n) {
  std::vector<devcycle::Message> out;
  for (int i = 0; i < n; ++i) out.push_back({"bench", "", {}, std::string(100, 'x')});
  return out;
}

void BM_PublishBatched(benchmark::State& state) {
  Setup s(static_cast<int>(state.range(0)));
  const int batch = static_cast<int>(state.range(1));
  const auto template_batch = messages(batch);
  for (auto _ : state) s.bus->publish_batch(template_batch).get();
  state.counters["messages_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PublishBatched)
    ->ArgNames({"db", "batch"})
    ->ArgsProduct({{0, 1}, {1000}})
    ->UseRealTime();

void BM_PublishEach(benchmark::State& state) {
  Setup s(static_cast<int>(state.range(0)));
  const auto m = messages(1)[0];
  for (auto _ : state) s.bus->publish(m).get();
  state.counters["messages_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PublishEach)->ArgNames({"db"})->Arg(0)->Arg(1)->UseRealTime();

void BM_EndToEnd(benchmark::State& state) {
  Setup s(static_cast<int>(state.range(0)));
  const auto batch = messages(1000);
  for (auto _ : state) {
    s.bus->publish_batch(batch).get();
    s.bus->ack(s.bus->fetch("bench", "consumers", 1000));
  }
  state.counters["messages_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * 1000), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EndToEnd)->ArgNames({"db"})->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
