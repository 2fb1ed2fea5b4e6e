#include "fair_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace devcycle::server {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

// Runs the jobs of a FairQueue against a clock the test moves, recording
// what ran and what was refused.
struct Room {
  TimePoint now{};
  FairQueue queue;
  std::vector<std::string> ran, refused;

  explicit Room(std::size_t capacity, std::size_t max_addresses = 10'000)
      : queue(FairQueue::Options{capacity, 10'000ms, max_addresses}, [this] { return now; }) {}

  bool offer(const std::string& address, const std::string& name) {
    auto pushed = queue.push(
        address, [this, name] { ran.push_back(name); }, [this, name] { refused.push_back(name); });
    if (pushed.refused) pushed.refused();
    return pushed.queued;
  }
  void run_all() {
    while (auto job = queue.pop()) job();
  }
};

TEST(FairQueueTest, ServesInArrivalOrderWhenEveryAddressAsksOnce) {
  Room room(8);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(room.offer("10.0.0." + std::to_string(i), "r" + std::to_string(i)));
  room.run_all();
  EXPECT_EQ(room.ran, (std::vector<std::string>{"r0", "r1", "r2", "r3", "r4"}));
  EXPECT_TRUE(room.refused.empty());
}

TEST(FairQueueTest, AQuietAddressGoesAheadOfOneThatAskedMore) {
  Room room(8);
  for (int i = 0; i < 4; ++i) room.offer("flood", "f" + std::to_string(i));
  room.offer("quiet", "q");
  room.run_all();
  ASSERT_EQ(room.ran.size(), 5u);
  EXPECT_EQ(room.ran[0], "f0");  // it asked first, with no demand yet
  EXPECT_EQ(room.ran[1], "q");   // before the flood's second request
}

TEST(FairQueueTest, WhenFullANewcomerDisplacesTheMostDemandingWaiter) {
  Room room(3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(room.offer("flood", "f" + std::to_string(i)));
  auto pushed = room.queue.push(
      "quiet", [&] { room.ran.push_back("q"); }, [] {});
  EXPECT_TRUE(pushed.queued);
  EXPECT_TRUE(pushed.displaced);  // the queue did not grow: no more work to schedule
  pushed.refused();
  EXPECT_EQ(room.refused, (std::vector<std::string>{"f2"}));  // the flood's newest
  EXPECT_EQ(room.queue.size(), 3u);
  room.run_all();
  EXPECT_EQ(room.ran, (std::vector<std::string>{"f0", "q", "f1"}));
}

TEST(FairQueueTest, WhenFullANewcomerWithNoLessDemandIsRefused) {
  Room room(2);
  EXPECT_TRUE(room.offer("a", "a1"));
  EXPECT_TRUE(room.offer("b", "b1"));
  EXPECT_FALSE(room.offer("c", "c1"));  // a tie: those who came first keep their places
  EXPECT_EQ(room.refused, (std::vector<std::string>{"c1"}));
  EXPECT_FALSE(room.offer("a", "a2"));  // more demand than anyone waiting
  EXPECT_EQ(room.refused, (std::vector<std::string>{"c1", "a2"}));
}

TEST(FairQueueTest, ManyFloodingAddressesCannotKeepOutAQuietOne) {
  // 100 addresses that each keep one request in flight and retry whatever
  // answer they get, against 8 places: once each has asked, a login from an
  // address that has not asked takes a place.
  Room room(8);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) room.offer("flood-" + std::to_string(i), "f");
    if (auto job = room.queue.pop()) job();
  }
  EXPECT_TRUE(room.offer("quiet", "q"));
  room.run_all();
  EXPECT_NE(std::find(room.ran.begin(), room.ran.end(), "q"), room.ran.end());
  EXPECT_EQ(std::find(room.refused.begin(), room.refused.end(), "q"), room.refused.end());
}

TEST(FairQueueTest, DemandHalvesEveryHalfLife) {
  Room room(8);
  for (int i = 0; i < 4; ++i) room.offer("a", "a");
  EXPECT_DOUBLE_EQ(room.queue.demand("a"), 4.0);
  room.now += 10s;
  EXPECT_DOUBLE_EQ(room.queue.demand("a"), 2.0);
  room.now += 20s;
  EXPECT_DOUBLE_EQ(room.queue.demand("a"), 0.5);
  EXPECT_DOUBLE_EQ(room.queue.demand("never"), 0.0);
}

TEST(FairQueueTest, RemembersABoundedNumberOfAddresses) {
  Room room(4, /*max_addresses=*/16);
  for (int i = 0; i < 1000; ++i) {
    room.offer("spray-" + std::to_string(i), "s");
    room.run_all();
  }
  // Addresses beyond the bound are forgotten; the queue still serves.
  EXPECT_LE(room.queue.remembered(), 16u);
  EXPECT_EQ(room.queue.demand("spray-0"), 0.0);
  EXPECT_TRUE(room.offer("late", "l"));
  room.run_all();
  EXPECT_EQ(room.ran.back(), "l");
  EXPECT_EQ(room.ran.size(), 1001u);
}

}  // namespace
}  // namespace devcycle::server
