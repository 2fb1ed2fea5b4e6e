// Message bus throughput, 100-byte messages.
//
//   build/dev/bench/bus_bench
//   bench/kafka_bench.sh     # the Kafka rows and kcat on the same broker
//
// `db`: 0 = inproc on sqlite::memory:, 1 = inproc on a SQLite file (NORMAL).
// BM_PublishBatched: publish_batch of `batch` messages, waited for.
// BM_PublishEach: one publish at a time, each waited for (one round trip each).
// BM_EndToEnd: publish a batch of 1000, fetch it for a group, acknowledge it.
// BM_Kafka*: the same on kafka://$DEVCYCLE_BENCH_KAFKA (skipped when unset):
//   ProduceBatched: publish_batch of 100,000 (one Kafka transaction), the
//   row bench/kafka_bench.sh compares with kcat; Produce: 100,000 publish()
//   in flight, then all waited for (what librdkafka batches on its own);
//   PublishBatch: publish_batch of 1,000 and 10,000 (a batch copied each
//   time); EndToEnd: 1,000 produced, fetched, acknowledged.
// Counter messages_per_second.
#include <benchmark/benchmark.h>
#include <devcycle/messaging/messaging.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <future>
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

// The Kafka bus on $DEVCYCLE_BENCH_KAFKA, or nothing (the benchmark skips).
std::unique_ptr<devcycle::MessageBus> kafka_bus(benchmark::State& state,
                                                std::unique_ptr<devcycle::Database>& db) {
  const char* broker = std::getenv("DEVCYCLE_BENCH_KAFKA");
  if (!broker) {
    state.SkipWithError("set DEVCYCLE_BENCH_KAFKA=host:port, or run bench/kafka_bench.sh");
    return nullptr;
  }
  db = devcycle::Database::open("sqlite::memory:");
  return devcycle::MessageBus::open(std::string("kafka://") + broker, *db);
}

std::string unique_topic(const char* base) {
  static int n = 0;
  return std::string(base) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

void BM_KafkaProduce(benchmark::State& state) {
  std::unique_ptr<devcycle::Database> db;
  auto bus = kafka_bus(state, db);
  if (!bus) return;
  const std::string topic = unique_topic("bench-produce");
  const devcycle::Message m{topic, "", {}, std::string(100, 'x')};
  bus->publish(m).get();  // the topic exists and the producer is connected
  constexpr int kInFlight = 100'000;
  std::vector<std::future<devcycle::Published>> pending;
  pending.reserve(kInFlight);
  std::vector<devcycle::Message> batch;
  for (auto _ : state) {
    // The messages are made before timing, as kcat's input file is.
    state.PauseTiming();
    pending.clear();
    batch.assign(kInFlight, m);
    state.ResumeTiming();
    for (auto& message : batch) pending.push_back(bus->publish(std::move(message)));
    for (auto& f : pending) f.get();
  }
  state.counters["messages_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kInFlight), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KafkaProduce)->MeasureProcessCPUTime()->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_KafkaProduceBatched(benchmark::State& state) {
  std::unique_ptr<devcycle::Database> db;
  auto bus = kafka_bus(state, db);
  if (!bus) return;
  const std::string topic = unique_topic("bench-produce-batched");
  const devcycle::Message m{topic, "", {}, std::string(100, 'x')};
  bus->publish_batch({m}).get();  // the topic exists and the transactional producer is ready
  constexpr int kBatch = 100'000;
  std::vector<devcycle::Message> batch;
  for (auto _ : state) {
    // The messages are made before timing, as kcat's input file is.
    state.PauseTiming();
    batch.assign(kBatch, m);
    state.ResumeTiming();
    bus->publish_batch(std::move(batch)).get();
  }
  state.counters["messages_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBatch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KafkaProduceBatched)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_KafkaPublishBatch(benchmark::State& state) {
  std::unique_ptr<devcycle::Database> db;
  auto bus = kafka_bus(state, db);
  if (!bus) return;
  const std::string topic = unique_topic("bench-batch");
  const auto kBatch = static_cast<std::size_t>(state.range(0));
  std::vector<devcycle::Message> batch(kBatch,
                                       devcycle::Message{topic, "", {}, std::string(100, 'x')});
  bus->publish_batch(batch).get();
  for (auto _ : state) bus->publish_batch(batch).get();
  state.counters["messages_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KafkaPublishBatch)
    ->ArgNames({"batch"})
    ->Arg(1000)
    ->Arg(10000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_KafkaEndToEnd(benchmark::State& state) {
  std::unique_ptr<devcycle::Database> db;
  auto bus = kafka_bus(state, db);
  if (!bus) return;
  const std::string topic = unique_topic("bench-e2e");
  const devcycle::Message m{topic, "", {}, std::string(100, 'x')};
  bus->ack(bus->fetch(topic, "consumers", 1));  // joins the group before timing
  std::vector<std::future<devcycle::Published>> pending;
  for (auto _ : state) {
    pending.clear();
    for (int i = 0; i < 1000; ++i) pending.push_back(bus->publish(m));
    for (auto& f : pending) f.get();
    for (int got = 0; got < 1000;) {
      auto batch = bus->fetch(topic, "consumers", 1000);
      got += static_cast<int>(batch.size());
      bus->ack(batch);
    }
  }
  state.counters["messages_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations() * 1000), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KafkaEndToEnd)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
