// Wrappers around a Database: DatabaseWrapper forwards every call, so that a
// wrapper overrides only what it changes; FaultInjectingDatabase fails chosen
// calls, which is how tests prove that failures leave nothing half-written.
//
// Thread-safety: as Database.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>

#include "devcycle/database.h"

namespace devcycle {

class DatabaseWrapper : public Database {
 public:
  // Takes ownership of `target`. Throws Error{kInvalidArgument} when null.
  explicit DatabaseWrapper(std::unique_ptr<Database> target);

  using Database::read;
  using Database::submit;
  void submit(TxnFn fn, DoneFn done) override { target_->submit(std::move(fn), std::move(done)); }
  void read(const TxnFn& fn) override { target_->read(fn); }
  void migrate(std::span<const Migration> migrations) override { target_->migrate(migrations); }
  Dialect dialect() const noexcept override { return target_->dialect(); }
  Listening listen(std::string channel, std::function<void()> on_notify) override {
    return target_->listen(std::move(channel), std::move(on_notify));
  }
  std::string url() const override { return target_->url(); }
  void close() override { target_->close(); }

  Database& target() noexcept { return *target_; }

 private:
  std::unique_ptr<Database> target_;
};

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
