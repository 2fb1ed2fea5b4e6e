// Direct agent-to-agent messages and their receipts, over every Database backend.
#include "devcycle/messaging/agent_messages.h"

#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "devcycle/messaging/messaging.h"
#include "messaging/outbox.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/table_snapshot.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

class AgentMessagesTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    RegistryOptions ro;
    ro.clock = clock_;
    registry_ = std::make_unique<Registry>(*db_, ro);
    registry_->define_type({"worker", "", "{}"});
    messages_ = std::make_unique<AgentMessages>(*db_, *registry_, clock_);
    coder_ = agent("code-generator");
    tester_ = agent("test-engineer");
  }

  std::string agent(const std::string& name) {
    AgentSpec spec;
    spec.owner = "ops";
    spec.name = name;
    spec.type = "worker";
    return registry_->create(spec).id;
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<AgentMessages> messages_;
  std::string coder_, tester_;
};

TEST_P(AgentMessagesTest, SentDeliveredReadWithTheirTimes) {
  const auto sent = messages_->send(coder_, tester_, "code.ready", R"({"commit": "abc123"})");
  EXPECT_EQ(sent.status, MessageStatus::kSent);
  EXPECT_EQ(sent.sent_at, clock_->now());
  EXPECT_FALSE(sent.delivered_at);

  clock_->advance(2s);
  const auto inbox = messages_->receive(tester_);
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_EQ(inbox[0].id, sent.id);
  EXPECT_EQ(inbox[0].payload, R"({"commit":"abc123"})");
  EXPECT_EQ(inbox[0].status, MessageStatus::kDelivered);
  EXPECT_EQ(inbox[0].delivered_at, clock_->now());
  EXPECT_TRUE(messages_->receive(tester_).empty()) << "delivered once";
  EXPECT_TRUE(messages_->receive(coder_).empty()) << "the sender's inbox is its own";

  clock_->advance(3s);
  const auto read = messages_->mark_read(sent.id, tester_);
  EXPECT_EQ(read.status, MessageStatus::kRead);
  EXPECT_EQ(read.read_at, clock_->now());
  EXPECT_EQ(read.delivered_at, clock_->now() - 3'000'000);
  const auto stored = messages_->get(sent.id);
  EXPECT_EQ(stored.status, MessageStatus::kRead);
  EXPECT_EQ(stored.read_at, read.read_at);
  EXPECT_EQ(messages_->mark_read(sent.id, tester_).read_at, read.read_at) << "idempotent";
}

TEST_P(AgentMessagesTest, InboxIsOldestFirstAndPaged) {
  for (int i = 0; i < 5; ++i) messages_->send(coder_, tester_, "n", std::to_string(i));
  auto first = messages_->receive(tester_, 3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].payload, "0");
  EXPECT_EQ(first[2].payload, "2");
  auto rest = messages_->receive(tester_, 3);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[1].payload, "4");
}

TEST_P(AgentMessagesTest, BadInputIsRefusedNamingTheFieldAndStoresNothing) {
  const auto before = testing::table_snapshot(*db_, {"messages"});
  const std::string nobody = "0190c8a0-0000-7000-8000-0000000000ff";
  EXPECT_DEVCYCLE_ERROR(messages_->send(coder_, nobody, "t", "{}"), ErrorCode::kNotFound,
                        "recipient: agent");
  EXPECT_DEVCYCLE_ERROR(messages_->send(nobody, tester_, "t", "{}"), ErrorCode::kNotFound,
                        "sender: agent");
  EXPECT_DEVCYCLE_ERROR(messages_->send(coder_, "../etc", "t", "{}"), ErrorCode::kInvalidArgument,
                        "recipient");
  EXPECT_DEVCYCLE_ERROR(messages_->send(coder_, tester_, "Bad Type", "{}"),
                        ErrorCode::kInvalidArgument, "message_type");
  EXPECT_DEVCYCLE_ERROR(messages_->send(coder_, tester_, "t", "{not json"),
                        ErrorCode::kInvalidArgument, "payload");
  EXPECT_DEVCYCLE_ERROR(messages_->send(coder_, tester_, "t", std::string(1024 * 1024 + 1, ' ')),
                        ErrorCode::kInvalidArgument, "payload");
  EXPECT_DEVCYCLE_ERROR(messages_->receive(tester_, 0), ErrorCode::kInvalidArgument, "limit");
  EXPECT_DEVCYCLE_ERROR(messages_->receive(nobody), ErrorCode::kNotFound, "recipient: agent");
  EXPECT_EQ(testing::table_snapshot(*db_, {"messages"}), before);

  const auto m = messages_->send(coder_, tester_, "t", "{}");
  EXPECT_DEVCYCLE_ERROR(messages_->mark_read(m.id, coder_), ErrorCode::kPermissionDenied,
                        "only the recipient");
  EXPECT_EQ(messages_->get(m.id).status, MessageStatus::kSent);
  EXPECT_DEVCYCLE_ERROR(messages_->mark_read(nobody, tester_), ErrorCode::kNotFound, "not found");
  EXPECT_DEVCYCLE_ERROR(messages_->get("x"), ErrorCode::kNotFound, "not found");
}

