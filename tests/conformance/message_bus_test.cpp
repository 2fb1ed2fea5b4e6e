// The MessageBus contract, over every backend: inproc on each Database
// backend (conformance_tests), and Kafka on the broker of scripts/kafka.sh
// (kafka_conformance_tests, label kafka, built from this file with
// DEVCYCLE_BUS_CONFORMANCE_KAFKA). Where the backends differ on purpose,
// the test says so.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "devcycle/common/uuid.h"
#include "devcycle/messaging/messaging.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/table_snapshot.h"
#include "support/temp_dir.h"
#ifdef DEVCYCLE_BUS_CONFORMANCE_KAFKA
#include "messaging/kafka/kafka_bus.h"
#endif

namespace devcycle {
namespace {

using namespace std::chrono_literals;

#ifdef DEVCYCLE_BUS_CONFORMANCE_KAFKA
constexpr bool kKafka = true;
#else
constexpr bool kKafka = false;
#endif

class MessageBusTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override { open(); }

  void open() {
    bus_.reset();
    db_.reset();
    db_ = Database::open(GetParam().url(dir_));
    bus_ = open_bus(*db_);
  }

  // A bus over `db` (inproc) or the broker (Kafka), with this test's options.
  std::unique_ptr<MessageBus> open_bus([[maybe_unused]] Database& db,
                                       std::shared_ptr<Clock> clock = nullptr) {
    BusOptions o;
    o.clock = clock ? clock : clock_;
    o.max_payload_bytes = 64 * 1024;
#ifdef DEVCYCLE_BUS_CONFORMANCE_KAFKA
    const char* broker = std::getenv("DEVCYCLE_TEST_KAFKA");
    return internal::open_kafka_bus(std::string("kafka://") + (broker ? broker : "127.0.0.1:19692"),
                                    o);
#else
    return MessageBus::open("inproc://", db, o);
#endif
  }

  // A topic or group name of this test: on Kafka, whose broker outlives the
  // test, made unique.
  std::string tp(const std::string& base) const { return kKafka ? base + "-" + unique_ : base; }

  Published publish(const std::string& topic, const std::string& payload,
                    const std::string& key = "") {
    return bus_->publish({topic, key, {{"h", "v"}}, payload}).get();
  }

  std::vector<std::string> payloads(const std::vector<Delivery>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.message.payload);
    return out;
  }

  ConsumeOptions consume(int max_deliveries = 3) {
    ConsumeOptions o;
    o.visibility_timeout = 10s;
    o.max_deliveries = max_deliveries;
    return o;
  }

  std::string unique_ = new_uuid_v7().substr(24);
  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<MessageBus> bus_;
};

TEST_P(MessageBusTest, PublishedMessagesArriveWholeAndInOrder) {
  const auto a = publish(tp("orders"), "a");
  const auto b = publish(tp("orders"), std::string("b\0\xff", 3));
  const auto batch =
      bus_->publish_batch({{tp("orders"), "", {}, "c"}, {tp("orders"), "", {}, "d"}}).get();
  EXPECT_EQ(a.offset, 0);
  EXPECT_EQ(b.offset, 1);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[1].offset, 3);
  EXPECT_NE(a.id, b.id);
  const auto got = bus_->fetch(tp("orders"), tp("billing"), 10, consume());
  EXPECT_EQ(payloads(got), (std::vector<std::string>{"a", std::string("b\0\xff", 3), "c", "d"}));
  EXPECT_EQ(got[0].id, a.id);
  EXPECT_EQ(got[0].message.headers.at("h"), "v");
  EXPECT_EQ(got[0].delivery_count, 1);
  EXPECT_EQ(got[0].group, tp("billing"));
  EXPECT_TRUE(bus_->fetch(tp("orders"), tp("billing"), 10, consume()).empty())
      << "all are in flight";
}

TEST_P(MessageBusTest, AckRemovesNackRedeliversAtOnce) {
  publish(tp("t"), "one");
  publish(tp("t"), "two");
  auto got = bus_->fetch(tp("t"), tp("g"), 10, consume());
  ASSERT_EQ(got.size(), 2u);
  bus_->ack(got[0]);
  bus_->nack(got[1], "try later", consume());
  got = bus_->fetch(tp("t"), tp("g"), 10, consume());
  ASSERT_EQ(payloads(got), (std::vector<std::string>{"two"}));
  EXPECT_EQ(got[0].delivery_count, 2);
  bus_->ack(got[0]);
  EXPECT_DEVCYCLE_ERROR(bus_->ack(got[0]), ErrorCode::kNotFound, "not pending");
  clock_->advance(1h);
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume()).empty());
}

