// The engine's RunStore over every Database backend, on what the engine's
// batches rely on and cannot show deterministically: on PostgreSQL, writes
// deferred to one statement each and rows prefetched for a batch must read
// back exactly as written, whatever order reads and writes come in. On
// SQLite the same calls write and read at once; the results must not differ.
#include "workflow/run_store.h"

#include <gtest/gtest.h>

#include "devcycle/common/uuid.h"
#include "support/engine_fixture.h"

namespace devcycle {
namespace {

using internal::RunStore;
using internal::TaskRow;

class RunStoreTest : public testing::EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    workflow_id_ =
        catalog_->get(workflow(R"({"name": "s", "tasks": [{"id": "a", "capability": "x"}]})")).id;
  }

  devcycle::Run make_run() {
    devcycle::Run r;
    r.id = new_uuid_v7();
    r.workflow = "s";
    r.workflow_version = 1;
    r.owner = "alice";
    r.status = RunStatus::kRunning;
    r.input = kText;
    r.labels = {{"odd", "NULL \"{,}\" \\"}, {"empty", ""}};
    r.idempotency_key = "key \"{\\}\"";
    r.created_at = 1000;
    r.started_at = 1000;
    r.concurrency_key = "";  // a key of its own, not NULL
    return r;
  }

  TaskRow make_task(const devcycle::Run& r, const std::string& key) {
    TaskRow row;
    row.task.id = new_uuid_v7();
    row.task.run_id = r.id;
    row.task.key = key;
    row.task.definition_id = key;
    row.task.status = TaskStatus::kPending;
    row.task.input = kText;
    row.task.max_attempts = 3;
    row.item = "NULL";  // the text, not a NULL
    row.created_at = 1000;
    return row;
  }

  static constexpr const char* kText =
      R"({"s": "quote \" backslash \\ braces {a,b} NULL , \"\" é ☃ 𝄞\n"})";
  std::string workflow_id_;
};

TEST_P(RunStoreTest, DeferredInsertsReadBackExactlyAsWritten) {
  const devcycle::Run run = make_run();
  std::vector<TaskRow> rows{make_task(run, "a"), make_task(run, "b")};
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.defer_writes();
    store.insert_run(run, workflow_id_);
    store.insert_tasks(rows);
    // Reads in the same transaction see what was deferred.
    const auto found = store.find_run(run.id);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->input, kText);
    EXPECT_EQ(store.tasks_of(run.id).size(), 2u);
    store.flush();
  });
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.input, kText);
  EXPECT_EQ(d.run.labels, run.labels);
  EXPECT_EQ(d.run.idempotency_key, run.idempotency_key);
  ASSERT_TRUE(d.run.concurrency_key);
  EXPECT_EQ(*d.run.concurrency_key, "");
  EXPECT_TRUE(d.run.output.empty());
  ASSERT_EQ(d.tasks.size(), 2u);
  for (const auto& t : d.tasks) {
    EXPECT_EQ(t.input, kText);
    EXPECT_EQ(t.max_attempts, 3);
    EXPECT_FALSE(t.ready_at);
  }
}

TEST_P(RunStoreTest, PrefetchedRowsFollowTheTransactionsOwnUpdates) {
  devcycle::Run run = make_run();
  const std::vector<TaskRow> rows{make_task(run, "a"), make_task(run, "b"), make_task(run, "c")};
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.insert_run(run, workflow_id_);
    store.insert_tasks(rows);
  });
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.lock_runs({run.id});
    store.prefetch({{run.id, {"b", "c"}}});
    store.defer_writes();
    auto b = store.tasks_by_keys(run.id, {"b"});
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].task.status, TaskStatus::kPending);
    b[0].task.status = TaskStatus::kReady;
    b[0].task.ready_at = 2000;
    b[0].task.available_at = 2000;
    store.update_task(b[0]);
    // Read again (as the next outcome of a batch would): the update shows.
    const auto again = store.tasks_by_keys(run.id, {"b", "c"});
    ASSERT_EQ(again.size(), 2u);
    for (const auto& r : again) {
      EXPECT_EQ(r.task.status, r.task.key == "b" ? TaskStatus::kReady : TaskStatus::kPending);
    }
    // A key not prefetched is read from the database, after the update.
    const auto all = store.tasks_of(run.id);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(std::count_if(all.begin(), all.end(),
                            [](const TaskRow& r) { return r.task.status == TaskStatus::kReady; }),
              1);
    run.status = RunStatus::kSucceeded;
    run.output = R"({"c": "\"done\""})";
    run.finished_at = 3000;
    const auto finished = store.finish_run(run);
    EXPECT_EQ(finished.workflow, "s");
    ASSERT_TRUE(finished.concurrency_key);
    EXPECT_EQ(*finished.concurrency_key, "");
    store.flush();
  });
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded);
  EXPECT_EQ(d.run.output, run.output);
  ASSERT_TRUE(d.run.finished_at);
  EXPECT_EQ(*d.run.finished_at, 3000);
  EXPECT_EQ(task(d, "b").status, TaskStatus::kReady);
  EXPECT_EQ(task(d, "a").status, TaskStatus::kPending);
}

TEST_P(RunStoreTest, AClaimOfALockedRowIsFencedOnce) {
  const devcycle::Run run = make_run();
  auto row = make_task(run, "a");
  row.task.status = TaskStatus::kReady;
  row.task.ready_at = 1000;
  row.task.available_at = 1000;
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.insert_run(run, workflow_id_);
    store.insert_task(row);
  });
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.defer_writes();
    // PostgreSQL claims rows it locked (lock_ready()); SQLite, rows it read.
    std::vector<TaskRow> ready;
    if (store.postgres()) {
      for (auto& [r, workflow_id] : store.lock_ready(2000, 1'000'000, 10)) {
        EXPECT_EQ(workflow_id, workflow_id_);
        ready.push_back(std::move(r));
      }
    } else {
      ready = store.ready_tasks(2000, 1'000'000, 10);
    }
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_TRUE(store.claim(ready[0], "me", "agent-1", 2000, 9000, std::nullopt));
    // The same claim again is fenced by the database, after the first is written.
    EXPECT_FALSE(store.claim(ready[0], "me", "agent-1", 2000, 9000, std::nullopt));
    store.flush();
  });
  const auto d = engine_->get(run.id);
  const auto& a = task(d, "a");
  EXPECT_EQ(a.status, TaskStatus::kRunning);
  EXPECT_EQ(a.attempt, 1);
  EXPECT_EQ(a.agent_id, "agent-1");
  ASSERT_TRUE(a.lease_expires_at);
  EXPECT_EQ(*a.lease_expires_at, 9000);
}

INSTANTIATE_TEST_SUITE_P(Backends, RunStoreTest,
                         ::testing::ValuesIn(testing::database_backends("run_store.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
