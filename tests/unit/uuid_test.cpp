#include "devcycle/common/uuid.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

namespace devcycle {
namespace {

TEST(UuidTest, IsVersion7WithRfcVariant) {
  const auto id = new_uuid_v7();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_TRUE(is_uuid(id));
  EXPECT_EQ(id[14], '7');
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
}

TEST(UuidTest, TimestampIsTheCurrentMillisecond) {
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto id = new_uuid_v7();
  std::string hex = id.substr(0, 8) + id.substr(9, 4);
  const auto ms = std::stoll(hex, nullptr, 16);
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, before + 60'000);
}

TEST(UuidTest, StrictlyIncreasingAndUniqueAcrossThreads) {
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) per_thread[t].push_back(new_uuid_v7());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) {
    for (std::size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]);
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), 20000u);
}

TEST(UuidTest, RecognisesOnlyCanonicalText) {
  EXPECT_TRUE(is_uuid("0190c8a0-0000-7000-8000-000000000000"));
  EXPECT_TRUE(is_uuid("0190C8A0-0000-7000-8000-00000000000F"));
  EXPECT_FALSE(is_uuid("0190c8a0000070008000000000000000"));
  EXPECT_FALSE(is_uuid("0190c8a0-0000-7000-8000-00000000000g"));
  EXPECT_FALSE(is_uuid(""));
}

}  // namespace
}  // namespace devcycle