TEST_P(MessageBusTest, AckingABatchIsAllOrNothing) {
  for (int i = 0; i < 5; ++i) publish(tp("t"), std::to_string(i));
  auto got = bus_->fetch(tp("t"), tp("g"), 10, consume());
  ASSERT_EQ(got.size(), 5u);
  bus_->ack(got[4]);
  EXPECT_DEVCYCLE_ERROR(bus_->ack(got), ErrorCode::kNotFound, "offset 4");
  got.pop_back();
  bus_->ack(got);  // none of them was acknowledged by the refused call
  clock_->advance(1h);
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume()).empty());
}

TEST_P(MessageBusTest, UnacknowledgedDeliveriesComeBackAfterTheVisibilityTimeout) {
  publish(tp("t"), "x");
  ASSERT_EQ(bus_->fetch(tp("t"), tp("g"), 10, consume()).size(), 1u);
  clock_->advance(9s);
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume()).empty());
  clock_->advance(2s);
  const auto again = bus_->fetch(tp("t"), tp("g"), 10, consume());
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery_count, 2);
}

TEST_P(MessageBusTest, DeadLettersAfterMaxDeliveriesAndRedrive) {
  const auto poison = publish(tp("t"), "poison");
  publish(tp("t"), "fine");
  for (int i = 1; i <= 3; ++i) {
    auto got = bus_->fetch(tp("t"), tp("g"), 10, consume(3));
    ASSERT_FALSE(got.empty()) << "delivery " << i;
    EXPECT_EQ(got[0].message.payload, "poison");
    EXPECT_EQ(got[0].delivery_count, i);
    for (const auto& d : got) {
      if (d.message.payload == "fine") bus_->ack(d);
    }
    bus_->nack(got[0], "cannot parse order " + std::to_string(i), consume(3));
  }
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume(3)).empty());
  auto dead = bus_->dead_letters(tp("t"), tp("g"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].delivery.id, poison.id);
  EXPECT_EQ(dead[0].delivery.message.payload, "poison");
  EXPECT_EQ(dead[0].delivery.delivery_count, 3);
  EXPECT_EQ(dead[0].reason, "cannot parse order 3");
  EXPECT_TRUE(bus_->dead_letters(tp("t"), tp("other")).empty()) << "dead letters belong to a group";

  EXPECT_EQ(bus_->redrive(tp("t"), tp("g"), {poison.id}), 1);
  EXPECT_TRUE(bus_->dead_letters(tp("t"), tp("g")).empty());
  const auto back = bus_->fetch(tp("t"), tp("g"), 10, consume(3));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].delivery_count, 1) << "a redriven message starts counting again";
  EXPECT_DEVCYCLE_ERROR(bus_->redrive(tp("t"), tp("g"), {poison.id}), ErrorCode::kNotFound,
                        "not a dead letter");
}

TEST_P(MessageBusTest, ExpiredLastDeliveryIsDeadLetteredWithTheReason) {
  publish(tp("t"), "slow");
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(bus_->fetch(tp("t"), tp("g"), 10, consume(2)).size(), 1u);
    clock_->advance(11s);
  }
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume(2)).empty());
  const auto dead = bus_->dead_letters(tp("t"), tp("g"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(dead[0].reason.find("visibility timeout"), std::string::npos) << dead[0].reason;
}

TEST_P(MessageBusTest, AStaleDeliveryCannotAckOrRefuseItsSuccessor) {
  publish(tp("t"), "x");
  const auto first = bus_->fetch(tp("t"), tp("g"), 10, consume());
  clock_->advance(11s);
  const auto second = bus_->fetch(tp("t"), tp("g"), 10, consume());
  ASSERT_EQ(second.size(), 1u);
  EXPECT_DEVCYCLE_ERROR(bus_->ack(first[0]), ErrorCode::kNotFound, "not pending");
  EXPECT_DEVCYCLE_ERROR(bus_->nack(first[0], "late", consume()), ErrorCode::kNotFound,
                        "not pending");
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume()).empty()) << "still in flight";
  bus_->ack(second[0]);
}

