// OffsetTracker: which offset the Kafka group consumer commits, with no
// broker. Each test drives it as GroupConsumer does: read() then open() a
// record it holds, finish() it, and commit what due() returns.
#include "messaging/kafka/offset_tracker.h"

#include <gtest/gtest.h>

#include <vector>

namespace devcycle::internal::kafka {
namespace {

using Commit = OffsetTracker::Commit;

const OffsetTracker::Partition kP0{"orders", 0};
const OffsetTracker::Partition kP1{"orders", 1};
const OffsetTracker::Partition kRetry{"orders.retry.billing", 0};

// Reads and holds each of `offsets` of `p`.
void take(OffsetTracker& t, const OffsetTracker::Partition& p,
          const std::vector<std::int64_t>& offsets) {
  for (const auto o : offsets) {
    ASSERT_TRUE(t.read(p, o));
    t.open(p, o);
  }
}

// due(), reported as committed.
std::vector<Commit> commit(OffsetTracker& t) {
  auto due = t.due();
  t.committed(due);
  return due;
}

TEST(OffsetTracker, NothingIsDueUntilSomethingIsFinished) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2});
  EXPECT_TRUE(t.due().empty());
}

TEST(OffsetTracker, CommitsPastTheRunOfFinishedOffsets) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2});
  t.finish(kP0, 0);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 1}}));
  t.finish(kP0, 1);
  t.finish(kP0, 2);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 3}}));
}

TEST(OffsetTracker, OutOfOrderCompletionWaitsForTheEarliestUnfinished) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2, 3});
  t.finish(kP0, 0);
  commit(t);
  t.finish(kP0, 3);
  t.finish(kP0, 2);
  // 1 is unfinished: the run of finished offsets still starts at 1, which
  // is committed already.
  EXPECT_TRUE(commit(t).empty());
  t.finish(kP0, 1);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 4}}));
}

TEST(OffsetTracker, FirstCommitMayBeTheFirstUnfinishedOffset) {
  // Nothing committed yet: the start of the run (the first unfinished
  // offset) is committed even though it does not move past it.
  OffsetTracker t;
  take(t, kP0, {5, 6});
  t.finish(kP0, 6);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 5}}));
  t.finish(kP0, 5);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 7}}));
}

TEST(OffsetTracker, GapsInTheOffsetsDoNotHoldTheCommitBack) {
  // Offsets Kafka never hands out (transaction markers, compaction) leave
  // gaps: only offsets read and unfinished hold the commit back.
  OffsetTracker t;
  take(t, kP0, {0, 3, 7});
  t.finish(kP0, 0);
  t.finish(kP0, 7);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 3}}));
  t.finish(kP0, 3);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 8}}));
}

TEST(OffsetTracker, RecordsReadAndNotHeldCountAsFinished) {
  // A record the consumer does not hold (a duplicate of one it holds) moves
  // the end of the run when something else is finished.
  OffsetTracker t;
  take(t, kP0, {0});
  ASSERT_TRUE(t.read(kP0, 1));  // not opened
  t.finish(kP0, 0);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 2}}));
}

TEST(OffsetTracker, PassedOverRecordsAreCommittedPast) {
  // A dead letter read again is finished at once.
  OffsetTracker t;
  ASSERT_TRUE(t.read(kP0, 0));
  t.passed_over(kP0);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 1}}));
}

TEST(OffsetTracker, DuplicatesAreHarmless) {
  OffsetTracker t;
  take(t, kP0, {0, 1});
  ASSERT_TRUE(t.read(kP0, 0));  // read again (a replay)
  t.finish(kP0, 0);
  t.finish(kP0, 0);                                       // finished twice
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 1}}));  // one commit per partition
  t.finish(kP0, 0);
  EXPECT_TRUE(commit(t).empty());  // nothing new
  t.finish(kP0, 1);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 2}}));
}

TEST(OffsetTracker, NeverCommitsBackwardsWithoutASeek) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2});
  t.finish(kP0, 0);
  t.finish(kP0, 1);
  t.finish(kP0, 2);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 3}}));
  ASSERT_TRUE(t.read(kP0, 1));  // an old record again: does not move `next` back
  t.open(kP0, 1);
  t.finish(kP0, 1);
  EXPECT_TRUE(commit(t).empty());
}

TEST(OffsetTracker, AFailedCommitIsCoveredByTheNextOne) {
  OffsetTracker t;
  take(t, kP0, {0, 1});
  t.finish(kP0, 0);
  EXPECT_EQ(t.due(), (std::vector<Commit>{{kP0, 1}}));  // not reported committed
  EXPECT_TRUE(t.due().empty());                         // nothing marked since
  t.finish(kP0, 1);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 2}}));
}

