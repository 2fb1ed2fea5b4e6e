#include "workflow/engine/event_pipeline.h"

#include <nlohmann/json.hpp>

#include "messaging/outbox.h"

namespace devcycle::internal {

using nlohmann::json;

void EventPipeline::stage(Txn& t, const std::vector<EngineEvent>& events) const {
  if (notify_others_) wake_others(t, events);
  if (!options_.bus || options_.event_topic.empty() || events.empty()) return;
  std::vector<Message> messages;
  messages.reserve(events.size());
  for (const auto& e : events) {
    if (e.kind == EngineEvent::Kind::kTaskLog) continue;
    json j = {
        {"kind", to_string(e.kind)}, {"run_id", e.run_id}, {"status", e.status}, {"at", e.at}};
    if (!e.task_id.empty()) {
      j["task_id"] = e.task_id;
      j["task_key"] = e.task_key;
      j["attempt"] = e.attempt;
    }
    if (!e.error.empty()) j["error"] = e.error;
    if (e.kind == EngineEvent::Kind::kTaskReady || e.kind == EngineEvent::Kind::kTaskRetrying) {
      j["available_at"] = e.available_at;
      j["priority"] = e.priority;
    }
    messages.push_back({options_.event_topic,
                        e.run_id,
                        {},
                        j.dump(-1, ' ', false, json::error_handler_t::replace)});
  }
  Outbox::add(t, messages, options_.clock->now());
}

void EventPipeline::wake_others(Txn& t, const std::vector<EngineEvent>& events) {
  std::vector<std::string_view> ready;
  for (const auto& e : events) {
    if (e.kind == EngineEvent::Kind::kTaskReady || e.kind == EngineEvent::Kind::kTaskRetrying) {
      ready.push_back(e.task_id);
    } else if (e.kind == EngineEvent::Kind::kTaskStarted) {
      std::erase(ready, std::string_view(e.task_id));
    }
  }
  if (!ready.empty()) t.notify(kWorkChannel);
}

void EventPipeline::deliver(std::vector<EngineEvent> events) {
  if (!started_.load(std::memory_order_acquire)) {
    hub_->emit(events);
    return;
  }
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(events));
  }
  cv_.notify_one();
}

void EventPipeline::start() {
  dispatcher_ = std::thread([this] { dispatch_loop(); });
  started_.store(true, std::memory_order_release);
}

void EventPipeline::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (dispatcher_.joinable()) dispatcher_.join();
  started_.store(false, std::memory_order_release);
}

void EventPipeline::dispatch_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is out
    auto batch = std::move(queue_);
    queue_.clear();
    lock.unlock();
    for (const auto& events : batch) hub_->emit(events);
    lock.lock();
  }
}

}  // namespace devcycle::internal
