#include "workflow/ready_queue.h"

#include <algorithm>
#include <limits>

namespace devcycle::internal {

namespace {

// std heaps keep the largest element first under `less`.
bool worse(const auto& a, const auto& b) {
  if (a.score != b.score) return a.score < b.score;
  if (a.ready_at != b.ready_at) return a.ready_at > b.ready_at;
  return a.seq > b.seq;
}
struct Worse {
  template <typename N>
  bool operator()(const N& a, const N& b) const {
    return worse(a, b);
  }
};

}  // namespace

ReadyQueue::ReadyQueue(Micros aging_step) : aging_step_(std::max<Micros>(1, aging_step)) {}

std::int64_t ReadyQueue::score(const ReadyEntry& e) const {
  // Saturate instead of overflowing on absurd priorities or steps.
  constexpr auto lo = std::numeric_limits<std::int64_t>::min();
  constexpr auto hi = std::numeric_limits<std::int64_t>::max();
  std::int64_t points = 0, s = 0;
  if (__builtin_mul_overflow(static_cast<std::int64_t>(e.priority), aging_step_, &points))
    return e.priority > 0 ? hi : lo;
  if (__builtin_sub_overflow(points, e.ready_at, &s)) return points > 0 ? hi : lo;
  return s;
}

void ReadyQueue::push(ReadyEntry entry, Micros now) {
  const std::uint64_t seq = next_seq_++;
  const bool available = entry.available_at <= now;
  const Node node{available ? score(entry) : -entry.available_at, entry.ready_at, seq};
  auto& heap = available ? ready_ : delayed_;
  auto [it, inserted] = entries_.try_emplace(entry.task_id);
  if (!inserted) ids_.erase(it->second.seq);  // the old node goes stale
  ids_.emplace(seq, entry.task_id);
  it->second = Slot{std::move(entry), seq};
  heap.push_back(node);
  std::push_heap(heap.begin(), heap.end(), Worse{});
  if (!inserted) compact_if_needed();
}

void ReadyQueue::erase(const std::string& task_id) {
  const auto it = entries_.find(task_id);
  if (it == entries_.end()) return;
  ids_.erase(it->second.seq);
  entries_.erase(it);
  compact_if_needed();
}

// Replaced and erased entries leave stale nodes behind; drop them before
// they outnumber the live ones.
void ReadyQueue::compact_if_needed() {
  if (ready_.size() + delayed_.size() <= 2 * entries_.size() + 1024) return;
  for (auto* heap : {&ready_, &delayed_}) {
    std::erase_if(*heap, [&](const Node& n) { return !ids_.count(n.seq); });
    std::make_heap(heap->begin(), heap->end(), Worse{});
  }
}

void ReadyQueue::clear() {
  entries_.clear();
  ids_.clear();
  ready_.clear();
  delayed_.clear();
}

void ReadyQueue::promote(Micros now) {
  while (!delayed_.empty() && -delayed_.front().score <= now) {
    const Node node = delayed_.front();
    std::pop_heap(delayed_.begin(), delayed_.end(), Worse{});
    delayed_.pop_back();
    const auto id = ids_.find(node.seq);
    if (id == ids_.end()) continue;  // stale
    const auto& e = entries_.at(id->second).entry;
    ready_.push_back(Node{score(e), e.ready_at, node.seq});
    std::push_heap(ready_.begin(), ready_.end(), Worse{});
  }
}

std::optional<ReadyEntry> ReadyQueue::pop(Micros now) {
  promote(now);
  while (!ready_.empty()) {
    const Node node = ready_.front();
    std::pop_heap(ready_.begin(), ready_.end(), Worse{});
    ready_.pop_back();
    const auto id = ids_.find(node.seq);
    if (id == ids_.end()) continue;  // replaced or erased since
    auto slot = entries_.find(id->second);
    ReadyEntry out = std::move(slot->second.entry);
    entries_.erase(slot);
    ids_.erase(id);
    return out;
  }
  return std::nullopt;
}

}  // namespace devcycle::internal
