#include "messaging/kafka/offset_tracker.h"

#include <algorithm>

namespace devcycle::internal::kafka {

bool OffsetTracker::reached_end(const Partition& p, std::int64_t offset) {
  auto& s = partitions_[p];
  if (s.seek_to >= 0 && offset != s.seek_to) return false;  // from before the seek
  s.seek_to = -1;
  s.end_seen = offset;
  s.next = std::max(s.next, offset);
  return true;
}

bool OffsetTracker::read(const Partition& p, std::int64_t offset) {
  auto& s = partitions_[p];
  if (s.seek_to >= 0) {
    if (offset < s.seek_to) return false;  // from before the seek
    s.seek_to = -1;
  }
  s.next = std::max(s.next, offset + 1);
  return true;
}

void OffsetTracker::open(const Partition& p, std::int64_t offset) {
  partitions_[p].open.insert(offset);
}

void OffsetTracker::passed_over(const Partition& p) { marked_.push_back(p); }

void OffsetTracker::finish(const Partition& p, std::int64_t offset) {
  const auto it = partitions_.find(p);
  if (it == partitions_.end()) return;  // revoked meanwhile
  it->second.open.erase(offset);
  marked_.push_back(p);
}

void OffsetTracker::revoke(const Partition& p) { partitions_.erase(p); }

void OffsetTracker::seek(const Partition& p, std::int64_t offset,
                         const std::set<std::int64_t>& unfinished) {
  auto& s = partitions_[p];
  s.open = unfinished;
  s.next = offset;
  s.end_seen = -1;
  s.seek_to = offset;
  s.committed = -1;  // committed again, whichever way it moved
  marked_.push_back(p);
}

bool OffsetTracker::caught_up(const Partition& p, std::int64_t end) const {
  const auto it = partitions_.find(p);
  return it != partitions_.end() && std::max(it->second.end_seen, it->second.next) >= end;
}

std::vector<OffsetTracker::Commit> OffsetTracker::due() {
  std::vector<Commit> out;
  if (marked_.empty()) return out;
  for (const auto& p : std::set<Partition>(marked_.begin(), marked_.end())) {
    const auto it = partitions_.find(p);
    if (it == partitions_.end()) continue;
    const auto& s = it->second;
    // The start of the unbroken run of finished offsets.
    const std::int64_t upto = s.open.empty() ? s.next : std::min(s.next, *s.open.begin());
    if (upto <= s.committed || upto < 0) continue;
    out.push_back({p, upto});
  }
  marked_.clear();
  return out;
}

void OffsetTracker::committed(const std::vector<Commit>& done) {
  for (const auto& c : done) partitions_[c.partition].committed = c.offset;
}

}  // namespace devcycle::internal::kafka
