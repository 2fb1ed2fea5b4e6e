// The engine's RunStore over every Database backend, on what the engine's
// batches rely on and cannot show deterministically: on PostgreSQL, writes
// deferred to one statement each and rows prefetched for a batch must read
// back exactly as written, whatever order reads and writes come in. On
// SQLite the same calls write and read at once; the results must not differ.
#include "workflow/run_store.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "devcycle/common/uuid.h"
#include "support/engine_fixture.h"
#include "workflow/catalog_view.h"

namespace devcycle {
namespace {

using internal::CatalogView;
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

// The statements engine.cpp ran on the transaction itself, now the store's
// (and the catalog's): each must answer as the statement did.

TEST_P(RunStoreTest, TaskExistsAndDeleteTaskGoByTheTaskId) {
  const devcycle::Run run = make_run();
  const std::vector<TaskRow> rows{make_task(run, "a"), make_task(run, "b")};
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.insert_run(run, workflow_id_);
    store.insert_tasks(rows);
  });
  db_->write([&](Txn& t) {
    RunStore store(t);
    EXPECT_TRUE(store.task_exists(rows[0].task.id));
    EXPECT_FALSE(store.task_exists(new_uuid_v7()));
    store.delete_task(rows[0].task.id);
    EXPECT_FALSE(store.task_exists(rows[0].task.id));
    EXPECT_TRUE(store.task_exists(rows[1].task.id));
    store.delete_task(new_uuid_v7());  // nothing to delete: no error
  });
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.tasks.size(), 1u);
  EXPECT_EQ(d.tasks[0].key, "b");
}

TEST_P(RunStoreTest, HolderOfAndReleaseUnstartedFollowTheLease) {
  const devcycle::Run run = make_run();
  auto row = make_task(run, "a");
  row.task.status = TaskStatus::kReady;
  row.task.ready_at = 1000;
  row.task.available_at = 1000;
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.insert_run(run, workflow_id_);
    store.insert_task(row);
    const auto ready = store.holder_of(row.task.id);
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, "ready");
    EXPECT_EQ(ready->attempt, 0);
    EXPECT_FALSE(ready->lease_owner);
    EXPECT_FALSE(store.holder_of(new_uuid_v7()));
    ASSERT_TRUE(store.claim(row, "me", "agent-1", 2000, 9000, 8000));
  });
  db_->write([&](Txn& t) {
    RunStore store(t);
    const auto running = store.holder_of(row.task.id);
    ASSERT_TRUE(running);
    EXPECT_EQ(running->status, "running");
    EXPECT_EQ(running->attempt, 1);
    ASSERT_TRUE(running->lease_owner);
    EXPECT_EQ(*running->lease_owner, "me");
    // Fenced by attempt and owner.
    EXPECT_FALSE(store.release_unstarted(row.task.id, 1, "someone else"));
    EXPECT_FALSE(store.release_unstarted(row.task.id, 2, "me"));
    EXPECT_TRUE(store.release_unstarted(row.task.id, 1, "me"));
    EXPECT_FALSE(store.release_unstarted(row.task.id, 1, "me"));  // no longer running
    const auto back = store.find_task(row.task.id);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->task.status, TaskStatus::kReady);
    EXPECT_EQ(back->task.attempt, 0);
    EXPECT_TRUE(back->lease_owner.empty());
    EXPECT_FALSE(back->task.lease_expires_at);
    EXPECT_FALSE(back->close_deadline);
    EXPECT_EQ(back->task.agent_id, "agent-1");  // left as the claim wrote it
    const auto released = store.holder_of(row.task.id);
    ASSERT_TRUE(released);
    EXPECT_EQ(released->status, "ready");
    EXPECT_EQ(released->attempt, 0);
    EXPECT_FALSE(released->lease_owner);
  });
}

TEST_P(RunStoreTest, FinishedRunsBeforeListsEndedRunsEarliestFirst) {
  std::vector<devcycle::Run> runs;
  const std::pair<RunStatus, Micros> ends[] = {
      {RunStatus::kFailed, 4000},   {RunStatus::kSucceeded, 2000}, {RunStatus::kCancelled, 3000},
      {RunStatus::kTimedOut, 4500}, {RunStatus::kSucceeded, 5000},  // not before 5000
      {RunStatus::kRunning, 0},     {RunStatus::kPaused, 0},       {RunStatus::kPending, 0}};
  for (const auto& [status, finished_at] : ends) {
    auto r = make_run();
    r.idempotency_key.clear();
    r.status = status;
    if (finished_at) r.finished_at = finished_at;
    runs.push_back(r);
  }
  // A run that is running but carries a finished_at (as no engine writes
  // it) is still not finished.
  runs[5].finished_at = 1000;
  db_->write([&](Txn& t) {
    RunStore store(t);
    for (const auto& r : runs) store.insert_run(r, workflow_id_);
  });
  db_->read([&](Txn& t) {
    RunStore store(t);
    EXPECT_EQ(store.finished_runs_before(5000, 10),
              (std::vector<std::string>{runs[1].id, runs[2].id, runs[0].id, runs[3].id}));
    EXPECT_EQ(store.finished_runs_before(5000, 2),
              (std::vector<std::string>{runs[1].id, runs[2].id}));
    EXPECT_TRUE(store.finished_runs_before(2000, 10).empty());
    return 0;
  });
}

