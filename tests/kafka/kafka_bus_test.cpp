// What is particular to the Kafka backend of the MessageBus (the contract
// itself runs on Kafka as kafka_conformance_tests), on the real broker that
// scripts/kafka.sh starts (label `kafka`). Every test uses topics and groups
// of its own: the broker lives for the whole test run.
#include "messaging/kafka/kafka_bus.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "devcycle/common/uuid.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/platform/platform.h"
#include "devcycle/registry/registry.h"
#include "devcycle/workflow/engine.h"
#include "devcycle/workflow/workflow.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

std::string broker_url() {
  const char* b = std::getenv("DEVCYCLE_TEST_KAFKA");
  return std::string("kafka://") + (b ? b : "127.0.0.1:19692");
}

class KafkaBusTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }

  void open() {
    bus_.reset();
    BusOptions o;
    o.clock = clock_;
    o.max_payload_bytes = 64 * 1024;
    bus_ = internal::open_kafka_bus(broker_url(), o);
  }

  // A topic or group name of this test only.
  std::string name(const std::string& base) { return base + "-" + unique_; }

  Published publish(const std::string& topic, const std::string& payload,
                    const std::string& key = "") {
    return bus_->publish({topic, key, {{"h", "v"}}, payload}).get();
  }

  static std::vector<std::string> payloads(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.message.payload);
    return out;
  }

  static ConsumeOptions consume(int max_deliveries = 3) {
    ConsumeOptions o;
    o.visibility_timeout = 10s;
    o.max_deliveries = max_deliveries;
    return o;
  }

  std::string unique_ = new_uuid_v7().substr(24);
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<MessageBus> bus_;
};

TEST_F(KafkaBusTest, PublishedMessagesArriveWholeInOrderAndOnlyOnceAcknowledged) {
  const auto t = name("orders"), g = name("billing");
  const auto a = publish(t, "a");
  const auto b = publish(t, std::string("b\0\xff", 3));
  const auto batch = bus_->publish_batch({{t, "", {}, "c"}, {t, "", {}, "d"}}).get();
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_LT(a.offset, b.offset);
  EXPECT_LT(b.offset, batch[0].offset);
  EXPECT_LT(batch[0].offset, batch[1].offset);
  EXPECT_EQ(a.published_at, clock_->now() / 1000 * 1000);
  const auto got = bus_->fetch(t, g, 10, consume());
  ASSERT_EQ(payloads(got), (std::vector<std::string>{"a", std::string("b\0\xff", 3), "c", "d"}));
  EXPECT_EQ(got[0].id, a.id);
  EXPECT_EQ(got[0].offset, a.offset);
  EXPECT_EQ(got[3].id, batch[1].id);
  EXPECT_EQ(got[0].message.headers, (std::map<std::string, std::string>{{"h", "v"}}));
  EXPECT_EQ(got[0].message.topic, t);
  EXPECT_EQ(got[0].group, g);
  EXPECT_EQ(got[0].delivery_count, 1);
  EXPECT_EQ(got[0].published_at, a.published_at);
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume()).empty()) << "all are in flight";
  bus_->ack(got);
  open();  // another process in the same group: the committed offsets hold
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume()).empty());
  EXPECT_EQ(payloads(bus_->fetch(t, name("other"), 10, consume())),
            (std::vector<std::string>{"a", std::string("b\0\xff", 3), "c", "d"}))
      << "every group sees every message";
}

TEST_F(KafkaBusTest, ARefusalComesBackThroughTheRetryTopicBeforeLaterMessagesOfItsKey) {
  const auto t = name("t"), g = name("g");
  publish(t, "k1-first", "k1");
  publish(t, "k1-second", "k1");
  publish(t, "k2-only", "k2");
  publish(t, "no-key");
  auto got = bus_->fetch(t, g, 10, consume());
  EXPECT_EQ(payloads(got), (std::vector<std::string>{"k1-first", "k2-only", "no-key"}));
  bus_->nack(got[0], "again", consume());
  auto again = bus_->fetch(t, g, 10, consume());
  ASSERT_EQ(payloads(again), (std::vector<std::string>{"k1-first"}));
  EXPECT_EQ(again[0].delivery_count, 2);
  EXPECT_EQ(again[0].id, got[0].id);
  EXPECT_EQ(again[0].offset, got[0].offset) << "the original offset, not the retry topic's";
  EXPECT_DEVCYCLE_ERROR(bus_->ack(got[0]), ErrorCode::kNotFound, "not pending");
  bus_->ack(again[0]);
  EXPECT_EQ(payloads(bus_->fetch(t, g, 10, consume())), (std::vector<std::string>{"k1-second"}));
}

