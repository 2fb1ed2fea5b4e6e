// tasks, as a queue of leased work: the ready tasks in claim order, the
// fenced claim, the lease an attempt holds and its heartbeat, the fenced
// success, leases that expired and starts that were missed, and the running
// attempts per agent. A fence is a conditional statement (attempt, lease
// owner, status, lease expiry) that a stale engine cannot pass.
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "workflow/store/deferred_writes.h"
#include "workflow/store/rows.h"
#include "workflow/store/task_table.h"

namespace devcycle::internal {

class TaskLeases {
 public:
  // `tasks` is told when rows change, so that it trusts no stale prefetched row.
  TaskLeases(DeferredWrites& w, TaskTable& tasks) : w_(w), tasks_(tasks) {}
  TaskLeases(const TaskLeases&) = delete;
  TaskLeases& operator=(const TaskLeases&) = delete;

  // Ready tasks that may start at `now`, best first by priority with aging.
  std::vector<TaskRow> ready_tasks(Micros now, std::int64_t aging_step_us, int limit);
  // The tasks of `ids` that are ready, for claim(). On PostgreSQL they are
  // locked FOR UPDATE SKIP LOCKED: a task another engine is claiming right
  // now is left out at once instead of waited for (its claim would win).
  std::vector<TaskRow> claimable(std::span<const std::string> ids);
  // PostgreSQL: up to `limit` ready tasks in claim order (as ready_tasks()),
  // each with its run's workflow id, locked FOR UPDATE SKIP LOCKED — rows
  // another engine is claiming at this moment are left to it.
  std::vector<std::pair<TaskRow, std::string>> lock_ready(Micros now, std::int64_t aging_step_us,
                                                          int limit, int offset = 0);
  std::vector<TaskRow> expired_leases(Micros now);
  std::vector<TaskRow> missed_starts(Micros now);
  // Running attempts per agent (fan-out groups, which run on no agent, aside).
  std::unordered_map<std::string, int> running_by_agent();
  // PostgreSQL: takes a lock on the agent until the transaction ends and
  // counts its running attempts; nullopt when another transaction holds it.
  std::optional<int> lock_and_count_running(std::string_view agent_id);

  // The fenced claim: true when this call moved the task from ready to
  // running. With deferred writes, a row lock_ready() locked is judged here
  // and its claim written with the other deferred updates.
  bool claim(const TaskRow& row, const std::string& lease_owner, const std::string& agent_id,
             Micros now, Micros lease_expires_at, std::optional<Micros> close_deadline);
  // The fenced heartbeat; false when the attempt no longer holds a valid lease.
  bool extend_lease(std::string_view task_id, int attempt, std::string_view lease_owner, Micros now,
                    Micros lease_expires_at);
  // The fence of a completion: the row, when this attempt still holds a valid lease.
  std::optional<TaskRow> leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                                Micros now);
  // Who holds a task, as its row says now (an executing attempt asks
  // whether it still does); nullopt when the task is gone.
  struct Holder {
    std::string status;
    std::int64_t attempt = 0;
    std::optional<std::string> lease_owner;  // NULL: nobody
  };
  std::optional<Holder> holder_of(std::string_view task_id);
  // Gives back a claim whose attempt never started: the task is ready again
  // and the attempt not spent. True when the claim was still held (the row changed).
  bool release_unstarted(std::string_view task_id, int attempt, std::string_view lease_owner);

  // The fenced success: records `output` when this attempt still holds a
  // valid lease, in one statement; false when it does not.
  bool succeed_leased(std::string_view task_id, int attempt, std::string_view lease_owner,
                      Micros now, std::string_view output);
  struct Success {
    std::string task_id;
    int attempt = 0;
    std::string lease_owner;
    std::string output;
  };
  // succeed_leased() for several attempts in one statement (PostgreSQL:
  // UPDATE ... FROM VALUES ... RETURNING); returns the task ids whose fence
  // held and which are now recorded.
  std::unordered_set<std::string> succeed_leased_many(const std::vector<Success>& successes,
                                                      Micros now);

 private:
  DeferredWrites& w_;
  TaskTable& tasks_;
  // Rows lock_ready() locked FOR UPDATE, by id: their attempt as read.
  std::unordered_map<std::string, int> ready_locked_;
};

}  // namespace devcycle::internal
