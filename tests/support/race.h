#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "devcycle/common/error.h"

namespace devcycle::testing {

struct RaceOutcome {
  int succeeded = 0;
  int refused = 0;
};

// Runs attempt(thread, i) for i < per_thread on `threads` threads at once and
// counts what succeeded and what was refused with `refusal`; any other error
// fails the test.
inline RaceOutcome race(int threads, int per_thread, ErrorCode refusal,
                        const std::function<void(int, int)>& attempt) {
  std::atomic<int> succeeded = 0, refused = 0;
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        try {
          attempt(t, i);
          ++succeeded;
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), refusal) << e.what();
          ++refused;
        }
      }
    });
  }
  for (auto& th : running) th.join();
  return {succeeded.load(), refused.load()};
}

}  // namespace devcycle::testing