TEST_F(KafkaBusTest, TimeoutsRedeliverAndTheLastRefusalDeadLetters) {
  const auto t = name("t"), g = name("g");
  const auto poison = publish(t, "poison");
  ASSERT_EQ(bus_->fetch(t, g, 10, consume(3)).size(), 1u);
  clock_->advance(9s);
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume(3)).empty());
  clock_->advance(2s);
  auto got = bus_->fetch(t, g, 10, consume(3));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].delivery_count, 2);
  bus_->nack(got[0], "cannot parse", consume(3));
  got = bus_->fetch(t, g, 10, consume(3));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].delivery_count, 3);
  bus_->nack(got[0], "cannot parse order 3", consume(3));
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume(3)).empty());
  const auto dead = bus_->dead_letters(t, g);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].delivery.id, poison.id);
  EXPECT_EQ(dead[0].delivery.offset, poison.offset);
  EXPECT_EQ(dead[0].delivery.message.payload, "poison");
  EXPECT_EQ(dead[0].delivery.message.headers, (std::map<std::string, std::string>{{"h", "v"}}));
  EXPECT_EQ(dead[0].delivery.delivery_count, 3);
  EXPECT_EQ(dead[0].reason, "cannot parse order 3");
  EXPECT_EQ(dead[0].dead_at, clock_->now());
  EXPECT_TRUE(bus_->dead_letters(t, name("other")).empty()) << "dead letters belong to a group";

  // An expired last delivery is dead-lettered for the timeout.
  publish(t, "slow");
  ASSERT_EQ(bus_->fetch(t, g, 10, consume(1)).size(), 1u);
  clock_->advance(11s);
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume(1)).empty());
  const auto both = bus_->dead_letters(t, g);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_NE(both[1].reason.find("visibility timeout"), std::string::npos) << both[1].reason;
  EXPECT_EQ(bus_->dead_letters(t, g, 10, poison.offset).size(), 1u) << "after an offset";
}

TEST_F(KafkaBusTest, AckingABatchIsAllOrNothingAndStaleDeliveriesAreRefused) {
  const auto t = name("t"), g = name("g");
  for (int i = 0; i < 5; ++i) publish(t, std::to_string(i));
  auto got = bus_->fetch(t, g, 10, consume());
  ASSERT_EQ(got.size(), 5u);
  bus_->ack(got[4]);
  EXPECT_DEVCYCLE_ERROR(bus_->ack(got), ErrorCode::kNotFound,
                        "offset " + std::to_string(got[4].offset));
  got.pop_back();
  bus_->ack(got);  // none of them was acknowledged by the refused call
  clock_->advance(1h);
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume()).empty());
  Delivery unknown;
  unknown.message.topic = t;
  unknown.group = name("never-fetched");
  EXPECT_DEVCYCLE_ERROR(bus_->ack(unknown), ErrorCode::kNotFound, "not pending");
  EXPECT_DEVCYCLE_ERROR(bus_->nack(unknown, "x", consume()), ErrorCode::kNotFound, "not pending");
}

// A consumer that goes away before acknowledging: what it had not
// acknowledged comes again to the next one, what it had does not.
TEST_F(KafkaBusTest, WhatWasNotAcknowledgedComesAgainAfterARestart) {
  const auto t = name("t"), g = name("g");
  publish(t, "acked");
  publish(t, "taken");
  publish(t, "new");
  auto got = bus_->fetch(t, g, 2, consume());
  ASSERT_EQ(payloads(got), (std::vector<std::string>{"acked", "taken"}));
  bus_->ack(got[0]);
  open();
  EXPECT_EQ(payloads(bus_->fetch(t, g, 10, consume())), (std::vector<std::string>{"taken", "new"}));
}