TEST_P(MessageBusTest, ARefusalThenATimeoutIsDeadLetteredForTheTimeout) {
  publish(tp("t"), "x");
  bus_->nack(bus_->fetch(tp("t"), tp("g"), 10, consume(2))[0], "first refusal", consume(2));
  ASSERT_EQ(bus_->fetch(tp("t"), tp("g"), 10, consume(2)).size(), 1u);
  clock_->advance(11s);
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume(2)).empty());
  const auto dead = bus_->dead_letters(tp("t"), tp("g"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(dead[0].reason.find("visibility timeout"), std::string::npos) << dead[0].reason;
}

TEST_P(MessageBusTest, ReplayingOverADeadLetterAndFailingAgainUpdatesIt) {
  const auto p = publish(tp("t"), "poison");
  bus_->nack(bus_->fetch(tp("t"), tp("g"), 10, consume(1))[0], "bad once", consume(1));
  ASSERT_EQ(bus_->dead_letters(tp("t"), tp("g")).size(), 1u);
  bus_->seek(tp("t"), tp("g"), 0);
  const auto again = bus_->fetch(tp("t"), tp("g"), 10, consume(1));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, p.id);
  bus_->nack(again[0], "bad twice", consume(1));
  const auto dead = bus_->dead_letters(tp("t"), tp("g"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "bad twice");
  // Redriving what is also pending again (a replay) does not duplicate it.
  bus_->seek(tp("t"), tp("g"), 0);
  ASSERT_EQ(bus_->fetch(tp("t"), tp("g"), 10, consume(5)).size(), 1u);
  EXPECT_EQ(bus_->redrive(tp("t"), tp("g"), {p.id, p.id}), 1);
  EXPECT_TRUE(bus_->dead_letters(tp("t"), tp("g")).empty());
}

TEST_P(MessageBusTest, SeekingBeyondTheEndIsRefused) {
  publish(tp("t"), "a");
  EXPECT_DEVCYCLE_ERROR(bus_->seek(tp("t"), tp("g"), 2), ErrorCode::kInvalidArgument,
                        "beyond the end of topic " + tp("t") + " (its next offset is 1)");
  bus_->seek(tp("t"), tp("g"), 1);  // the end itself: only new messages
  publish(tp("t"), "b");
  EXPECT_EQ(payloads(bus_->fetch(tp("t"), tp("g"), 10, consume())),
            (std::vector<std::string>{"b"}));
}

TEST_P(MessageBusTest, ASubscriptionMayStopItselfAndOutliveTheBus) {
  std::mutex mu;
  Subscription self;
  std::atomic<bool> ready{false}, handled{false};
  SubscribeOptions o;
  o.poll_interval = 5ms;
  {
    std::lock_guard lock(mu);
    self = bus_->subscribe(
        tp("t"), tp("g"),
        [&](const Delivery&) {
          while (!ready) std::this_thread::sleep_for(1ms);
          {
            std::lock_guard l(mu);
            self.reset();  // from its own handler
          }
          handled = true;
          return Ack::kAck;
        },
        o);
  }
  ready = true;
  auto other = bus_->subscribe(
      tp("t"), tp("h"), [](const Delivery&) { return Ack::kAck; }, o);
  publish(tp("t"), "x");
  for (int i = 0; i < 500 && !handled; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(handled.load());
  bus_.reset();   // waits for the self-stopped thread
  other.reset();  // after the bus is gone: nothing to stop, nothing to touch
}

TEST_P(MessageBusTest, MessagesOfOneKeyWaitForTheEarlierOne) {
  publish(tp("t"), "k1-first", "k1");
  publish(tp("t"), "k1-second", "k1");
  publish(tp("t"), "k2-only", "k2");
  publish(tp("t"), "no-key-1");
  publish(tp("t"), "no-key-2");
  auto got = bus_->fetch(tp("t"), tp("g"), 10, consume());
  EXPECT_EQ(payloads(got),
            (std::vector<std::string>{"k1-first", "k2-only", "no-key-1", "no-key-2"}));
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume()).empty());
  // A refused message keeps its key's place: it comes back before the next.
  bus_->nack(got[0], "again", consume());
  got = bus_->fetch(tp("t"), tp("g"), 10, consume());
  EXPECT_EQ(payloads(got), (std::vector<std::string>{"k1-first"}));
  bus_->ack(got[0]);
  got = bus_->fetch(tp("t"), tp("g"), 10, consume());
  EXPECT_EQ(payloads(got), (std::vector<std::string>{"k1-second"}));
}

TEST_P(MessageBusTest, GroupsAreIndependentAndSeekReplays) {
  publish(tp("t"), "0");
  clock_->advance(1s);
  const Micros later = clock_->now();
  publish(tp("t"), "1");
  publish(tp("t"), "2");
  for (const auto& d : bus_->fetch(tp("t"), tp("a"), 10, consume())) bus_->ack(d);
  EXPECT_EQ(payloads(bus_->fetch(tp("t"), tp("b"), 2, consume())),
            (std::vector<std::string>{"0", "1"}));
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("a"), 10, consume()).empty());

  auto fetch_and_ack = [&] {
    auto got = bus_->fetch(tp("t"), tp("a"), 10, consume());
    for (const auto& d : got) bus_->ack(d);
    return payloads(got);
  };
  bus_->seek(tp("t"), tp("a"), 1);
  EXPECT_EQ(fetch_and_ack(), (std::vector<std::string>{"1", "2"}));
  bus_->seek_to_time(tp("t"), tp("a"), later);
  EXPECT_EQ(fetch_and_ack(), (std::vector<std::string>{"1", "2"}));
  clock_->advance(1s);
  bus_->seek_to_time(tp("t"), tp("a"), clock_->now());  // nothing that recent: only what comes next
  publish(tp("t"), "3");
  EXPECT_EQ(fetch_and_ack(), (std::vector<std::string>{"3"}));
}

