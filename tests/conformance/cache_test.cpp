// The Cache conformance suite: every backend must pass all of it.
// Instantiated over memory://, and over Redis when DEVCYCLE_TEST_REDIS_URL
// names a server (ctest label `integration` starts one with scripts/redis.sh).
// Time moves through advance(): a ManualClock for memory, real time (with
// generous margins) for a server that keeps its own clock.
#include "devcycle/cache/cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <thread>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

struct CacheBackend {
  std::string name;
  // Returns the cache and a function that moves its time forward.
  std::function<std::pair<std::unique_ptr<Cache>, std::function<void(std::chrono::milliseconds)>>()>
      make;
};

void PrintTo(const CacheBackend& b, std::ostream* os) { *os << b.name; }

class CacheTest : public ::testing::TestWithParam<CacheBackend> {
 protected:
  void SetUp() override {
    auto [cache, advance] = GetParam().make();
    cache_ = std::move(cache);
    advance_ = std::move(advance);
  }
  Cache& cache() { return *cache_; }
  void advance(std::chrono::milliseconds d) { advance_(d); }

 private:
  std::unique_ptr<Cache> cache_;
  std::function<void(std::chrono::milliseconds)> advance_;
};

TEST_P(CacheTest, GetSetOverwriteErase) {
  EXPECT_EQ(cache().get("k"), std::nullopt);
  cache().set("k", "v1");
  EXPECT_EQ(cache().get("k"), "v1");
  cache().set("k", std::string("v2\0bin", 6));
  EXPECT_EQ(cache().get("k"), std::string("v2\0bin", 6));
  EXPECT_TRUE(cache().erase("k"));
  EXPECT_FALSE(cache().erase("k"));
  EXPECT_EQ(cache().get("k"), std::nullopt);
}

TEST_P(CacheTest, TtlExpires) {
  cache().set("short", "x", 100ms);
  cache().set("forever", "y");
  EXPECT_EQ(cache().get("short"), "x");
  advance(1500ms);
  EXPECT_EQ(cache().get("short"), std::nullopt);
  EXPECT_EQ(cache().get("forever"), "y");
  EXPECT_FALSE(cache().erase("short"));
}

TEST_P(CacheTest, SetIfAbsent) {
  EXPECT_TRUE(cache().set_if_absent("lock", "a", 100ms));
  EXPECT_FALSE(cache().set_if_absent("lock", "b"));
  EXPECT_EQ(cache().get("lock"), "a");
  advance(1500ms);
  EXPECT_TRUE(cache().set_if_absent("lock", "c"));
  EXPECT_EQ(cache().get("lock"), "c");
}

TEST_P(CacheTest, IncrementCountsAndKeepsTheFirstTtl) {
  EXPECT_EQ(cache().increment("n"), 1);
  EXPECT_EQ(cache().increment("n", 41), 42);
  EXPECT_EQ(cache().increment("n", -50), -8);
  EXPECT_EQ(cache().get("n"), "-8");

  EXPECT_EQ(cache().increment("window", 1, 1000ms), 1);
  advance(600ms);
  EXPECT_EQ(cache().increment("window", 1, 1000ms), 2);  // does not extend the TTL
  advance(1400ms);
  EXPECT_EQ(cache().increment("window", 1, 1000ms), 1);  // expired: a new window
}

TEST_P(CacheTest, IncrementRefusesNonIntegersAndOverflow) {
  cache().set("text", "hello");
  EXPECT_DEVCYCLE_ERROR(cache().increment("text"), ErrorCode::kInvalidArgument, "text",
                        "not an integer");
  EXPECT_EQ(cache().get("text"), "hello");
  cache().set("big", "9223372036854775807");
  EXPECT_DEVCYCLE_ERROR(cache().increment("big"), ErrorCode::kInvalidArgument, "big", "overflow");
  EXPECT_EQ(cache().get("big"), "9223372036854775807");
}

TEST_P(CacheTest, CompareAndSet) {
  EXPECT_TRUE(cache().compare_and_set("v", std::nullopt, "1"));
  EXPECT_FALSE(cache().compare_and_set("v", std::nullopt, "2"));
  EXPECT_FALSE(cache().compare_and_set("v", std::string("0"), "2"));
  EXPECT_EQ(cache().get("v"), "1");
  EXPECT_TRUE(cache().compare_and_set("v", std::string("1"), "2", 100ms));
  EXPECT_EQ(cache().get("v"), "2");
  advance(1500ms);
  EXPECT_FALSE(cache().compare_and_set("v", std::string("2"), "3"));
  EXPECT_TRUE(cache().compare_and_set("v", std::nullopt, "fresh"));
}