TEST_P(AgentMessagesTest, ReceiptsGoToTheBusThroughTheOutboxWithTheirChange) {
  auto bus = MessageBus::open("inproc://", *db_);
  AgentMessages announced(*db_, *registry_, clock_, "devcycle.messages");
  internal::OutboxRelay relay(*db_, *bus, 1h);  // drained by hand below
  const auto sent = announced.send(coder_, tester_, "code.ready", R"({"commit": "abc"})");
  clock_->advance(1s);
  announced.receive(tester_);
  clock_->advance(1s);
  announced.mark_read(sent.id, tester_);
  announced.mark_read(sent.id, tester_);  // already read: nothing new to announce
  // A refused change announces nothing either.
  EXPECT_DEVCYCLE_ERROR(announced.mark_read(sent.id, coder_), ErrorCode::kPermissionDenied, "");
  relay.drain();  // its own thread may have published some already
  // One key: the bus hands out its next message once the last is acknowledged.
  std::vector<Delivery> got;
  for (int i = 0; i < 10 && got.size() < 3; ++i) {
    for (auto& d : bus->fetch("devcycle.messages", "watcher", 10)) {
      bus->ack(d);
      got.push_back(std::move(d));
    }
  }
  ASSERT_EQ(got.size(), 3u);
  std::vector<std::string> events;
  for (const auto& d : got) {
    EXPECT_EQ(d.message.key, tester_) << "keyed by recipient, so they stay in order";
    const auto j = nlohmann::json::parse(d.message.payload);
    EXPECT_EQ(j["id"], sent.id);
    events.push_back(j["event"]);
  }
  EXPECT_EQ(events,
            (std::vector<std::string>{"message.sent", "message.delivered", "message.read"}));
  const auto first = nlohmann::json::parse(got[0].message.payload);
  EXPECT_EQ(first["payload"], nlohmann::json::parse(R"({"commit": "abc"})"));
  const auto last = nlohmann::json::parse(got[2].message.payload);
  EXPECT_EQ(last["read_at"], clock_->now());
  EXPECT_FALSE(last.contains("payload")) << "the payload travels once, with the send";
  // A large payload is announced by its size, so that the receipt stays
  // small; the message itself has it.
  const std::string large = "\"" + std::string(100 * 1024, 'x') + "\"";
  const auto big = announced.send(coder_, tester_, "big", large);
  relay.drain();
  const auto announced_big = bus->fetch("devcycle.messages", "watcher", 10);
  ASSERT_EQ(announced_big.size(), 1u);
  const auto b = nlohmann::json::parse(announced_big[0].message.payload);
  bus->ack(announced_big);
  EXPECT_EQ(b["id"], big.id);
  EXPECT_FALSE(b.contains("payload"));
  EXPECT_EQ(b["payload_bytes"], large.size());
  EXPECT_EQ(announced.get(big.id).payload, large);
  // Without a topic nothing goes to the outbox, and the bus had no more.
  messages_->send(coder_, tester_, "quiet", "{}");
  const auto left = [&] {
    return db_->read(
        [](Txn& t) { return t.query("SELECT COUNT(*) FROM outbox", {})[0][0].as_int(); });
  };
  EXPECT_EQ(left(), 0);
  EXPECT_TRUE(bus->fetch("devcycle.messages", "watcher", 10).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, AgentMessagesTest,
                         ::testing::ValuesIn(testing::database_backends("messages.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

// Two servers on one database serving one recipient's receive() at once:
// each message is delivered once, by one of them.
class SharedAgentMessagesTest : public AgentMessagesTest {};

TEST_P(SharedAgentMessagesTest, TwoProcessesReceivingForOneAgentDeliverEachMessageOnce) {
  auto db2 = Database::open(GetParam().url(dir_));
  Registry registry2(*db2);
  AgentMessages messages2(*db2, registry2, clock_);
  for (int i = 0; i < 200; ++i) messages_->send(coder_, tester_, "n", std::to_string(i));
  std::mutex mu;
  std::multiset<std::string> delivered;
  std::vector<std::thread> threads;
  for (auto* m : {messages_.get(), &messages2}) {
    threads.emplace_back([&, m] {
      try {
        for (;;) {
          const auto got = m->receive(tester_, 10);
          if (got.empty()) return;
          std::lock_guard lock(mu);
          for (const auto& d : got) delivered.insert(d.id);
        }
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(delivered.size(), 200u) << "a message was delivered twice";
  EXPECT_EQ(std::set<std::string>(delivered.begin(), delivered.end()).size(), 200u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SharedAgentMessagesTest,
                         ::testing::ValuesIn(testing::durable_database_backends("messages.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
