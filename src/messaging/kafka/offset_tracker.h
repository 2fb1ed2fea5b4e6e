// Which offset a Kafka consumer may commit for each partition it reads: the
// start of the partition's unbroken run of finished offsets, so that a
// crash redelivers exactly what was not finished. Pure bookkeeping, no
// librdkafka: the group consumer tells it what was read, finished, sought
// and revoked, and commits what due() returns. Internal to the kafka://
// backend.
//
// A partition is known from the first record or end-of-partition event
// read from it until it is revoked; what is said of an unknown partition
// (finish, a commit due) is ignored, except that reading it makes it known
// afresh.
// Thread-safety: none; its owner serializes calls. Errors: none thrown.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace devcycle::internal::kafka {

class OffsetTracker {
 public:
  using Partition = std::pair<std::string, std::int32_t>;  // topic, partition
  struct Commit {
    Partition partition;
    std::int64_t offset = 0;  // the next offset to read
    bool operator==(const Commit&) const = default;
  };

  // The consumer reached the end of `p` at `offset` (an end-of-partition
  // event). False, and nothing noted, when it is news from before a seek.
  bool reached_end(const Partition& p, std::int64_t offset);

  // The record at `offset` of `p` was read. False, and nothing noted, when
  // it is from before a seek (the caller drops it). The record counts as
  // finished until open() or passed_over() says otherwise.
  bool read(const Partition& p, std::int64_t offset);

  // The record read at `offset` is unfinished until finish().
  void open(const Partition& p, std::int64_t offset);

  // A record of `p` was read and is finished at once (passed over): its
  // partition may commit further.
  void passed_over(const Partition& p);

  // The record at `offset` of `p` is finished; `p` may commit further.
  // Nothing when `p` was revoked meanwhile.
  void finish(const Partition& p, std::int64_t offset);

  // `p` is another consumer's now: forget it.
  void revoke(const Partition& p);

  // The consumer moved to `offset` of `p`; `unfinished` are the offsets
  // still handed out. Records and end events of before the move are
  // ignored until the consumer shows it has moved, and the new position is
  // committed at the next due(), whichever way it moved.
  void seek(const Partition& p, std::int64_t offset, const std::set<std::int64_t>& unfinished);

  // Whether the consumer has read `p` up to `end` (records or its end).
  bool caught_up(const Partition& p, std::int64_t end) const;

  // The commits due: for each known partition marked since the last call
  // (finish, passed_over, seek), the start of its unbroken run of finished
  // offsets, where that is beyond what was committed. Clears the marks.
  std::vector<Commit> due();

  // `done` (from due()) were committed. Commits that failed are not
  // reported: the partition's next due() covers them.
  void committed(const std::vector<Commit>& done);

 private:
  struct State {
    std::set<std::int64_t> open;  // offsets read and not finished
    std::int64_t next = -1;       // one past the last offset read (or the end seen)
    std::int64_t committed = -1;
    std::int64_t end_seen = -1;  // where the consumer last reached the partition's end
    // After a seek, until the consumer shows it has moved: news of the old
    // position (an end-of-partition event already queued) is ignored.
    std::int64_t seek_to = -1;
  };

  std::map<Partition, State> partitions_;
  std::vector<Partition> marked_;
};

}  // namespace devcycle::internal::kafka
