// Subscribers to a stream of events, shared by the registry and the engine.
// Internal.
//
// emit() calls handlers outside the hub's lock, so a handler may subscribe
// or unsubscribe. Unsubscribing waits until no other thread is inside that
// subscriber's handler, so that a handler never runs after its
// Subscription is gone (a handler may unsubscribe itself without waiting).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/common/subscription.h"

namespace devcycle::internal {

template <class Event>
class EventHub : public std::enable_shared_from_this<EventHub<Event>> {
 public:
  Subscription subscribe(std::function<void(const Event&)> handler) {
    if (!handler) throw Error(ErrorCode::kInvalidArgument, "subscribe: handler is empty");
    auto entry = std::make_shared<Entry>();
    entry->handler = std::move(handler);
    int id;
    {
      std::lock_guard lock(mu_);
      id = next_++;
      entries_.emplace(id, entry);
    }
    std::weak_ptr<EventHub> weak = this->shared_from_this();
    return Subscription([weak, id] {
      if (auto hub = weak.lock()) hub->unsubscribe(id);
    });
  }

  void emit(const std::vector<Event>& events) {
    if (events.empty()) return;
    std::vector<std::shared_ptr<Entry>> entries;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, e] : entries_) entries.push_back(e);
    }
    for (const auto& e : entries) {
      {
        std::lock_guard lock(mu_);
        if (e->removed) continue;
        ++e->in_flight;
        e->callers.push_back(std::this_thread::get_id());
      }
      for (const auto& event : events) {
        try {
          e->handler(event);
        } catch (...) {
          // A subscriber's failure must not undo or hide a committed change.
        }
      }
      {
        std::lock_guard lock(mu_);
        --e->in_flight;
        e->callers.erase(
            std::find(e->callers.begin(), e->callers.end(), std::this_thread::get_id()));
      }
      cv_.notify_all();
    }
  }

 private:
  struct Entry {
    std::function<void(const Event&)> handler;
    int in_flight = 0;
    bool removed = false;
    std::vector<std::thread::id> callers;
  };

  void unsubscribe(int id) {
    std::unique_lock lock(mu_);
    const auto it = entries_.find(id);
    if (it == entries_.end()) return;
    auto entry = it->second;
    entries_.erase(it);
    entry->removed = true;
    const auto self = std::this_thread::get_id();
    // Wait for calls on other threads; a handler unsubscribing itself must not wait for itself.
    cv_.wait(lock, [&] {
      const auto mine = std::count(entry->callers.begin(), entry->callers.end(), self);
      return entry->in_flight == mine;
    });
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int next_ = 0;
  std::map<int, std::shared_ptr<Entry>> entries_;
};

}  // namespace devcycle::internal
