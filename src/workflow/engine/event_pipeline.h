// Where the engine's events go. Inside a write, stage() adds them to the
// outbox (for the bus's event topic) and NOTIFYs other engines of work it
// left ready; after the commit, deliver() hands them to subscribers — on
// one dispatch thread, in the order delivered, once start() ran (engines
// with worker threads: no subscriber then runs on, and slows, the
// database's writer thread), else on the caller's thread.
//
// Thread-safe. stop() delivers what is queued, then joins the thread.
// stage() throws what the transaction and the outbox throw (devcycle::Error);
// deliver() passes on nothing (the hub isolates subscribers).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/event_hub.h"
#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"

namespace devcycle::internal {

class EventPipeline {
 public:
  // PostgreSQL's channel for "a task is ready" between engines.
  static constexpr const char* kWorkChannel = "devcycle_work";

  explicit EventPipeline(const EngineOptions& options) : options_(options) {}
  ~EventPipeline() { stop(); }

  // Whether other engines listen on kWorkChannel (PostgreSQL).
  void notify_others(bool on) { notify_others_ = on; }
  // Inside a write: the events of this change go to the outbox with it.
  void stage(Txn& t, const std::vector<EngineEvent>& events) const;
  // After the commit: to subscribers.
  void deliver(std::vector<EngineEvent> events);
  Subscription subscribe(std::function<void(const EngineEvent&)> handler) {
    return hub_->subscribe(std::move(handler));
  }

  void start();
  void stop();

 private:
  void dispatch_loop();
  // NOTIFY the engines on the database when this transaction leaves a task
  // ready that it did not claim itself.
  static void wake_others(Txn& t, const std::vector<EngineEvent>& events);

  const EngineOptions& options_;
  bool notify_others_ = false;
  std::shared_ptr<EventHub<EngineEvent>> hub_ = std::make_shared<EventHub<EngineEvent>>();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::vector<EngineEvent>> queue_;
  bool stopping_ = false;
  // Whether deliver() hands events to the dispatch thread; atomic because
  // a completion may arrive (and emit) while start() runs.
  std::atomic<bool> started_{false};
  std::thread dispatcher_;
};

}  // namespace devcycle::internal