TEST_P(RunStoreTest, PurgeRunDeletesTheRunAndEverythingRecordedOfIt) {
  const devcycle::Run gone = make_run();
  devcycle::Run kept = make_run();
  kept.idempotency_key = "other";
  const TaskRow gone_task = make_task(gone, "a");
  const TaskRow kept_task = make_task(kept, "a");
  auto artifact = [](const devcycle::Run& r, const TaskRow& row, const std::string& digest) {
    return Artifact{new_uuid_v7(), r.id, row.task.id, row.task.key, 1, "out.txt", digest, 3, 1500};
  };
  db_->write([&](Txn& t) {
    RunStore store(t);
    store.insert_run(gone, workflow_id_);
    store.insert_run(kept, workflow_id_);
    for (const auto* row : {&gone_task, &kept_task}) {
      store.insert_task(*row);
      store.insert_attempt(row->task.id, {1, "agent-1", "me", "failed", "boom", 1100, 1200});
      store.insert_log({new_uuid_v7(), row->task.id, 1, LogLevel::kInfo, "line", 1150});
    }
    store.insert_artifact(artifact(gone, gone_task, "sha256:only-gone"));
    store.insert_artifact(artifact(gone, gone_task, "sha256:shared"));
    store.insert_artifact(artifact(gone, gone_task, "sha256:shared"));
    store.insert_artifact(artifact(kept, kept_task, "sha256:shared"));
  });
  db_->write([&](Txn& t) {
    RunStore store(t);
    auto digests = store.artifact_digests_of(gone.id);
    std::sort(digests.begin(), digests.end());
    EXPECT_EQ(digests, (std::vector<std::string>{"sha256:only-gone", "sha256:shared"}));
    EXPECT_TRUE(store.artifact_digests_of(new_uuid_v7()).empty());
    EXPECT_TRUE(store.digest_referenced("sha256:only-gone"));
    EXPECT_FALSE(store.digest_referenced("sha256:never"));
    store.purge_run(gone.id);
    EXPECT_FALSE(store.find_run(gone.id));
    EXPECT_FALSE(store.task_exists(gone_task.task.id));
    EXPECT_TRUE(store.artifacts_of(gone.id).empty());
    EXPECT_TRUE(store.logs(gone_task.task.id, std::nullopt, "", 10).empty());
    EXPECT_TRUE(store.attempts_of(gone_task).empty());
    EXPECT_FALSE(store.digest_referenced("sha256:only-gone"));
    EXPECT_TRUE(store.digest_referenced("sha256:shared"));
    // The other run keeps everything.
    EXPECT_TRUE(store.find_run(kept.id));
    EXPECT_EQ(store.artifacts_of(kept.id).size(), 1u);
    EXPECT_EQ(store.logs(kept_task.task.id, std::nullopt, "", 10).size(), 1u);
    EXPECT_EQ(store.attempts_of(kept_task).size(), 1u);
  });
}

TEST_P(RunStoreTest, CatalogViewReadsStoredVersionsInTheCallersTransaction) {
  const auto v1 = catalog_->get("s", 1);
  const auto v2 =
      catalog_->create(R"({"name": "s", "tasks": [{"id": "b", "capability": "x"}]})", "alice");
  ASSERT_EQ(v2.version, 2);
  db_->write([&](Txn& t) {
    CatalogView view(t);
    const auto text = view.definition_json(v1.id);
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, v1.definition_json);
    EXPECT_FALSE(view.definition_json(new_uuid_v7()));
    const auto latest = view.find_version("s", std::nullopt);
    ASSERT_TRUE(latest);
    EXPECT_EQ(latest->id, v2.id);
    EXPECT_EQ(latest->version, 2);
    const auto first = view.find_version("s", 1);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, v1.id);
    EXPECT_EQ(first->version, 1);
    EXPECT_FALSE(view.find_version("s", 3));
    EXPECT_FALSE(view.find_version("nothing", std::nullopt));
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, RunStoreTest,
                         ::testing::ValuesIn(testing::database_backends("run_store.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