TEST_F(KafkaBusTest, BadInputIsRefusedNamingTheFieldAndPublishesNothing) {
  const auto t = name("t"), g = name("g");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({"a b", "", {}, "x"}), ErrorCode::kInvalidArgument,
                        "message.topic");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({t, "", {}, std::string(64 * 1024 + 1, 'x')}),
                        ErrorCode::kInvalidArgument, "message.payload: 65537 bytes");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({t, "", {{"devcycle-id", "x"}}, "x"}),
                        ErrorCode::kInvalidArgument, "reserved");
  EXPECT_DEVCYCLE_ERROR(
      bus_->publish_batch({{t, "", {}, "ok"}, {t, "", {}, std::string(70'000, 'x')}}),
      ErrorCode::kInvalidArgument, "messages[1].payload");
  EXPECT_DEVCYCLE_ERROR(bus_->fetch(t, "bad group!", 10, consume()), ErrorCode::kInvalidArgument,
                        "group");
  EXPECT_DEVCYCLE_ERROR(bus_->fetch(std::string(100, 't'), std::string(200, 'g'), 10, consume()),
                        ErrorCode::kInvalidArgument, "249 characters");
  EXPECT_TRUE(bus_->fetch(t, g, 10, consume()).empty()) << "nothing of the refused batch";
  EXPECT_DEVCYCLE_ERROR(internal::open_kafka_bus("kafka://", {}), ErrorCode::kInvalidArgument,
                        "bus");
  EXPECT_DEVCYCLE_ERROR(internal::open_kafka_bus(broker_url() + "?partitions=0", {}),
                        ErrorCode::kInvalidArgument, "partitions=0");
  EXPECT_DEVCYCLE_ERROR(internal::open_kafka_bus(broker_url() + "?color=red", {}),
                        ErrorCode::kInvalidArgument, "unknown parameter \"color\"");
  EXPECT_DEVCYCLE_ERROR(internal::open_kafka_bus(broker_url() + "?session_timeout_ms=5000", {}),
                        ErrorCode::kInvalidArgument, "session_timeout_ms=5000",
                        "from 6000 to 1800000");
  // Nothing listens on 127.0.0.1:1: open fails, naming the broker.
  auto db = Database::open("sqlite::memory:");
  EXPECT_DEVCYCLE_ERROR(MessageBus::open("kafka://127.0.0.1:1?connect_timeout_ms=1500", *db),
                        ErrorCode::kUnavailable, "127.0.0.1:1", "1500 ms");
}

// A topic made elsewhere (here by a bus with a smaller payload limit) may
// take smaller records than this bus: a message it would refuse is refused
// before anything is produced, naming the topic's limit, instead of by the
// broker inside a transaction.
TEST_F(KafkaBusTest, AMessageItsTopicCannotTakeIsRefusedBeforeAnythingIsProduced) {
  const auto t = name("t"), g = name("g");
  publish(t, "created");  // by a bus of 64 KiB: the topic takes records of 1,000,000 bytes
  const auto start = bus_->fetch(t, g, 10, consume());
  bus_->ack(start);
  bus_.reset();
  BusOptions o;
  o.clock = clock_;
  o.max_payload_bytes = 4 * 1024 * 1024;  // this bus takes 2 MiB; the topic does not
  bus_ = internal::open_kafka_bus(broker_url(), o);
  std::vector<Message> batch;
  for (int i = 0; i < 500; ++i) batch.push_back({t, "", {}, "before-" + std::to_string(i)});
  batch.push_back({t, "", {}, std::string(2 * 1024 * 1024, 'x')});
  batch.push_back({t, "", {}, "after"});
  EXPECT_DEVCYCLE_ERROR(bus_->publish_batch(batch), ErrorCode::kInvalidArgument, "messages[500]",
                        "topic " + t, "at most 1000000 bytes", "max.message.bytes");
  EXPECT_DEVCYCLE_ERROR(bus_->publish(batch[500]), ErrorCode::kInvalidArgument,
                        "message:", "max.message.bytes");
  const auto next = bus_->publish_batch({{t, "k", {{"h", "v"}}, "next"}}).get();
  ASSERT_EQ(next.size(), 1u);
  const auto got = bus_->fetch(t, g, 1000, consume());
  ASSERT_EQ(payloads(got), std::vector<std::string>{"next"}) << "nothing of the aborted batch";
  EXPECT_EQ(got[0].id, next[0].id);
  EXPECT_EQ(got[0].message.headers, (std::map<std::string, std::string>{{"h", "v"}}));
}

// A message at every limit the bus checks (payload, key, 64 headers of 4 KiB)
// goes through Kafka, and so does its dead-letter copy with a 4 KiB reason:
// the producers and the topics the bus creates take what the bus takes
// (Kafka's own defaults stop at about 1 MB).
TEST_F(KafkaBusTest, AMessageAtTheBusLimitsGoesThroughAndSoDoesItsDeadLetter) {
  bus_.reset();
  BusOptions o;
  o.clock = clock_;  // the default payload limit, 1 MiB
  bus_ = internal::open_kafka_bus(broker_url(), o);
  const auto t = name("t"), g = name("g");
  Message m{t, "", {}, std::string(o.max_payload_bytes, 'p')};
  for (int i = 0; i < 64; ++i)
    m.headers[std::string(250, 'h') + std::to_string(100 + i)] = std::string(4096, 'v');
  const auto keyed = [&](char c) {  // a key each: one key's messages come one at a time
    Message k = m;
    k.key = std::string(1024, c);
    return k;
  };
  const auto one = bus_->publish(keyed('a')).get();
  const auto batch = bus_->publish_batch({keyed('b'), keyed('c')}).get();
  auto got = bus_->fetch(t, g, 10, consume(1));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].id, one.id);
  EXPECT_EQ(got[2].id, batch[1].id);
  for (const auto& d : got) {
    EXPECT_EQ(d.message.payload, m.payload);
    EXPECT_EQ(d.message.headers, m.headers);
    EXPECT_EQ(d.message.key.size(), 1024u);
  }
  bus_->nack(got[0], std::string(4096, 'r'), consume(1));
  const auto dead = bus_->dead_letters(t, g);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].delivery.id, one.id);
  EXPECT_EQ(dead[0].delivery.message.payload, m.payload);
  EXPECT_EQ(dead[0].reason, std::string(4096, 'r'));
  EXPECT_DEVCYCLE_ERROR(bus_->publish({t, "", {}, m.payload + "x"}), ErrorCode::kInvalidArgument,
                        "payload");
}

