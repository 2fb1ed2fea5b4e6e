// A handle on a subscription to a stream of events (the registry's, the
// engine's) or to a bus topic: it unsubscribes when destroyed or reset().
//
// Move-only. reset() and the destructor wait until the subscriber's handler
// is not running on another thread (a handler may drop its own
// Subscription without waiting). Never throws.
#pragma once

#include <functional>

namespace devcycle {

class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& o) noexcept : cancel_(std::move(o.cancel_)) { o.cancel_ = nullptr; }
  Subscription& operator=(Subscription&& o) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { reset(); }
  void reset();

 private:
  std::function<void()> cancel_;
};

}  // namespace devcycle
