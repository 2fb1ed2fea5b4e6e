// Fault test (label kafka): the broker is stopped and started again while
// messages are being published and consumed. Every publish whose future
// resolved (the broker acknowledged it) is consumed afterwards; nothing
// acknowledged is lost. Runs a broker of its own (scripts/kafka.sh) on
// 127.0.0.1:19696, so that stopping it disturbs no other test.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "devcycle/common/error.h"
#include "devcycle/messaging/messaging.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPort = "19696";

int kafka_sh(const std::string& args) {
  const std::string cmd =
      std::string("'") + DEVCYCLE_KAFKA_SCRIPT + "' " + args + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

class BrokerRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(kafka_sh("start '" + broker_dir() + "' " + kPort), 0) << "broker did not start";
  }
  void TearDown() override { kafka_sh("stop '" + broker_dir() + "'"); }

  std::string broker_dir() const { return dir_.path().string() + "/broker"; }

  testing::TempDir dir_;
};

TEST_F(BrokerRestartTest, NoAcknowledgedMessageIsLostWhenTheBrokerRestartsMidStream) {
  auto db = Database::open("sqlite::memory:");
  auto bus = MessageBus::open(std::string("kafka://127.0.0.1:") + kPort, *db);
  const std::string topic = "restart", group = "survivors";

  std::mutex mu;
  std::set<std::string> handled;
  SubscribeOptions so;
  so.poll_interval = 10ms;
  auto sub = bus->subscribe(
      topic, group,
      [&](const Delivery& d) {
        std::lock_guard lock(mu);
        handled.insert(d.message.payload);
        return Ack::kAck;
      },
      so);

  // Publish 1,500 messages in groups of 100, waiting for each group; the
  // broker goes down after the fifth group and comes back a moment later.
  std::set<std::string> acknowledged;
  int refused = 0;
  for (int round = 0; round < 15; ++round) {
    if (round == 5) {
      ASSERT_EQ(kafka_sh("stop '" + broker_dir() + "'"), 0);
      std::thread restart([&] {
        std::this_thread::sleep_for(2s);
        kafka_sh("start '" + broker_dir() + "' " + kPort);
      });
      // Published while the broker is down: they wait for it.
      std::vector<std::pair<std::string, std::future<Published>>> pending;
      for (int i = 0; i < 100; ++i) {
        const auto payload = "m" + std::to_string(round * 100 + i);
        pending.emplace_back(payload, bus->publish({topic, "", {}, payload}));
      }
      restart.join();
      for (auto& [payload, f] : pending) {
        try {
          f.get();
          acknowledged.insert(payload);
        } catch (const Error&) {
          ++refused;  // not acknowledged: the bus said so; not counted as lost
        }
      }
      continue;
    }
    std::vector<std::pair<std::string, std::future<Published>>> pending;
    for (int i = 0; i < 100; ++i) {
      const auto payload = "m" + std::to_string(round * 100 + i);
      pending.emplace_back(payload, bus->publish({topic, "", {}, payload}));
    }
    for (auto& [payload, f] : pending) {
      try {
        f.get();
        acknowledged.insert(payload);
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  EXPECT_GE(acknowledged.size(), 1400u) << "the bus should ride out a short outage";

  // Liveness, not speed: give the consumer up to 120 s to catch up.
  for (int i = 0; i < 12'000; ++i) {
    {
      std::lock_guard lock(mu);
      if (std::includes(handled.begin(), handled.end(), acknowledged.begin(), acknowledged.end()))
        break;
    }
    std::this_thread::sleep_for(10ms);
  }
  sub.reset();
  std::vector<std::string> lost;
  {
    std::lock_guard lock(mu);
    std::set_difference(acknowledged.begin(), acknowledged.end(), handled.begin(), handled.end(),
                        std::back_inserter(lost));
  }
  EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged messages never arrived, e.g. "
                            << (lost.empty() ? "" : lost.front());
  RecordProperty("acknowledged", static_cast<int>(acknowledged.size()));
  RecordProperty("refused", refused);
}

// Closing the bus while the broker is down: what could not be delivered
// fails its publisher's future (after close_timeout_ms), never hangs it.
TEST_F(BrokerRestartTest, ClosingWhileTheBrokerIsDownFailsPendingPublishes) {
  auto db = Database::open("sqlite::memory:");
  auto bus =
      MessageBus::open(std::string("kafka://127.0.0.1:") + kPort + "?close_timeout_ms=2000", *db);
  bus->publish({"closing", "", {}, "before"}).get();
  ASSERT_EQ(kafka_sh("stop '" + broker_dir() + "'"), 0);
  std::vector<std::future<Published>> pending;
  for (int i = 0; i < 10; ++i) pending.push_back(bus->publish({"closing", "", {}, "lost"}));
  bus.reset();
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready) << "a publish was left hanging";
    EXPECT_THROW(f.get(), Error);
  }
}

}  // namespace
}  // namespace devcycle
