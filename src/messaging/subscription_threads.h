// The threads behind MessageBus::subscribe(), shared by the bus backends:
// each subscription runs fetch → handler → ack/nack on a thread of its own
// over the bus's public pull API. Internal.
//
// Shared (std::shared_ptr) so that a Subscription, or a backend's commit
// callback that wakes the threads, may outlive the bus. A bus calls
// stop_all() first thing in its destructor: it stops every subscription and
// waits for every thread, including one that stopped itself from its own
// handler.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "devcycle/messaging/messaging.h"

namespace devcycle::internal {

class SubscriptionThreads : public std::enable_shared_from_this<SubscriptionThreads> {
 public:
  static std::shared_ptr<SubscriptionThreads> create() {
    return std::shared_ptr<SubscriptionThreads>(new SubscriptionThreads());
  }

  // Checks the arguments (Error{kInvalidArgument} naming the field), then
  // starts the thread. `bus` must call stop_all() before it goes.
  Subscription start(MessageBus& bus, const std::string& topic, const std::string& group,
                     MessageHandler handler, SubscribeOptions options);

  // Tells idle subscriptions to look again now (new messages, a redrive).
  void wake_all();

  void stop_all();

 private:
  struct Worker {
    std::thread thread;  // moved out, under mu, by whoever stops it
    std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    bool woken = false;
  };

  SubscriptionThreads() = default;
  static void run(MessageBus& bus, Worker& w, const std::string& topic, const std::string& group,
                  const MessageHandler& handler, const SubscribeOptions& o);
  void stop(const std::shared_ptr<Worker>& w);

  std::mutex mu_;
  std::condition_variable done_;
  std::set<std::shared_ptr<Worker>> live_;
  int running_ = 0;  // threads that have not finished
};

}  // namespace devcycle::internal
