// FaultInjectingDatabase fails chosen calls of a Database, which is how tests
// prove that failures leave nothing half-written. For tests only.
//
// Thread-safety: as Database.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>

#include "devcycle/store/database_wrapper.h"

namespace devcycle {

struct FaultOptions {
  // Fail the Nth call (1-based) of submit() and read() counted together;
  // 0 = never.
  std::uint64_t fail_nth = 0;
  // Also fail every call with this probability, drawn from a generator seeded
  // with `seed`, so that a failing run can be repeated exactly.
  double fail_fraction = 0.0;
  std::uint64_t seed = 1;
  // Where a failed submit() fails: before its closure runs, or after the
  // closure ran inside its savepoint (so its writes must be rolled back).
  enum class Point { kBeforeRun, kAfterRun } point = Point::kAfterRun;
};

// Fails chosen calls with Error{kUnavailable, "injected fault ..."}.
class FaultInjectingDatabase final : public DatabaseWrapper {
 public:
  // Throws Error{kInvalidArgument} naming the option when fail_fraction is
  // outside [0, 1].
  FaultInjectingDatabase(std::unique_ptr<Database> target, FaultOptions options);

  using Database::read;
  using Database::submit;
  void submit(TxnFn fn, DoneFn done) override;
  void read(const TxnFn& fn) override;

  std::uint64_t calls() const noexcept { return calls_.load(); }
  std::uint64_t injected() const noexcept { return injected_.load(); }

 private:
  bool should_fail();

  FaultOptions options_;
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> injected_{0};
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace devcycle
