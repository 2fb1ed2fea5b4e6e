// The transactional outbox's relay on every database backend: several relays
// on one database publish each row once and in order; a row the bus refuses
// for good is set aside with the reason instead of holding up the rest.
#include "messaging/outbox.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/messaging/messaging.h"
#include "support/backends.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

class OutboxTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    db_->migrate(internal::Outbox::migrations());
    BusOptions o;
    o.max_payload_bytes = 1024;
    // The bus on a database of its own, so that what it holds is only what
    // the relays published.
    bus_db_ = Database::open("sqlite::memory:");
    bus_ = MessageBus::open("inproc://", *bus_db_, o);
  }

  void add(const std::vector<Message>& messages) {
    db_->write([&](Txn& t) { internal::Outbox::add(t, messages, 1); });
  }

  std::vector<std::string> published(const std::string& topic) {
    std::vector<std::string> out;
    for (;;) {
      auto got = bus_->fetch(topic, "check", 1000);
      if (got.empty()) return out;
      bus_->ack(got);
      for (const auto& d : got) out.push_back(d.message.payload);
    }
  }

  std::int64_t rows(const std::string& where = "1 = 1") {
    return db_->read([&](Txn& t) {
      return t.query("SELECT COUNT(*) FROM outbox WHERE " + where)[0][0].as_int();
    });
  }

  void wait_until_empty() {
    for (int i = 0; i < 1000 && rows("refused IS NULL") > 0; ++i) std::this_thread::sleep_for(10ms);
  }

  testing::TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Database> bus_db_;
  std::unique_ptr<MessageBus> bus_;
};

// Engines sharing a database each run a relay: every row still reaches the
// bus once, in the order written.
TEST_P(OutboxTest, SeveralRelaysPublishEachRowOnceAndInOrder) {
  if (GetParam().name == "sqlite_memory") GTEST_SKIP() << "a second open is another database";
  auto db2 = Database::open(GetParam().url(dir_));
  std::vector<std::string> want;
  for (int i = 0; i < 1500; ++i) want.push_back(std::to_string(i));
  {
    internal::OutboxRelay a(*db_, *bus_, 5ms), b(*db2, *bus_, 5ms);
    std::thread writer([&] {
      for (std::size_t first = 0; first < want.size(); first += 100) {
        std::vector<Message> batch;
        for (std::size_t i = first; i < first + 100; ++i) batch.push_back({"t", "k", {}, want[i]});
        add(batch);
        a.wake();
        b.wake();
      }
    });
    std::thread drainer([&] {
      for (int i = 0; i < 50; ++i) b.drain();
    });
    for (int i = 0; i < 50; ++i) a.drain();
    writer.join();
    drainer.join();
    wait_until_empty();
  }
  EXPECT_EQ(rows(), 0);
  EXPECT_EQ(published("t"), want);
}

TEST_P(OutboxTest, ARowTheBusRefusesIsSetAsideAndTheRestGoOn) {
  internal::OutboxRelay relay(*db_, *bus_, 1h);  // drained by hand
  add({{"t", "k", {}, "before"},
       {"t", "k", {}, std::string(2000, 'x')},  // over the bus's 1 KiB
       {"t", "k", {}, "after"}});
  relay.drain();
  add({{"t", "k", {}, "later"}});
  relay.drain();
  EXPECT_EQ(published("t"), (std::vector<std::string>{"before", "after", "later"}));
  ASSERT_EQ(rows(), 1);
  const auto why =
      db_->read([](Txn& t) { return t.query("SELECT refused FROM outbox")[0][0].as_text(); });
  EXPECT_NE(why.find("payload"), std::string::npos) << why;
  EXPECT_EQ(relay.drain(), 0) << "a refused row is not tried again";
}

TEST_P(OutboxTest, AnInvalidTopicIsRefusedForGoodToo) {
  internal::OutboxRelay relay(*db_, *bus_, 1h);
  add({{"t", "k", {}, "one"}, {"bad topic", "k", {}, "two"}});
  relay.drain();
  EXPECT_EQ(published("t"), (std::vector<std::string>{"one"}));
  EXPECT_EQ(rows("refused IS NOT NULL"), 1) << "an invalid topic is refused for good";
  EXPECT_NE(db_->read([](Txn& t) { return t.query("SELECT refused FROM outbox")[0][0].as_text(); })
                .find("topic"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, OutboxTest,
                         ::testing::ValuesIn(testing::database_backends("outbox.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