TEST_P(CacheTest, TokenBucketAllowsBurstThenRefillsAtRate) {
  // 2 tokens per second, burst 5: five pass at once, the sixth waits 500 ms.
  for (int i = 0; i < 5; ++i) {
    auto r = cache().take("bucket", 2, 5);
    EXPECT_TRUE(r.allowed) << i;
    EXPECT_NEAR(r.remaining, 4 - i, 0.05);
  }
  auto denied = cache().take("bucket", 2, 5);
  EXPECT_FALSE(denied.allowed);
  EXPECT_GT(denied.retry_after, 0ms);
  EXPECT_LE(denied.retry_after, 500ms);
  advance(1200ms);  // at least two tokens back
  EXPECT_TRUE(cache().take("bucket", 2, 5).allowed);
  EXPECT_TRUE(cache().take("bucket", 2, 5).allowed);
  // A take of several tokens is all or nothing.
  EXPECT_FALSE(cache().take("bucket", 2, 5, 5).allowed);
}

TEST_P(CacheTest, TokenBucketsAreSeparateFromStringKeys) {
  cache().set("shared", "text");
  EXPECT_TRUE(cache().take("shared", 1, 1).allowed);
  EXPECT_EQ(cache().get("shared"), "text");
}

TEST_P(CacheTest, ConcurrentTakesNeverExceedTheBurst) {
  // A rate so slow that no token comes back during the test.
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (cache().take("hot", 0.001, 20).allowed) ++allowed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 20);
}

TEST_P(CacheTest, ConcurrentIncrementsAreAtomic) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 250; ++i) cache().increment("counter");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache().get("counter"), "2000");
}

TEST_P(CacheTest, BadArgumentsNameTheArgument) {
  EXPECT_DEVCYCLE_ERROR(cache().get(""), ErrorCode::kInvalidArgument, "key");
  EXPECT_DEVCYCLE_ERROR(cache().set("k", "v", 0ms), ErrorCode::kInvalidArgument, "ttl");
  EXPECT_DEVCYCLE_ERROR(cache().set("k", "v", -5ms), ErrorCode::kInvalidArgument, "ttl");
  EXPECT_DEVCYCLE_ERROR(cache().take("b", 0, 5), ErrorCode::kInvalidArgument, "rate");
  EXPECT_DEVCYCLE_ERROR(cache().take("b", 1, 0.5), ErrorCode::kInvalidArgument, "burst");
  EXPECT_DEVCYCLE_ERROR(cache().take("b", 1, 5, 6), ErrorCode::kInvalidArgument, "tokens");
  EXPECT_DEVCYCLE_ERROR(cache().take("b", 1, 5, 0), ErrorCode::kInvalidArgument, "tokens");
  EXPECT_EQ(cache().get("k"), std::nullopt);  // nothing written by a refused call
}

std::vector<CacheBackend> cache_backends() {
  std::vector<CacheBackend> all{CacheBackend{
      "memory", [] {
        auto clock = std::make_shared<ManualClock>();
        CacheOptions options;
        options.clock = clock;
        return std::make_pair(Cache::open("memory://", options),
                              std::function<void(std::chrono::milliseconds)>(
                                  [clock](std::chrono::milliseconds d) { clock->advance(d); }));
      }}};
  // Redis keeps its own clock: time passes for real there. Each test gets
  // a key prefix of its own on the shared server.
  if (const char* url = std::getenv("DEVCYCLE_TEST_REDIS_URL")) {
    all.push_back(CacheBackend{
        "redis", [base = std::string(url)] {
          static std::atomic<int> n{0};
          const auto prefix = "t" + std::to_string(::getpid()) + "_" + std::to_string(++n) + ":";
          return std::make_pair(
              Cache::open(base + "?prefix=" + prefix),
              std::function<void(std::chrono::milliseconds)>(
                  [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }));
        }});
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Backends, CacheTest, ::testing::ValuesIn(cache_backends()),
                         [](const auto& p) { return p.param.name; });

TEST(CacheOpenTest, UrlsAreChecked) {
  EXPECT_DEVCYCLE_ERROR(Cache::open("memory://host"), ErrorCode::kInvalidArgument, "memory://");
  EXPECT_DEVCYCLE_ERROR(Cache::open("memcached://h:1"), ErrorCode::kInvalidArgument,
                        "unknown scheme \"memcached\"");
  EXPECT_DEVCYCLE_ERROR(Cache::open("redis://h:6379/x"), ErrorCode::kInvalidArgument, "\"x\"");
  EXPECT_DEVCYCLE_ERROR(Cache::open("redis://h:6379/0?colour=blue"), ErrorCode::kInvalidArgument,
                        "unknown parameter \"colour\"");
  EXPECT_DEVCYCLE_ERROR(Cache::open("redis://h:6379/0?timeout_ms=0"), ErrorCode::kInvalidArgument,
                        "timeout_ms=0");
  // Nothing listens on port 1; the password is not in the message.
  EXPECT_DEVCYCLE_ERROR(Cache::open("redis://:hunter2@127.0.0.1:1/0"), ErrorCode::kUnavailable,
                        "redis://:***@127.0.0.1:1/0", "cannot connect");
  EXPECT_DEVCYCLE_ERROR(Cache::open("not a url"), ErrorCode::kInvalidArgument, "not a valid URL");
}

}  // namespace
}  // namespace devcycle