// A dead letter that cannot be stored fails the fetch that tried, and that
// fetch hands out nothing: what it had handed out before the failure is as
// it was (no delivery used up that nobody received), and the message is not
// taken for dead. Here the group's dead-letter topic, made by a bus of
// 64 KiB, cannot take a 2 MiB message that a bus of 4 MiB published.
TEST_F(KafkaBusTest, AFetchWhoseDeadLetterFailsHandsOutNothing) {
  const auto t = name("t"), g = name("g");
  BusOptions big;
  big.clock = clock_;
  big.max_payload_bytes = 4 * 1024 * 1024;
  auto publisher = internal::open_kafka_bus(broker_url(), big);
  publisher->publish({t, "k", {}, "first"}).get();
  publisher->publish({t, "k", {}, "second"}).get();  // behind "first": same key
  publisher->publish({t, "b", {}, std::string(2 * 1024 * 1024, 'x')}).get();
  ConsumeOptions once;
  once.visibility_timeout = 1s;
  once.max_deliveries = 1;
  auto got = bus_->fetch(t, g, 10, once);  // this bus makes t.dlq.g: about 1 MB a record
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].message.payload, "first");
  EXPECT_EQ(got[1].message.payload.size(), 2u * 1024 * 1024);
  bus_->ack(got[0]);
  clock_->advance(2s);  // the big one expires on its last delivery: to the dead letters
  for (int i = 0; i < 2; ++i)
    EXPECT_DEVCYCLE_ERROR(bus_->fetch(t, g, 10, once), ErrorCode::kUnavailable, ".dlq.");
  EXPECT_TRUE(bus_->dead_letters(t, g).empty());
  const auto second = bus_->fetch(t, g, 1, once);  // stops before the big one
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].message.payload, "second");
  EXPECT_EQ(second[0].delivery_count, 1) << "the failed fetches used none of its deliveries";
}

