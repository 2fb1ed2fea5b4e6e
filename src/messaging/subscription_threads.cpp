#include "messaging/subscription_threads.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "devcycle/common/error.h"
#include "messaging/bus_checks.h"

namespace devcycle::internal {

Subscription SubscriptionThreads::start(MessageBus& bus, const std::string& topic,
                                        const std::string& group, MessageHandler handler,
                                        SubscribeOptions options) {
  check_topic(topic, "topic");
  check_group(group, "group");
  check_consume(options.consume);
  if (!handler) throw Error(ErrorCode::kInvalidArgument, "handler: must not be empty");
  if (options.batch < 1 || options.batch > 10'000)
    throw Error(ErrorCode::kInvalidArgument, "batch: must be 1..10000");
  if (options.poll_interval.count() <= 0)
    throw Error(ErrorCode::kInvalidArgument, "poll_interval: must be positive");
  auto worker = std::make_shared<Worker>();
  auto self = shared_from_this();
  {
    std::lock_guard lock(mu_);
    live_.insert(worker);
    ++running_;
  }
  std::lock_guard lock(worker->mu);  // the thread is owned before it can stop itself
  worker->thread =
      std::thread([&bus, self, worker, topic, group, handler = std::move(handler), options] {
        run(bus, *worker, topic, group, handler, options);
        std::lock_guard done_lock(self->mu_);
        --self->running_;
        self->done_.notify_all();
      });
  // The Subscription may outlive the bus: it holds only shared state.
  return Subscription([self, worker] { self->stop(worker); });
}

void SubscriptionThreads::wake_all() {
  std::lock_guard lock(mu_);
  for (const auto& w : live_) {
    {
      std::lock_guard wl(w->mu);
      w->woken = true;
    }
    w->cv.notify_one();
  }
}

void SubscriptionThreads::stop_all() {
  std::vector<std::shared_ptr<Worker>> live;
  {
    std::lock_guard lock(mu_);
    live.assign(live_.begin(), live_.end());
  }
  for (auto& w : live) stop(w);
  // A subscription stopped from its own handler finishes on its own thread.
  std::unique_lock lock(mu_);
  done_.wait(lock, [&] { return running_ == 0; });
}

void SubscriptionThreads::stop(const std::shared_ptr<Worker>& w) {
  std::thread thread;
  {
    std::lock_guard lock(w->mu);
    w->stopping = true;
    thread = std::move(w->thread);
  }
  w->cv.notify_one();
  if (thread.joinable()) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }
  std::lock_guard lock(mu_);
  live_.erase(w);
}

void SubscriptionThreads::run(MessageBus& bus, Worker& w, const std::string& topic,
                              const std::string& group, const MessageHandler& handler,
                              const SubscribeOptions& o) {
  auto stopping = [&] {
    std::lock_guard lock(w.mu);
    return w.stopping;
  };
  using Clock = std::chrono::steady_clock;
  const auto visibility = std::chrono::duration_cast<Clock::duration>(o.consume.visibility_timeout);
  // About the longest a handler takes: the longest lately, forgetting an
  // old outlier by an eighth per message.
  Clock::duration slowest{};
  while (!stopping()) {
    // As many as slow handlers can finish within the visibility timeout.
    int want = o.batch;
    if (slowest > Clock::duration::zero())
      want = static_cast<int>(std::clamp<std::int64_t>(visibility / (3 * slowest), 1, o.batch));
    std::vector<Delivery> batch;
    const auto fetched_at = Clock::now();
    try {
      batch = bus.fetch(topic, group, want, o.consume);
    } catch (...) {
      // The backend may be briefly unavailable; look again after a pause.
    }
    // Acknowledgements go out together after the batch (or before a stop),
    // or as they come once a quarter of the visibility timeout has passed:
    // a crash in between only means those messages come again.
    std::vector<Delivery> acked;
    auto flush_acks = [&] {
      try {
        bus.ack(acked);
      } catch (...) {
        // Some were no longer pending (their timeout passed): ack the rest.
        for (const auto& d : acked) {
          try {
            bus.ack(d);
          } catch (...) {
          }
        }
      }
      acked.clear();
    };
    bool stopped = false;
    for (const auto& d : batch) {
      if (stopping()) {
        stopped = true;  // the rest become visible again after the timeout
        break;
      }
      // One that could not be finished before its visibility timeout is
      // left to come again: handled now, it might be handled twice.
      const auto started = Clock::now();
      if (slowest > Clock::duration::zero() && started + 3 * slowest > fetched_at + visibility)
        break;
      Ack verdict = Ack::kNack;
      std::string reason = "refused by the handler";
      try {
        verdict = handler(d);
      } catch (const std::exception& e) {
        reason = e.what();
      } catch (...) {
        reason = "the handler threw something that is not a std::exception";
      }
      const auto done = Clock::now();
      slowest = std::max<Clock::duration>(done - started, slowest - slowest / 8);
      if (verdict == Ack::kAck) {
        acked.push_back(d);
        if (done - fetched_at >= visibility / 4) flush_acks();
        continue;
      }
      try {
        bus.nack(d, reason, o.consume);
      } catch (...) {
        // Not pending any more, or the backend failed: the visibility
        // timeout decides what happens next.
      }
    }
    flush_acks();
    if (stopped) return;
    if (batch.empty()) {
      std::unique_lock lock(w.mu);
      w.cv.wait_for(lock, o.poll_interval, [&] { return w.stopping || w.woken; });
      w.woken = false;
    }
  }
}

}  // namespace devcycle::internal
