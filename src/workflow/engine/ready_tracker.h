// The engine's view of which tasks are ready (SQLite; on PostgreSQL claims
// read the database itself): a ReadyQueue kept current from this engine's
// own events and refilled from the database — when it is empty, and once a
// second — for tasks other engines made ready. A cache, never the
// authority: a claim is still the fenced UPDATE.
//
// Thread-safe (one mutex). refill() reads the database, and throws what it
// throws (devcycle::Error): never call it inside a write closure.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

#include "devcycle/store/database.h"
#include "devcycle/workflow/engine.h"
#include "workflow/ready_queue.h"

namespace devcycle::internal {

class ReadyTracker {
 public:
  ReadyTracker(Database& db, Micros aging_step) : db_(db), aging_(aging_step), ready_(aging_step) {}

  // Keeps the queue current from committed events.
  void note(const std::vector<EngineEvent>& events, Micros at);
  // Brings in ready tasks from the database when the queue is empty or
  // the last refill is a second old.
  void refill(Micros at);
  std::optional<ReadyEntry> pop(Micros at);
  void push(ReadyEntry entry, Micros at);

 private:
  static constexpr int kRefillLimit = 4096;
  static constexpr std::size_t kMaxQueued = 100'000;

  Database& db_;
  const Micros aging_;
  std::mutex mu_;
  ReadyQueue ready_;
  Micros next_refill_ = 0;
  Micros last_refill_ = 0;
};

}  // namespace devcycle::internal