// A consumer process killed (SIGKILL) while it holds messages it has not
// acknowledged: once the group's coordinator misses its heartbeats (the
// session timeout, 6 s here), the group's next consumer gets them all.
TEST_F(KafkaBusTest, WhatAKilledConsumerProcessHeldGoesToTheNextConsumer) {
  const auto t = name("t"), g = name("g");
  const std::string url = broker_url() + "?session_timeout_ms=6000";
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i) sent.push_back(publish(t, "m" + std::to_string(i)).id);
  testing::TempDir dir;
  const auto log = dir.file("held.log");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(DEVCYCLE_BUS_CRASH_DRIVER, DEVCYCLE_BUS_CRASH_DRIVER, url.c_str(), "hold", t.c_str(),
            g.c_str(), "5", log.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto held = [&] {
    std::ifstream in(log);
    int lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    return lines;
  };
  for (int i = 0; i < 600 && held() < 5; ++i) std::this_thread::sleep_for(100ms);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_EQ(held(), 5) << "the consumer process took them";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  BusOptions o;
  o.clock = clock_;
  auto next = internal::open_kafka_bus(url, o);
  std::vector<Delivery> got;
  for (int i = 0; i < 300 && got.size() < 5; ++i) {
    auto more = next->fetch(t, g, 10, consume());
    next->ack(more);
    got.insert(got.end(), more.begin(), more.end());
    if (got.size() < 5) std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(payloads(got), (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4"}));
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].id, sent[i]);
}

// Consecutive batches (which two transactional producers take in turns)
// reach the log in the order of the calls, with consecutive offsets.
TEST_F(KafkaBusTest, ConsecutiveBatchesKeepTheOrderOfTheCalls) {
  const auto t = name("t"), g = name("g");
  std::vector<std::string> sent;
  std::int64_t last = -1;
  for (int b = 0; b < 12; ++b) {
    std::vector<Message> batch;
    for (int i = 0; i < 25; ++i) {
      sent.push_back(std::to_string(b) + "." + std::to_string(i));
      batch.push_back({t, "same-key", {}, sent.back()});
    }
    for (const auto& p : bus_->publish_batch(batch).get()) {
      EXPECT_GT(p.offset, last);
      last = p.offset;
    }
  }
  std::vector<Delivery> got;
  while (got.size() < sent.size()) {
    auto more = bus_->fetch(t, g, 1000, consume());
    ASSERT_FALSE(more.empty());
    bus_->ack(more);
    got.insert(got.end(), more.begin(), more.end());
  }
  EXPECT_EQ(payloads(got), sent);
}

// Every message of a large batch gets its own report: ids distinct and
// equal to what a consumer reads, offsets consecutive.
TEST_F(KafkaBusTest, EveryMessageOfALargeBatchIsReportedInOrder) {
  const auto t = name("t"), g = name("g");
  std::vector<Message> batch;
  for (int i = 0; i < 20'000; ++i) batch.push_back({t, "", {}, std::to_string(i)});
  const auto published = bus_->publish_batch(batch).get();
  ASSERT_EQ(published.size(), batch.size());
  std::set<std::string> ids;
  for (std::size_t i = 0; i < published.size(); ++i) {
    ids.insert(published[i].id);
    if (i) {
      EXPECT_EQ(published[i].offset, published[i - 1].offset + 1) << i;
    }
  }
  EXPECT_EQ(ids.size(), batch.size());
  std::vector<Delivery> got;
  while (got.size() < batch.size()) {
    auto more = bus_->fetch(t, g, 10'000, consume());
    ASSERT_FALSE(more.empty());
    bus_->ack(more);
    got.insert(got.end(), more.begin(), more.end());
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].message.payload, std::to_string(i));
    ASSERT_EQ(got[i].id, published[i].id);
  }
}

// The engine's events on Kafka: every run and task event, in order, keyed
// by the run, published through the outbox once its change committed.
TEST_F(KafkaBusTest, EngineEventsArriveOnKafkaInOrder) {
  auto db = Database::open("sqlite::memory:");
  Registry registry(*db);
  WorkflowCatalog catalog(*db, &registry);
  registry.define_type({"worker", "", "{}"});
  AgentSpec spec;
  spec.owner = "ops";
  spec.name = "echo";
  spec.type = "worker";
  const auto agent = registry.create(spec);
  registry.add_version(agent.id, {"1.0.0", {"step@1.0.0"}, {}, "inproc:echo", ""});
  registry.deploy(agent.id, "1.0.0");
  const auto events = name("devcycle.events");
  EngineOptions o;
  o.workers = 0;
  o.bus = bus_.get();
  o.event_topic = events;
  auto engine = std::make_unique<Engine>(*db, registry, catalog, o);
  engine->register_function("echo", [](TaskContext&) { return std::string("{}"); });
  catalog.create(R"({"name": "two", "tasks": [{"id": "a", "capability": "step"},
    {"id": "b", "capability": "step", "depends_on": ["a"]}]})",
                 "alice");
  StartRun r;
  r.workflow = "two";
  r.owner = "alice";
  const auto run = engine->start(r);
  EXPECT_EQ(engine->run_until_idle(), 2);
  std::vector<std::string> kinds;
  // Liveness, not speed: the outbox relay publishes on its own thread and a
  // new consumer group needs its partitions first; a fetch may come back
  // empty meanwhile.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (kinds.size() < 8 && std::chrono::steady_clock::now() < deadline) {
    auto got = bus_->fetch(events, name("watcher"), 100, consume());
    for (const auto& d : got) {
      EXPECT_EQ(d.message.key, run.id);
      const auto j = nlohmann::json::parse(d.message.payload);
      kinds.push_back(j["kind"].get<std::string>() +
                      (j.contains("task_key") ? ":" + j["task_key"].get<std::string>() : ""));
    }
    if (got.empty()) std::this_thread::sleep_for(20ms);
    bus_->ack(got);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"run.started", "task.ready:a", "task.started:a",
                                             "task.succeeded:a", "task.ready:b", "task.started:b",
                                             "task.succeeded:b", "run.finished"}));
  engine.reset();
}