// A group name belongs to its topic. On Kafka each (topic, group) is a
// consumer group of its own: were it one group across topics, the consumer of
// "y" joining would wait for the consumer of "x", which is not fetching.
TEST_P(MessageBusTest, OneGroupNameOnTwoTopicsIsTwoIndependentGroups) {
  publish(tp("x"), "x1");
  publish(tp("y"), "y1");
  const auto fetch_and_ack = [&](const std::string& topic) {
    auto got = bus_->fetch(tp(topic), tp("g"), 10, consume());
    bus_->ack(got);
    return payloads(got);
  };
  EXPECT_EQ(fetch_and_ack("x"), (std::vector<std::string>{"x1"}));
  EXPECT_EQ(fetch_and_ack("y"), (std::vector<std::string>{"y1"}));
  publish(tp("x"), "x2");
  EXPECT_EQ(fetch_and_ack("x"), (std::vector<std::string>{"x2"}));
  bus_->seek(tp("y"), tp("g"), 0);  // moves the group of y only
  EXPECT_EQ(fetch_and_ack("y"), (std::vector<std::string>{"y1"}));
  EXPECT_TRUE(fetch_and_ack("x").empty());
}

TEST_P(MessageBusTest, PurgeDropsOldMessagesNobodyHolds) {
  publish(tp("t"), "done");
  publish(tp("t"), "pending");
  publish(tp("t"), "dead");
  publish(tp("t"), "unread");
  auto got = bus_->fetch(tp("t"), tp("g"), 3, consume(1));
  ASSERT_EQ(got.size(), 3u);
  bus_->ack(got[0]);
  bus_->nack(got[2], "bad", consume(1));
  clock_->advance(1h);
  publish(tp("t"), "recent");
  // Only "done" goes: the group holds "pending" (delivered), "dead" and
  // "unread" (taken into its pending set with the others, not yet delivered).
  EXPECT_EQ(bus_->purge(clock_->now() - 1000), 1);
  EXPECT_EQ(bus_->dead_letters(tp("t"), tp("g"))[0].delivery.message.payload, "dead");
  EXPECT_EQ(payloads(bus_->fetch(tp("t"), tp("g"), 10, consume(2))),
            (std::vector<std::string>{"pending", "unread", "recent"}));
  EXPECT_EQ(bus_->purge(clock_->now() - 1000), 0);
  EXPECT_EQ(payloads(bus_->fetch(tp("t"), tp("other"), 10, consume())),
            (std::vector<std::string>{"pending", "dead", "unread", "recent"}))
      << "a new group sees what is left";
}

// Fetches until `n` deliveries came, acknowledging each round.
std::vector<Delivery> fetch_all(MessageBus& bus, const std::string& topic, const std::string& group,
                                std::size_t n, const ConsumeOptions& o) {
  std::vector<Delivery> out;
  for (int round = 0; out.size() < n && round < 100; ++round) {
    auto more = bus.fetch(topic, group, 1000, o);
    if (more.empty()) break;
    bus.ack(more);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

// Large batches (on inproc: several segments, split by count and by bytes)
// of two interleaved topics come back exactly: ids, keys, headers, payloads
// with any bytes, in order.
TEST_P(MessageBusTest, LargeInterleavedBatchesComeBackExactly) {
  std::vector<Message> batch;
  for (int i = 0; i < 700; ++i) {
    Message m;
    m.topic = tp(i % 2 ? "b" : "a");
    if (i % 3 == 0) m.key = "key-" + std::to_string(i);  // distinct: nothing is held back
    if (i % 4 == 0) m.headers = {{"n", std::to_string(i)}, {"quote", "\"'\\{}"}};
    m.payload = i % 50 == 7 ? std::string(60 * 1024, static_cast<char>('a' + i % 26))
                            : std::string("p\0\xff\xf0\x9f\x98\x80", 8) + std::to_string(i);
    batch.push_back(m);
  }
  const auto published = bus_->publish_batch(batch).get();
  ASSERT_EQ(published.size(), batch.size());
  for (const char* topic : {"a", "b"}) {
    std::vector<std::size_t> mine;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].topic == tp(topic)) mine.push_back(i);
    }
    const auto got = fetch_all(*bus_, tp(topic), tp("g"), mine.size(), consume());
    ASSERT_EQ(got.size(), mine.size()) << topic;
    for (std::size_t k = 0; k < got.size(); ++k) {
      const auto& want = batch[mine[k]];
      ASSERT_EQ(got[k].id, published[mine[k]].id) << topic << " " << k;
      ASSERT_EQ(got[k].offset, published[mine[k]].offset) << topic << " " << k;
      ASSERT_EQ(got[k].message.key, want.key) << topic << " " << k;
      ASSERT_EQ(got[k].message.headers, want.headers) << topic << " " << k;
      ASSERT_EQ(got[k].message.payload, want.payload) << topic << " " << k;
    }
  }
}