TEST(OffsetTracker, PartitionsAreIndependent) {
  OffsetTracker t;
  take(t, kP0, {0, 1});
  take(t, kP1, {0, 1});
  take(t, kRetry, {4});
  t.finish(kP1, 0);
  t.finish(kP1, 1);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP1, 2}}));  // only the partition that moved
  t.finish(kRetry, 4);
  t.finish(kP0, 0);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 1}, {kRetry, 5}}));
}

TEST(OffsetTracker, RevokedPartitionsAreForgotten) {
  OffsetTracker t;
  take(t, kP0, {0, 1});
  take(t, kP1, {0});
  t.finish(kP0, 0);
  t.revoke(kP0);
  t.finish(kP0, 1);  // finished after the revocation: nothing
  t.finish(kP1, 0);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP1, 1}}));
  EXPECT_FALSE(t.caught_up(kP0, 0));
}

TEST(OffsetTracker, AReassignedPartitionStartsAfresh) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2});
  t.finish(kP0, 0);
  t.finish(kP0, 1);
  t.finish(kP0, 2);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 3}}));
  t.revoke(kP0);
  // Assigned again, read from the group's committed offset elsewhere (which
  // another member may have moved either way): what was committed here
  // before no longer counts.
  take(t, kP0, {1});
  t.finish(kP0, 1);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 2}}));
}

TEST(OffsetTracker, SeekCommitsTheNewPositionEitherWay) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2, 3, 4});
  for (std::int64_t o = 0; o < 5; ++o) t.finish(kP0, o);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 5}}));
  t.seek(kP0, 2, {});
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 2}}));  // backwards
  t.seek(kP0, 9, {});
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 9}}));  // forwards
}

TEST(OffsetTracker, SeekKeepsHandedOutRecordsUnfinished) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2});
  // 1 is handed out; the seek moves ahead of it.
  t.seek(kP0, 5, {1});
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 1}}));
  t.finish(kP0, 1);
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 5}}));
}

TEST(OffsetTracker, AfterASeekNewsOfTheOldPositionIsIgnored) {
  OffsetTracker t;
  take(t, kP0, {0, 1, 2, 3});
  t.seek(kP0, 1, {});
  commit(t);
  // An end event and records fetched before the seek, still queued.
  EXPECT_FALSE(t.reached_end(kP0, 4));
  EXPECT_FALSE(t.read(kP0, 0));
  // The first record at or after the new position shows the move.
  EXPECT_TRUE(t.read(kP0, 1));
  EXPECT_TRUE(t.reached_end(kP0, 4));  // from here on, news is taken again
  EXPECT_TRUE(t.caught_up(kP0, 4));
}

TEST(OffsetTracker, AnEndEventAtTheNewPositionShowsTheMove) {
  OffsetTracker t;
  take(t, kP0, {0});
  t.seek(kP0, 3, {});
  EXPECT_FALSE(t.caught_up(kP0, 5));
  EXPECT_TRUE(t.reached_end(kP0, 3));
  EXPECT_TRUE(t.caught_up(kP0, 3));
  EXPECT_FALSE(t.caught_up(kP0, 5));
}

TEST(OffsetTracker, CaughtUpByRecordsOrByTheEnd) {
  OffsetTracker t;
  EXPECT_FALSE(t.caught_up(kP0, 0));  // never read: not known
  ASSERT_TRUE(t.reached_end(kP0, 0));
  EXPECT_TRUE(t.caught_up(kP0, 0));  // an empty partition, its end seen
  EXPECT_FALSE(t.caught_up(kP0, 2));
  take(t, kP0, {0, 1});
  EXPECT_TRUE(t.caught_up(kP0, 2));  // the last record read is the end's predecessor
  EXPECT_FALSE(t.caught_up(kP0, 3));
}

TEST(OffsetTracker, AnEndEventAloneCommitsNothing) {
  OffsetTracker t;
  ASSERT_TRUE(t.reached_end(kP0, 7));
  EXPECT_TRUE(t.due().empty());
  t.passed_over(kP0);  // once marked, the end seen is where it commits
  EXPECT_EQ(commit(t), (std::vector<Commit>{{kP0, 7}}));
}

TEST(OffsetTracker, AnUnknownPartitionIsNeverCommitted) {
  OffsetTracker t;
  t.passed_over(kP0);  // marked, never read
  t.finish(kP1, 3);
  EXPECT_TRUE(t.due().empty());
}

}  // namespace
}  // namespace devcycle::internal::kafka
