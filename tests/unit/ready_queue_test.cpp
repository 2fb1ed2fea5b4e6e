#include "workflow/ready_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

namespace devcycle::internal {
namespace {

constexpr Micros kStep = 10'000'000;  // 10 s per priority point

ReadyEntry entry(std::string id, int priority, Micros ready_at, Micros available_at = 0) {
  return {std::move(id), "run", "t", 0, priority, ready_at, available_at ? available_at : ready_at};
}

std::vector<std::string> drain(ReadyQueue& q, Micros now) {
  std::vector<std::string> out;
  while (auto e = q.pop(now)) out.push_back(e->task_id);
  return out;
}

TEST(ReadyQueueTest, HigherPriorityFirstThenEarlierReadyThenArrival) {
  ReadyQueue q(kStep);
  q.push(entry("low", -5, 100), 1000);
  q.push(entry("mid-b", 0, 200), 1000);
  q.push(entry("mid-a", 0, 100), 1000);
  q.push(entry("high", 50, 300), 1000);
  q.push(entry("mid-c", 0, 200), 1000);
  EXPECT_EQ(drain(q, 1000), (std::vector<std::string>{"high", "mid-a", "mid-b", "mid-c", "low"}));
  EXPECT_TRUE(q.empty());
}

TEST(ReadyQueueTest, WaitingEarnsOnePointPerAgingStep) {
  ReadyQueue q(kStep);
  // Ready 3 steps earlier at priority 0 beats priority 2, loses to priority 4.
  q.push(entry("old", 0, 0), 40 * kStep);
  q.push(entry("p2", 2, 3 * kStep), 40 * kStep);
  q.push(entry("p4", 4, 3 * kStep), 40 * kStep);
  EXPECT_EQ(drain(q, 40 * kStep), (std::vector<std::string>{"p4", "old", "p2"}));
}

TEST(ReadyQueueTest, BackoffHoldsATaskUntilItsTime) {
  ReadyQueue q(kStep);
  q.push(entry("later", 100, 0, 5'000), 1'000);
  q.push(entry("now", 0, 0), 1'000);
  EXPECT_EQ(drain(q, 1'000), (std::vector<std::string>{"now"}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(q.pop(4'999));
  EXPECT_EQ(drain(q, 5'000), (std::vector<std::string>{"later"}));
}

TEST(ReadyQueueTest, PushReplacesAndEraseRemoves) {
  ReadyQueue q(kStep);
  q.push(entry("a", 0, 0), 0);
  q.push(entry("b", 1, 0), 0);
  q.push(entry("a", 9, 0), 0);  // a retried task comes back with new facts
  q.erase("b");
  q.erase("missing");
  EXPECT_EQ(q.size(), 1u);
  const auto e = q.pop(0);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->priority, 9);
  EXPECT_FALSE(q.pop(0));
}

TEST(ReadyQueueTest, ExtremePrioritiesAndTimesDoNotOverflow) {
  ReadyQueue q(std::numeric_limits<Micros>::max() / 2);
  q.push(entry("min", std::numeric_limits<int>::min(), 0), 0);
  q.push(entry("max", std::numeric_limits<int>::max(), 0), 0);
  q.push(entry("zero", 0, std::numeric_limits<Micros>::min() / 2), 0);
  EXPECT_EQ(drain(q, 0), (std::vector<std::string>{"max", "zero", "min"}));
}

// Seeded model test: a naive scan over live entries gives the same answers.
TEST(ReadyQueueTest, AgreesWithANaiveModel) {
  std::mt19937 rng(1234);
  ReadyQueue q(kStep);
  struct Model {
    ReadyEntry e;
    std::uint64_t seq;
  };
  std::map<std::string, Model> model;
  std::uint64_t seq = 0;
  Micros now = 0;
  for (int step = 0; step < 50'000; ++step) {
    now += static_cast<Micros>(rng() % 3'000'000);
    const int op = static_cast<int>(rng() % 10);
    const std::string id = "t" + std::to_string(rng() % 300);
    if (op < 5) {
      auto e =
          entry(id, static_cast<int>(rng() % 7) - 3, now - static_cast<Micros>(rng() % 60'000'000),
                now + (rng() % 3 == 0 ? static_cast<Micros>(rng() % 20'000'000) : 0));
      q.push(e, now);
      model[id] = {e, seq++};
    } else if (op < 6) {
      q.erase(id);
      model.erase(id);
    } else {
      const auto got = q.pop(now);
      const Model* best = nullptr;
      auto score = [](const ReadyEntry& e) { return e.priority * kStep - e.ready_at; };
      for (const auto& [k, m] : model) {
        if (m.e.available_at > now) continue;
        if (!best || score(m.e) > score(best->e) ||
            (score(m.e) == score(best->e) &&
             (m.e.ready_at < best->e.ready_at ||
              (m.e.ready_at == best->e.ready_at && m.seq < best->seq))))
          best = &m;
      }
      ASSERT_EQ(got.has_value(), best != nullptr) << "step " << step;
      if (best) {
        ASSERT_EQ(got->task_id, best->e.task_id) << "step " << step;
        model.erase(got->task_id);
      }
    }
    ASSERT_EQ(q.size(), model.size());
  }
}

}  // namespace
}  // namespace devcycle::internal