// What `devcycle serve --bus kafka://...` builds: the Platform wires the bus
// into its engine and messages, and publishes events and receipts there.
TEST_F(KafkaBusTest, APlatformOnKafkaPublishesEventsAndReceipts) {
  PlatformOptions po;
  po.database = "sqlite::memory:";
  po.bus = broker_url();
  po.engine_workers = 0;
  po.log_sink = std::make_shared<MemoryLogSink>();
  auto p = Platform::open(po);
  p->registry().define_type({"worker", "", "{}"});
  AgentSpec spec;
  spec.owner = "ops";
  spec.type = "worker";
  spec.name = "a";
  const auto a = p->registry().create(spec);
  spec.name = "b";
  const auto b = p->registry().create(spec);
  p->registry().add_version(a.id, {"1.0.0", {"step@1.0.0"}, {}, "inproc:echo", ""});
  p->registry().deploy(a.id, "1.0.0");
  p->engine().register_function("echo", [](TaskContext&) { return std::string("{}"); });
  p->workflows().create(R"({"name": "one", "tasks": [{"id": "a", "capability": "step"}]})",
                        "alice");
  StartRun r;
  r.workflow = "one";
  r.owner = "alice";
  const auto run = p->engine().start(r);
  p->engine().run_until_idle();
  const auto m = p->messages().send(a.id, b.id, "hello", "{}");
  // The topics are the platform's own, shared with anything else on this
  // broker: look for this run's and this message's records.
  std::vector<std::string> kinds, receipts;
  const auto deadline = std::chrono::steady_clock::now() + 60s;  // liveness, not speed
  while ((kinds.size() < 5 || receipts.empty()) && std::chrono::steady_clock::now() < deadline) {
    auto events = bus_->fetch("devcycle.events", name("events-watcher"), 100, consume());
    for (const auto& d : events) {
      if (d.message.key == run.id)
        kinds.push_back(nlohmann::json::parse(d.message.payload)["kind"].get<std::string>());
    }
    bus_->ack(events);
    auto sent = bus_->fetch("devcycle.messages", name("receipts-watcher"), 100, consume());
    for (const auto& d : sent) {
      const auto j = nlohmann::json::parse(d.message.payload);
      if (j["id"] == m.id) receipts.push_back(j["event"].get<std::string>());
    }
    bus_->ack(sent);
    std::this_thread::sleep_for(50ms);  // the outbox relay polls every second
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"run.started", "task.ready", "task.started",
                                             "task.succeeded", "run.finished"}));
  EXPECT_EQ(receipts, std::vector<std::string>{"message.sent"});
}

}  // namespace
}  // namespace devcycle