// Refusals, dead letters and a redrive of messages in the middle of a large
// batch (on inproc: read one by one out of their segments).
TEST_P(MessageBusTest, DeadLettersAndRedriveFromTheMiddleOfALargeBatch) {
  std::vector<Message> batch;
  for (int i = 0; i < 600; ++i) batch.push_back({tp("t"), "", {}, "m" + std::to_string(i)});
  const auto published = bus_->publish_batch(batch).get();
  std::vector<Delivery> got;
  while (got.size() < batch.size()) {
    auto more = bus_->fetch(tp("t"), tp("g"), 1000, consume(1));
    ASSERT_FALSE(more.empty());
    got.insert(got.end(), more.begin(), more.end());
  }
  const std::set<std::string> refused{"m5", "m300", "m599"};
  for (const auto& d : got) {
    if (refused.count(d.message.payload)) {
      bus_->nack(d, "bad " + d.message.payload, consume(1));
    } else {
      bus_->ack(d);
    }
  }
  const auto dead = bus_->dead_letters(tp("t"), tp("g"));
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(dead[1].delivery.message.payload, "m300");
  EXPECT_EQ(dead[1].delivery.id, published[300].id);
  EXPECT_EQ(dead[1].reason, "bad m300");
  EXPECT_EQ(bus_->redrive(tp("t"), tp("g"), {published[300].id}), 1);
  const auto back = bus_->fetch(tp("t"), tp("g"), 10, consume(1));
  ASSERT_EQ(payloads(back), std::vector<std::string>{"m300"});
  EXPECT_EQ(back[0].id, published[300].id);
  EXPECT_EQ(back[0].offset, published[300].offset);
}

