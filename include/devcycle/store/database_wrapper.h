// DatabaseWrapper forwards every call of a Database, so that a wrapper
// overrides only what it changes (devcycle/testing/fault_injecting_database.h
// is one).
//
// Thread-safety: as Database.
#pragma once

#include <memory>

#include "devcycle/store/database.h"

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

}  // namespace devcycle
