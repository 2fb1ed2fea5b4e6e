// The engine's in-memory ready queue: which ready task to claim next, by
// priority with aging, without asking the database. It is a cache of the
// tasks table — filled from the engine's own events and refilled from the
// database — and never the authority: a claim is still the fenced
// conditional UPDATE, which simply fails for an entry that went stale (the
// task was claimed elsewhere, cancelled, or retried). Internal.
//
// Order: a task's score is priority × aging_step − ready_at, so one
// aging_step of waiting is worth one priority point and the order of two
// tasks never changes while they wait; highest score first, then the
// earlier ready_at, then arrival order. Tasks whose available_at (retry
// backoff) is in the future wait aside until it passes.
//
// Not thread-safe: the engine guards it with a mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "devcycle/common/clock.h"

namespace devcycle::internal {

struct ReadyEntry {
  std::string task_id;
  std::string run_id;
  std::string definition_id;
  int attempt = 0;  // attempts made so far: the claim's fence
  int priority = 0;
  Micros ready_at = 0;
  Micros available_at = 0;
};

class ReadyQueue {
 public:
  explicit ReadyQueue(Micros aging_step);

  // Adds a task, or replaces the entry of the same task id.
  void push(ReadyEntry entry, Micros now);
  void erase(const std::string& task_id);
  // The best task available at `now`, removed from the queue.
  std::optional<ReadyEntry> pop(Micros now);

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  void clear();

 private:
  struct Node {
    std::int64_t score;  // ready heap: higher first; delayed heap: -available_at
    Micros ready_at;
    std::uint64_t seq;
  };
  struct Slot {
    ReadyEntry entry;
    std::uint64_t seq;
  };
  void promote(Micros now);
  void compact_if_needed();
  std::int64_t score(const ReadyEntry& e) const;

  Micros aging_step_;
  std::uint64_t next_seq_ = 0;
  std::unordered_map<std::string, Slot> entries_;       // by task id
  std::unordered_map<std::uint64_t, std::string> ids_;  // live seq -> task id
  std::vector<Node> ready_;                             // max-heap
  std::vector<Node> delayed_;                           // by available_at
};

}  // namespace devcycle::internal