TEST_P(MessageBusTest, BadInputIsRefusedNamingTheFieldAndStoresNothing) {
  // What is stored: the tables on inproc; on Kafka, a fetch shows it.
  const auto stored = [&] {
    return kKafka ? std::string() : testing::table_snapshot(*db_, {"bus_segments", "bus_topics"});
  };
  const auto before = stored();
  EXPECT_DEVCYCLE_ERROR(bus_->publish({"", "", {}, "x"}), ErrorCode::kInvalidArgument,
                        "message.topic");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({"a b", "", {}, "x"}), ErrorCode::kInvalidArgument,
                        "message.topic");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({std::string(201, 't'), "", {}, "x"}),
                        ErrorCode::kInvalidArgument, "message.topic");
  for (const char* kafka_refuses : {".", ".."}) {
    EXPECT_DEVCYCLE_ERROR(bus_->publish({kafka_refuses, "", {}, "x"}), ErrorCode::kInvalidArgument,
                          "message.topic", "not a topic name");
  }
  EXPECT_DEVCYCLE_ERROR(bus_->publish({tp("t"), "", {}, std::string(64 * 1024 + 1, 'x')}),
                        ErrorCode::kInvalidArgument, "message.payload: 65537 bytes");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({tp("t"), "\xff", {}, "x"}), ErrorCode::kInvalidArgument,
                        "message.key");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({tp("t"), "", {{"", "v"}}, "x"}), ErrorCode::kInvalidArgument,
                        "message.headers");
  EXPECT_DEVCYCLE_ERROR(bus_->publish({tp("t"), "", {{"devcycle-id", "v"}}, "x"}),
                        ErrorCode::kInvalidArgument, "message.headers", "reserved");
  EXPECT_DEVCYCLE_ERROR(
      bus_->publish_batch({{tp("t"), "", {}, "ok"}, {tp("t"), "", {}, std::string(70'000, 'x')}}),
      ErrorCode::kInvalidArgument, "messages[1].payload");
  EXPECT_EQ(stored(), before);
  EXPECT_TRUE(bus_->fetch(tp("t"), tp("g"), 10, consume()).empty()) << "nothing was published";

  EXPECT_DEVCYCLE_ERROR(bus_->fetch(tp("t"), tp("bad group!"), 10, consume()),
                        ErrorCode::kInvalidArgument, "group");
  EXPECT_DEVCYCLE_ERROR(bus_->fetch(tp("t"), tp("g"), 0, consume()), ErrorCode::kInvalidArgument,
                        "max");
  ConsumeOptions bad;
  bad.max_deliveries = 0;
  EXPECT_DEVCYCLE_ERROR(bus_->fetch(tp("t"), tp("g"), 1, bad), ErrorCode::kInvalidArgument,
                        "max_deliveries");
  Delivery unknown;
  unknown.message.topic = tp("t");
  unknown.group = tp("g");
  unknown.offset = 42;
  EXPECT_DEVCYCLE_ERROR(bus_->ack(unknown), ErrorCode::kNotFound, "not pending");
  EXPECT_DEVCYCLE_ERROR(bus_->nack(unknown, "x", consume()), ErrorCode::kNotFound, "not pending");
  EXPECT_DEVCYCLE_ERROR(bus_->redrive(tp("t"), tp("g"), {"not-an-id"}), ErrorCode::kInvalidArgument,
                        "ids[0]");
  EXPECT_DEVCYCLE_ERROR(bus_->seek(tp("t"), tp("g"), -1), ErrorCode::kInvalidArgument, "offset");
  EXPECT_DEVCYCLE_ERROR(MessageBus::open("nats://x", *db_), ErrorCode::kInvalidArgument, "bus");
}

TEST_P(MessageBusTest, SubscriptionsHandleEveryMessageInOrderAndDeadLetterPoison) {
  std::mutex mu;
  std::vector<std::string> seen;
  std::atomic<int> poison_attempts{0};
  SubscribeOptions o;
  o.consume.max_deliveries = 3;
  o.poll_interval = 5ms;
  auto sub = bus_->subscribe(
      tp("jobs"), tp("workers"),
      [&](const Delivery& d) {
        if (d.message.payload == "poison") {
          ++poison_attempts;
          throw std::runtime_error("poison pill");
        }
        std::lock_guard lock(mu);
        seen.push_back(d.message.payload);
        return Ack::kAck;
      },
      o);
  std::vector<Message> batch;
  for (int i = 0; i < 50; ++i) {
    batch.push_back({tp("jobs"), "same-key", {}, std::to_string(i)});
    if (i == 20) batch.push_back({tp("jobs"), "", {}, "poison"});
  }
  bus_->publish_batch(batch).get();
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (seen.size() == 50 && poison_attempts == 3) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  sub.reset();
  std::vector<std::string> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(std::to_string(i));
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(poison_attempts.load(), 3);
  const auto dead = bus_->dead_letters(tp("jobs"), tp("workers"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "poison pill");
  EXPECT_EQ(dead[0].delivery.delivery_count, 3);
}

// Slow handlers (on the real clock), two subscriptions of one group: each
// acknowledges what it handled before the visibility timeout runs out, and
// takes no more than it can handle in time, so the other never gets a
// message it handles (each message is handled once).
TEST_P(MessageBusTest, ASubscriptionWithSlowHandlersHandlesEachMessageOnce) {
  auto bus = open_bus(*db_, SystemClock::instance());
  for (int i = 0; i < 10; ++i) bus->publish({tp("slow"), "", {}, std::to_string(i)}).get();
  std::mutex mu;
  std::map<std::string, int> handled;
  SubscribeOptions so;
  so.batch = 10;
  so.consume.visibility_timeout = 3s;  // less than the 4 s that the first 10 take in a row
  so.poll_interval = 20ms;
  const auto slow = [&](const Delivery& d) {
    std::this_thread::sleep_for(400ms);
    std::lock_guard lock(mu);
    ++handled[d.message.payload];
    return Ack::kAck;
  };
  auto sub = bus->subscribe(tp("slow"), tp("g"), slow, so);
  auto other = bus->subscribe(tp("slow"), tp("g"), slow, so);
  const auto count = [&] {
    std::lock_guard lock(mu);
    return handled.size();
  };
  for (int i = 0; i < 600 && count() < 10; ++i) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(3500ms);  // past every visibility timeout: nothing comes again
  sub.reset();
  other.reset();
  std::lock_guard lock(mu);
  ASSERT_EQ(handled.size(), 10u);
  for (const auto& [payload, times] : handled) EXPECT_EQ(times, 1) << payload;
}

TEST_P(MessageBusTest, ConcurrentPublishersLoseNothing) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) publish(tp("c"), std::to_string(t) + "-" + std::to_string(i));
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> got;
  std::set<std::int64_t> offsets;
  for (const auto& d : fetch_all(*bus_, tp("c"), tp("g"), 800, consume())) {
    got.insert(d.message.payload);
    offsets.insert(d.offset);
  }
  EXPECT_EQ(got.size(), 800u);
  ASSERT_EQ(offsets.size(), 800u);
  EXPECT_EQ(*offsets.begin(), 0);
  EXPECT_EQ(*offsets.rbegin(), 799) << "offsets are contiguous";
}

#ifdef DEVCYCLE_BUS_CONFORMANCE_KAFKA
// The Kafka bus keeps nothing in the Database; one backend is enough.
std::vector<testing::Backend> bus_backends() {
  return {testing::Backend{"kafka",
                           [](const testing::TempDir&) { return std::string("sqlite::memory:"); }}};
}
std::vector<testing::Backend> durable_bus_backends() { return bus_backends(); }
#else
std::vector<testing::Backend> bus_backends() { return testing::database_backends("bus.db"); }
std::vector<testing::Backend> durable_bus_backends() {
  return testing::durable_database_backends("bus.db");
}
#endif

INSTANTIATE_TEST_SUITE_P(Backends, MessageBusTest, ::testing::ValuesIn(bus_backends()),
                         testing::backend_name);

#ifndef DEVCYCLE_BUS_CONFORMANCE_KAFKA
// How inproc stores messages: segments of consecutive offsets published
// together (messaging/bus_segments.h).
class InprocSegmentsTest : public MessageBusTest {};

// A purge takes a segment whole once none of its messages is pending or
// dead, and keeps it whole otherwise.
TEST_P(InprocSegmentsTest, APurgeTakesWholeSegmentsNobodyHolds) {
  std::vector<Message> batch;
  for (int i = 0; i < 300; ++i) batch.push_back({"t", "", {}, std::to_string(i)});
  bus_->publish_batch(batch).get();  // offsets 0..255 and 256..299
  auto got = bus_->fetch("t", "g", 1, consume());
  ASSERT_EQ(payloads(got), std::vector<std::string>{"0"});  // 0..63 are pending now
  clock_->advance(1h);
  EXPECT_EQ(bus_->purge(clock_->now() - 1000), 44);
  bus_->ack(got);
  const auto rest = fetch_all(*bus_, "t", "g", 255, consume());
  ASSERT_EQ(rest.size(), 255u);
  EXPECT_EQ(rest.front().message.payload, "1");
  EXPECT_EQ(rest.back().message.payload, "255");
  EXPECT_TRUE(bus_->fetch("t", "g", 10, consume()).empty());
  EXPECT_EQ(bus_->purge(clock_->now() - 1000), 256);
  EXPECT_TRUE(bus_->fetch("t", "other", 10, consume()).empty());
}

// Messages stored by the first schema (a row each in bus_messages) are
// moved into one-message segments by the upgrade and read as they were.
TEST_P(InprocSegmentsTest, MessagesOfTheFirstSchemaAreReadAfterTheUpgrade) {
  testing::TempDir other;
  auto db = Database::open(GetParam().url(other));
  const std::vector<Migration> first{MessageBus::migrations().at(0)};
  db->migrate(first);
  const std::string id = new_uuid_v7();
  db->write([&](Txn& t) {
    t.execute("INSERT INTO bus_topics (topic, next_offset) VALUES ('t', 2)", {});
    t.execute(
        "INSERT INTO bus_messages (topic, msg_offset, id, msg_key, headers, payload, "
        "published_at) VALUES ('t', 0, $1, 'k', '{\"h\":\"v\"}', $2, 5), "
        "('t', 1, $3, '', '{}', $4, 6)",
        {id, Blob::of(std::string("a\0b", 3)), new_uuid_v7(), Blob::of("second")});
  });
  BusOptions o;
  o.clock = clock_;
  auto bus = MessageBus::open("inproc://", *db, o);
  const auto got = bus->fetch("t", "g", 10, consume());
  ASSERT_EQ(payloads(got), (std::vector<std::string>{std::string("a\0b", 3), "second"}));
  EXPECT_EQ(got[0].id, id);
  EXPECT_EQ(got[0].message.key, "k");
  EXPECT_EQ(got[0].message.headers, (std::map<std::string, std::string>{{"h", "v"}}));
  EXPECT_EQ(got[0].published_at, 5);
  EXPECT_EQ(bus->publish({"t", "", {}, "third"}).get().offset, 2);
}

// A segment whose body does not decode is reported, not misread.
TEST_P(InprocSegmentsTest, ACorruptSegmentIsAnErrorNotGarbage) {
  bus_->publish_batch({{"t", "", {}, "a"}, {"t", "", {}, "b"}}).get();
  db_->write([&](Txn& t) {
    t.execute("UPDATE bus_segments SET body = $1 WHERE topic = 't'",
              {Blob::of(std::string("\x01\x61\xff", 3))});
  });
  EXPECT_DEVCYCLE_ERROR(bus_->fetch("t", "g", 10, consume()), ErrorCode::kInternal, "corrupt");
}

INSTANTIATE_TEST_SUITE_P(Backends, InprocSegmentsTest, ::testing::ValuesIn(bus_backends()),
                         testing::backend_name);
#endif

// Durability: what was published, pending and dead survives a restart.
class DurableMessageBusTest : public MessageBusTest {};

TEST_P(DurableMessageBusTest, PendingAckedAndDeadSurviveARestart) {
  publish(tp("t"), "acked");
  publish(tp("t"), "pending");
  publish(tp("t"), "dead");
  publish(tp("t"), "new");
  auto got = bus_->fetch(tp("t"), tp("g"), 3, consume(1));
  ASSERT_EQ(got.size(), 3u);
  bus_->ack(got[0]);
  bus_->nack(got[2], "bad", consume(1));
  open();  // a new process, as far as the bus can tell
  if (kKafka) {
    // On Kafka what a process had taken and not finished lives in its
    // memory: the next one gets it at once, counting from 1 again.
    const auto again = bus_->fetch(tp("t"), tp("g"), 10, consume(2));
    EXPECT_EQ(payloads(again), (std::vector<std::string>{"pending", "new"}));
    EXPECT_EQ(again[0].delivery_count, 1);
    ASSERT_EQ(bus_->dead_letters(tp("t"), tp("g")).size(), 1u);
    return;
  }
  EXPECT_EQ(payloads(bus_->fetch(tp("t"), tp("g"), 10, consume(2))),
            (std::vector<std::string>{"new"}));
  clock_->advance(11s);
  EXPECT_EQ(payloads(bus_->fetch(tp("t"), tp("g"), 10, consume(2))),
            (std::vector<std::string>{"pending", "new"}));
  ASSERT_EQ(bus_->dead_letters(tp("t"), tp("g")).size(), 1u);
  EXPECT_EQ(bus_->dead_letters(tp("t"), tp("g"))[0].delivery.message.payload, "dead");
}

// Two processes (two database handles, so two connections) publishing to one
// topic at once: every message is stored once, at an offset of its own, and
// the offsets have no gaps — on PostgreSQL, transactions that read the
// topic's next offset at the same moment must not both take it.
TEST_P(DurableMessageBusTest, TwoProcessesPublishingToOneTopicLoseNothing) {
  auto db2 = Database::open(GetParam().url(dir_));
  auto bus2 = open_bus(*db2);
  std::vector<std::thread> threads;
  for (auto* bus : {bus_.get(), bus2.get(), bus_.get(), bus2.get()}) {
    threads.emplace_back([&, bus, n = threads.size()] {
      try {
        for (int i = 0; i < 100; ++i) {
          bus->publish({tp("two"), "", {}, std::to_string(n) + "-" + std::to_string(i)}).get();
        }
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> got;
  std::set<std::int64_t> offsets;
  for (const auto& d : fetch_all(*bus_, tp("two"), tp("g"), 400, consume())) {
    got.insert(d.message.payload);
    offsets.insert(d.offset);
  }
  EXPECT_EQ(got.size(), 400u);
  if (kKafka) return;  // offsets are the broker's, per partition
  ASSERT_EQ(offsets.size(), 400u);
  EXPECT_EQ(*offsets.begin(), 0);
  EXPECT_EQ(*offsets.rbegin(), 399) << "offsets are contiguous";
}

#ifndef DEVCYCLE_BUS_CONFORMANCE_KAFKA
// Two processes consuming one group at once: each message is delivered to
// one of them (none is in two hands at the same time), and all are consumed.
// (On Kafka the broker gives each partition to one consumer of a group: a
// second consumer of a one-partition topic gets nothing to share.)
TEST_P(DurableMessageBusTest, TwoProcessesConsumingOneGroupShareTheMessages) {
  auto db2 = Database::open(GetParam().url(dir_));
  auto bus2 = open_bus(*db2);
  std::vector<Message> batch;
  for (int i = 0; i < 400; ++i) batch.push_back({tp("shared"), "", {}, std::to_string(i)});
  bus_->publish_batch(batch).get();
  std::mutex mu;
  std::multiset<std::string> delivered;
  std::vector<std::thread> threads;
  for (auto* bus : {bus_.get(), bus2.get()}) {
    threads.emplace_back([&, bus] {
      for (int empty = 0; empty < 20;) {
        std::vector<Delivery> got;
        try {
          got = bus->fetch(tp("shared"), tp("g"), 10, consume());
        } catch (const Error& e) {
          ADD_FAILURE() << e.what();
          return;
        }
        if (got.empty()) {
          ++empty;
          std::this_thread::sleep_for(5ms);
          continue;
        }
        {
          std::lock_guard lock(mu);
          for (const auto& d : got) delivered.insert(d.message.payload);
        }
        try {
          bus->ack(got);
        } catch (const Error& e) {
          ADD_FAILURE() << e.what();
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(delivered.size(), 400u);
  EXPECT_EQ(std::set<std::string>(delivered.begin(), delivered.end()).size(), 400u)
      << "a message went to both";
}
#endif

INSTANTIATE_TEST_SUITE_P(Backends, DurableMessageBusTest,
                         ::testing::ValuesIn(durable_bus_backends()), testing::backend_name);

}  // namespace
}  // namespace devcycle
