// Child workflows and concurrency limits over every Database backend.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "devcycle/workflow/engine.h"
#include "support/backends.h"
#include "support/engine_fixture.h"
#include "support/error_matchers.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::echo;

class EngineCompositionTest : public testing::EngineFixture {
 protected:
  void SetUp() override {
    EngineFixture::SetUp();
    agent("a", "step", "echo");
    engine_->register_function("echo", echo);
  }

  RunStatus status(const std::string& run_id) { return engine_->get(run_id).run.status; }
};

TEST_P(EngineCompositionTest, AChildWorkflowRunsAndItsOutputFlowsOn) {
  workflow(R"({"name": "build-one", "input_schema": {"type": "object", "required": ["repo"]},
    "tasks": [{"id": "b", "capability": "step", "input": {"repo": "{{ input.repo }}"}}]})");
  const auto wf = workflow(R"({"name": "parent", "tasks": [
    {"id": "child", "workflow": "build-one", "input": {"repo": "{{ input.repo }}"}},
    {"id": "after", "capability": "step", "depends_on": ["child"],
     "input": {"built": "{{ tasks.child.output.b.got.repo }}"}}]})");
  std::vector<std::string> events;
  auto sub = engine_->subscribe([&](const EngineEvent& e) {
    if (e.kind != EngineEvent::Kind::kTaskLog)
      events.push_back(std::string(to_string(e.kind)) +
                       (e.task_key.empty() ? "" : ":" + e.task_key));
  });
  const auto run = start(wf, R"({"repo": "git://x"})");
  auto d = engine_->get(run.id);
  const auto& waiting = task(d, "child");
  EXPECT_EQ(waiting.status, TaskStatus::kWaiting);
  ASSERT_FALSE(waiting.child_run_id.empty());
  const auto child = engine_->get(waiting.child_run_id).run;
  EXPECT_EQ(child.workflow, "build-one");
  EXPECT_EQ(child.owner, "alice");
  EXPECT_EQ(child.parent_run_id, run.id);
  EXPECT_EQ(child.parent_task_id, waiting.id);
  EXPECT_EQ(json::parse(child.input), json::parse(R"({"repo": "git://x"})"));

  EXPECT_EQ(engine_->run_until_idle(), 2);  // the child's task, then "after"
  d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(status(child.id), RunStatus::kSucceeded);
  EXPECT_EQ(json::parse(task(d, "child").output),
            json::parse(R"({"b": {"got": {"repo": "git://x"}}})"));
  EXPECT_EQ(json::parse(task(d, "after").input), json::parse(R"({"built": "git://x"})"));
  EXPECT_EQ(std::count(events.begin(), events.end(), "run.started"), 2);
  EXPECT_EQ(std::count(events.begin(), events.end(), "run.finished"), 2);
  EXPECT_NE(std::find(events.begin(), events.end(), "task.waiting:child"), events.end());
  EXPECT_NE(std::find(events.begin(), events.end(), "task.succeeded:child"), events.end());
}

TEST_P(EngineCompositionTest, ChildrenFanOutAndSurviveARestart) {
  workflow(R"({"name": "deploy-region", "tasks": [
    {"id": "soak", "sleep": "5m"},
    {"id": "d", "capability": "step", "depends_on": ["soak"], "input": {"region": "{{ input.region }}"}}]})");
  const auto wf = workflow(R"({"name": "deploy-all", "tasks": [
    {"id": "each", "workflow": "deploy-region", "for_each": "input.regions",
     "input": {"region": "{{ item }}"}}]})");
  const auto run = start(wf, R"({"regions": ["eu", "us"]})");
  EXPECT_EQ(engine_->run_until_idle(), 0);
  // The engine goes away; another takes over: everything is in the database.
  engine_.reset();
  engine_ = make_engine(0);
  engine_->register_function("echo", echo);
  clock_->advance(5min);
  EXPECT_EQ(engine_->run_until_idle(), 2);
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "each").output),
            json::parse(R"([{"d": {"got": {"region": "eu"}}}, {"d": {"got": {"region": "us"}}}])"));
}

TEST_P(EngineCompositionTest, AChildThatFailsFailsItsTask) {
  agent("f", "fails", "fails");
  engine_->register_function(
      "fails", [](TaskContext&) -> std::string { throw std::runtime_error("compiler exploded"); });
  workflow(R"({"name": "bad-child", "tasks": [
    {"id": "x", "capability": "fails", "retry": {"max_attempts": 1}}]})");
  const auto wf = workflow(R"({"name": "p", "tasks": [{"id": "c", "workflow": "bad-child"}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  const auto& c = task(d, "c");
  EXPECT_EQ(c.status, TaskStatus::kFailed);
  EXPECT_NE(c.error.find("child run " + c.child_run_id + " failed"), std::string::npos) << c.error;
  EXPECT_NE(c.error.find("compiler exploded"), std::string::npos) << c.error;
}

TEST_P(EngineCompositionTest, EndingTheParentEndsTheChild) {
  workflow(R"({"name": "gate", "tasks": [{"id": "ok", "signal": "ok"}]})");
  const auto wf = workflow(R"({"name": "p", "tasks": [
    {"id": "c", "workflow": "gate", "timeouts": {"start_to_close": "1h"}}]})");

  // Cancelling the parent run cancels the child.
  auto run = start(wf);
  auto child = task(engine_->get(run.id), "c").child_run_id;
  engine_->cancel(run.id);
  EXPECT_EQ(status(child), RunStatus::kCancelled);
  EXPECT_NE(engine_->get(child).run.error.find("parent run " + run.id + " cancelled"),
            std::string::npos);

  // Cancelling the waiting task cancels the child; the parent fails.
  run = start(wf);
  auto waiting = task(engine_->get(run.id), "c");
  engine_->cancel_task(waiting.id);
  EXPECT_EQ(status(waiting.child_run_id), RunStatus::kCancelled);
  EXPECT_EQ(status(run.id), RunStatus::kFailed);

  // A child that outlasts the task's start_to_close is cancelled; the task times out.
  run = start(wf);
  child = task(engine_->get(run.id), "c").child_run_id;
  clock_->advance(61min);
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(task(d, "c").status, TaskStatus::kTimedOut);
  EXPECT_NE(task(d, "c").error.find("did not finish within start_to_close"), std::string::npos);
  EXPECT_EQ(status(child), RunStatus::kCancelled);

  // Cancelling the child itself fails the parent's task, naming it.
  run = start(wf);
  child = task(engine_->get(run.id), "c").child_run_id;
  engine_->cancel(child);
  const auto after = engine_->get(run.id);
  EXPECT_EQ(after.run.status, RunStatus::kFailed);
  EXPECT_NE(task(after, "c").error.find("child run " + child + " cancelled"), std::string::npos);
}

TEST_P(EngineCompositionTest, ChildrenThatCannotStartFailTheirTaskSayingWhy) {
  workflow(R"({"name": "strict", "input_schema": {"type": "object", "required": ["repo"]},
    "tasks": [{"id": "b", "capability": "step"}]})");
  const auto cases = std::vector<std::pair<std::string, std::string>>{
      {R"({"name": "p1", "tasks": [{"id": "c", "workflow": "ghost"}]})",
       "tasks.c.workflow: workflow \"ghost\" not found"},
      {R"({"name": "p2", "tasks": [{"id": "c", "workflow": "strict", "workflow_version": 7}]})",
       "workflow \"strict\" version 7 not found"},
      {R"({"name": "p3", "tasks": [{"id": "c", "workflow": "strict", "input": {"x": 1}}]})",
       "does not match workflow \"strict\"'s input_schema"},
      {R"({"name": "loop", "tasks": [{"id": "c", "workflow": "loop"}]})", "nest at most 16 deep"}};
  for (const auto& [definition, reason] : cases) {
    const auto run = start(workflow(definition));
    engine_->run_until_idle();
    const auto d = engine_->get(run.id);
    EXPECT_EQ(d.run.status, RunStatus::kFailed) << definition;
    EXPECT_NE(d.run.error.find(reason), std::string::npos) << d.run.error;
  }
  // The recursive workflow stopped at its depth limit, and every run it
  // started ended: nothing is left running.
  RunFilter running;
  running.status = RunStatus::kRunning;
  EXPECT_TRUE(engine_->list(running).runs.empty());
}

TEST_P(EngineCompositionTest, AQueueLetsLimitRunsPerKeyAndStartsTheNextWhenOneEnds) {
  const auto wf = workflow(R"({"name": "deploy",
    "concurrency": {"limit": 1, "key": "{{ input.env }}", "strategy": "queue"},
    "timeout": "1h",
    "tasks": [{"id": "go", "signal": "go"}]})");
  std::vector<std::string> events;
  auto sub = engine_->subscribe([&](const EngineEvent& e) {
    events.push_back(std::string(to_string(e.kind)) + ":" + e.run_id);
  });
  const auto a = start(wf, R"({"env": "prod"})");
  const auto b = start(wf, R"({"env": "prod"})");
  const auto c = start(wf, R"({"env": "staging"})");
  const auto d = start(wf, R"({"env": "prod"})");
  EXPECT_EQ(a.status, RunStatus::kRunning);
  EXPECT_EQ(b.status, RunStatus::kPending);
  EXPECT_EQ(c.status, RunStatus::kRunning);  // another key, another group
  EXPECT_EQ(*b.concurrency_key, "prod");
  EXPECT_TRUE(engine_->get(b.id).tasks.empty());
  EXPECT_FALSE(engine_->get(b.id).run.deadline_at.has_value());
  EXPECT_NE(std::find(events.begin(), events.end(), "run.queued:" + b.id), events.end());

  // A queued run can be cancelled; it never started.
  engine_->cancel(d.id);
  EXPECT_EQ(status(d.id), RunStatus::kCancelled);

  clock_->advance(10min);
  engine_->signal(a.id, "go");
  EXPECT_EQ(status(a.id), RunStatus::kSucceeded);
  const auto started = engine_->get(b.id);
  EXPECT_EQ(started.run.status, RunStatus::kRunning);
  EXPECT_EQ(*started.run.started_at, clock_->now());
  EXPECT_EQ(*started.run.deadline_at, clock_->now() + 3'600'000'000LL);  // from when it started
  EXPECT_EQ(task(started, "go").status, TaskStatus::kWaiting);
  EXPECT_NE(std::find(events.begin(), events.end(), "run.started:" + b.id), events.end());
  engine_->signal(b.id, "go");
  EXPECT_EQ(status(b.id), RunStatus::kSucceeded);
  EXPECT_EQ(status(c.id), RunStatus::kRunning);

  // A retry into a full group queues too.
  const auto e = start(wf, R"({"env": "staging"})");
  EXPECT_EQ(e.status, RunStatus::kPending);
  engine_->cancel(c.id);  // makes room: e starts
  EXPECT_EQ(status(e.id), RunStatus::kRunning);
  EXPECT_EQ(engine_->retry(c.id).status, RunStatus::kPending);
  engine_->signal(e.id, "go");
  EXPECT_EQ(status(c.id), RunStatus::kRunning);
  engine_->signal(c.id, "go");
  EXPECT_EQ(status(c.id), RunStatus::kSucceeded);
}

TEST_P(EngineCompositionTest, CancelNewestRefusesAndCancelOldestReplaces) {
  const auto newest = workflow(R"({"name": "lint",
    "concurrency": {"limit": 2, "strategy": "cancel_newest"},
    "tasks": [{"id": "go", "signal": "go"}]})");
  const auto a = start(newest);
  const auto b = start(newest);
  const auto c = start(newest);
  EXPECT_EQ(status(a.id), RunStatus::kRunning);
  EXPECT_EQ(status(b.id), RunStatus::kRunning);
  EXPECT_EQ(c.status, RunStatus::kCancelled);
  EXPECT_NE(c.error.find("concurrency limit: workflow \"lint\" has 2 active runs"),
            std::string::npos)
      << c.error;
  EXPECT_EQ(*c.concurrency_key, "");
  // Retrying while the group is full is refused under cancel_newest.
  engine_->cancel(a.id);
  EXPECT_EQ(start(newest).status, RunStatus::kRunning);
  EXPECT_DEVCYCLE_ERROR(engine_->retry(a.id), ErrorCode::kResourceExhausted, "concurrency limit");

  const auto oldest = workflow(R"({"name": "preview",
    "concurrency": {"limit": 1, "key": "{{ input.branch }}", "strategy": "cancel_oldest"},
    "tasks": [{"id": "go", "signal": "go"}]})");
  const auto x = start(oldest, R"({"branch": "main"})");
  const auto y = start(oldest, R"({"branch": "main"})");
  EXPECT_EQ(y.status, RunStatus::kRunning);
  const auto replaced = engine_->get(x.id);
  EXPECT_EQ(replaced.run.status, RunStatus::kCancelled);
  EXPECT_NE(replaced.run.error.find("replaced by the newer run " + y.id), std::string::npos)
      << replaced.run.error;
  EXPECT_EQ(task(replaced, "go").status, TaskStatus::kCancelled);
}

TEST_P(EngineCompositionTest, ChildrenDoNotCancelTheirSiblingsTheyWaitForThem) {
  // cancel_oldest among children of one run would fail that run: they queue.
  workflow(R"({"name": "slot", "concurrency": {"limit": 1, "strategy": "cancel_oldest"},
    "tasks": [{"id": "go", "signal": "go"}]})");
  const auto wf = workflow(R"({"name": "fan", "tasks": [
    {"id": "each", "workflow": "slot", "for_each": "[1, 2, 3]"}]})");
  const auto run = start(wf);
  std::vector<std::string> children;
  for (const auto& t : engine_->get(run.id).tasks) {
    if (t.index) children.push_back(t.child_run_id);
  }
  ASSERT_EQ(children.size(), 3u);
  EXPECT_EQ(status(children[0]), RunStatus::kRunning);
  EXPECT_EQ(status(children[1]), RunStatus::kPending);
  EXPECT_EQ(status(children[2]), RunStatus::kPending);
  for (const auto& child : children) {
    ASSERT_EQ(status(child), RunStatus::kRunning);
    engine_->signal(child, "go");
  }
  EXPECT_EQ(status(run.id), RunStatus::kSucceeded);
  // A run that is no kin of theirs still replaces the oldest.
  const auto other = start("slot");
  EXPECT_EQ(other.status, RunStatus::kRunning);
  const auto again = start("slot");
  EXPECT_EQ(status(other.id), RunStatus::kCancelled);
  EXPECT_EQ(again.status, RunStatus::kRunning);
}

TEST_P(EngineCompositionTest, BadConcurrencyAndChildDefinitionsAreRefusedWithTheirPath) {
  const auto refused = [&](const std::string& definition, const std::string& reason) {
    const auto [def, report] = validate_definition(definition);
    EXPECT_FALSE(def.has_value()) << definition;
    EXPECT_NE(report.describe().find(reason), std::string::npos) << report.describe();
  };
  refused(R"({"name": "w", "concurrency": {"limit": 0}, "tasks": [{"id": "a", "sleep": "1s"}]})",
          "$.concurrency.limit");
  refused(R"({"name": "w", "concurrency": {"limit": 1, "strategy": "drop"},
    "tasks": [{"id": "a", "sleep": "1s"}]})",
          "$.concurrency.strategy");
  refused(R"({"name": "w", "concurrency": {"limit": 1, "key": "{{ run.id }}"},
    "tasks": [{"id": "a", "sleep": "1s"}]})",
          "$.concurrency.key: a concurrency key reads only input");
  refused(R"({"name": "w", "tasks": [{"id": "a", "sleep": "1s", "workflow_version": 2}]})",
          "$.tasks[0].workflow_version: applies only to a workflow");
  refused(R"({"name": "w", "tasks": [{"id": "a", "workflow": "Not A Name"}]})",
          "$.tasks[0].workflow");
  refused(R"({"name": "w", "tasks": [{"id": "a", "workflow": "x", "agent": "o/n"}]})",
          "give one of capability, agent, workflow");
  // A key that renders too long is refused at start, naming the field; nothing is stored.
  const auto wf = workflow(R"({"name": "keyed", "concurrency": {"limit": 1, "key": "{{ input.k }}"},
    "tasks": [{"id": "a", "sleep": "1s"}]})");
  EXPECT_DEVCYCLE_ERROR(start(wf, json{{"k", std::string(300, 'k')}}.dump()),
                        ErrorCode::kInvalidArgument, "concurrency.key: gave 300 characters");
  EXPECT_TRUE(engine_->list().runs.empty());
  // The canonical form keeps both.
  const auto stored = catalog_->get("keyed");
  ASSERT_TRUE(stored.definition.concurrency.has_value());
  EXPECT_EQ(stored.definition.concurrency->key, "{{ input.k }}");
  EXPECT_EQ(json::parse(stored.definition_json)["concurrency"]["strategy"], "queue");
}

TEST_P(EngineCompositionTest, NoAgentRunsMoreThanItsCapacityAtOnce) {
  // Two agents, capacity 2 and 1, four workers and eight tasks: at most
  // three attempts run at once, and each agent stays within its own.
  const auto big = agent_run_by("big", "slow", "inproc:slow", 2);
  const auto small = agent_run_by("small", "slow", "inproc:slow", 1);
  auto engine = make_engine(4, SystemClock::instance());
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int running = 0, most = 0;
  engine->register_function("slow", [&](TaskContext&) {
    std::unique_lock lock(mu);
    most = std::max(most, ++running);
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    --running;
    return std::string("{}");
  });
  const auto wf = workflow(R"({"name": "many", "tasks": [
    {"id": "t", "capability": "slow", "for_each": "input.n"}]})");
  StartRun r;
  r.workflow = wf;
  r.owner = "alice";
  r.input = R"({"n": [1, 2, 3, 4, 5, 6, 7, 8]})";
  const auto run = engine->start(r);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return running == 3; }));
  }
  // Many scheduler passes (5 ms apart) later, still three: the others wait in ready.
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> by_agent;
  int ready = 0;
  for (const auto& t : engine->get(run.id).tasks) {
    if (t.status == TaskStatus::kRunning && t.index) ++by_agent[t.agent_id];
    if (t.status == TaskStatus::kReady) ++ready;
  }
  EXPECT_EQ(by_agent[big], 2);
  EXPECT_EQ(by_agent[small], 1);
  EXPECT_EQ(ready, 5);
  {
    std::lock_guard lock(mu);
    open = true;
  }
  cv.notify_all();
  for (int i = 0; i < 1000 && engine->get(run.id).run.status == RunStatus::kRunning; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(engine->get(run.id).run.status, RunStatus::kSucceeded);
  EXPECT_EQ(most, 3);
}

TEST_P(EngineCompositionTest, RemoteAgentsClaimLeaseAndCompleteFenced) {
  const auto remote = agent_run_by("far", "build", "remote", 2);
  AgentUpdate share;
  share.shared = true;  // owned by ops, working on alice's runs
  registry_->update(remote, share);
  const auto wf = workflow(R"({"name": "far", "tasks": [
    {"id": "b", "capability": "build", "for_each": "[1, 2, 3]", "input": {"n": "{{ item }}"},
     "retry": {"max_attempts": 3, "initial": "1s", "jitter": 0}},
    {"id": "after", "capability": "step", "depends_on": ["b"]}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->run_until_idle(), 0);  // nothing here runs remote agents' tasks

  // Capacity 2: two of the three.
  auto got = engine_->claim_remote(remote, 5, 30s);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].attempt, 1);
  EXPECT_EQ(got[0].lease_owner, "remote:" + remote);
  EXPECT_EQ(got[0].lease_expires_at, clock_->now() + 30'000'000);
  EXPECT_EQ(json::parse(got[0].input)["n"], 1);
  EXPECT_EQ(got[0].idempotency_key, run.id + "/b[0]/1");
  EXPECT_TRUE(engine_->claim_remote(remote, 5, 30s).empty());

  EXPECT_TRUE(engine_->log_remote(got[0].task_id, 1, got[0].lease_owner, LogLevel::kInfo, "hi"));
  EXPECT_TRUE(
      engine_->complete_remote(got[0].task_id, 1, got[0].lease_owner, true, R"({"built": 1})"));
  EXPECT_FALSE(engine_->complete_remote(got[0].task_id, 1, got[0].lease_owner, true, "{}"))
      << "a repeated completion changes nothing";
  EXPECT_EQ(engine_->logs(got[0].task_id).lines.at(0).message, "hi");

  // The second one's worker goes silent: its lease runs out and the task is
  // retried; the late worker is fenced off.
  EXPECT_TRUE(engine_->extend_remote(got[1].task_id, 1, got[1].lease_owner, 10s));
  clock_->advance(11s);
  engine_->run_until_idle();  // expiry
  EXPECT_FALSE(engine_->extend_remote(got[1].task_id, 1, got[1].lease_owner, 10s));
  EXPECT_FALSE(engine_->log_remote(got[1].task_id, 1, got[1].lease_owner, LogLevel::kInfo, "x"));
  EXPECT_FALSE(engine_->complete_remote(got[1].task_id, 1, got[1].lease_owner, true, "{}"));
  clock_->advance(2s);  // the retry's backoff
  auto again = engine_->claim_remote(remote, 5, 30s);
  ASSERT_EQ(again.size(), 2u);  // the third element and the retried second
  for (const auto& r : again) {
    if (r.task_id == got[1].task_id) {
      EXPECT_EQ(r.attempt, 2);
    }
    EXPECT_TRUE(engine_->complete_remote(r.task_id, r.attempt, r.lease_owner, true, "{}"));
  }
  EXPECT_EQ(engine_->run_until_idle(), 1);  // "after" runs here
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kSucceeded);

  EXPECT_DEVCYCLE_ERROR(engine_->claim_remote(remote, 0, 30s), ErrorCode::kInvalidArgument, "max");
  EXPECT_DEVCYCLE_ERROR(engine_->claim_remote(remote, 1, 10h), ErrorCode::kInvalidArgument,
                        "lease");
  const auto local = agent_run_by("near", "other", "inproc:echo");
  EXPECT_DEVCYCLE_ERROR(engine_->claim_remote(local, 1, 30s), ErrorCode::kInvalidArgument,
                        "not \"remote\"");
  EXPECT_DEVCYCLE_ERROR(engine_->complete_remote("nope", 1, "x", true, "{}"), ErrorCode::kNotFound,
                        "task");
}

// Issue #20: a developer's remote agent that advertised another user's
// capability claimed that user's tasks, with their inputs, and completed
// them. A remote agent now gets only its owner's runs' tasks, unless an
// admin shared it; completions, heartbeats and logs are checked the same.
TEST_P(EngineCompositionTest, ARemoteAgentGetsOnlyItsOwnersTasksUnlessShared) {
  const auto remote = agent_run_by("thief", "build", "remote", 5);  // owned by ops
  const auto wf = workflow(R"({"name": "mine", "tasks": [
    {"id": "b", "capability": "build", "for_each": "[1, 2]", "input": {"n": "{{ item }}"}}]})");
  const auto run = start(wf);  // alice's
  EXPECT_TRUE(engine_->claim_remote(remote, 5, 30s).empty());
  for (const auto& t : engine_->get(run.id).tasks) {
    if (t.index) {
      EXPECT_EQ(t.status, TaskStatus::kReady) << t.key;  // the elements, not the group
    }
  }

  // Its owner's run: claimed.
  StartRun own;
  own.workflow = wf;
  own.owner = "ops";
  const auto ops_run = engine_->start(own);
  auto got = engine_->claim_remote(remote, 5, 30s);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& g : got) EXPECT_EQ(g.run_id, ops_run.id);

  // Shared by an admin: alice's too.
  AgentUpdate u;
  u.shared = true;
  registry_->update(remote, u);
  auto shared = engine_->claim_remote(remote, 5, 30s);
  ASSERT_EQ(shared.size(), 2u);
  EXPECT_EQ(shared[0].run_id, run.id);
  EXPECT_TRUE(engine_->complete_remote(shared[0].task_id, 1, shared[0].lease_owner, true, "{}"));

  // Unshared while it holds one: it may not heartbeat, log or complete it.
  u.shared = false;
  registry_->update(remote, u);
  const auto& held = shared[1];
  EXPECT_DEVCYCLE_ERROR(engine_->extend_remote(held.task_id, 1, held.lease_owner, 10s),
                        ErrorCode::kPermissionDenied, "not shared");
  EXPECT_DEVCYCLE_ERROR(
      engine_->log_remote(held.task_id, 1, held.lease_owner, LogLevel::kInfo, "x"),
      ErrorCode::kPermissionDenied);
  EXPECT_DEVCYCLE_ERROR(engine_->complete_remote(held.task_id, 1, held.lease_owner, true, "{}"),
                        ErrorCode::kPermissionDenied);
  EXPECT_EQ(engine_->get_task(held.task_id).status, TaskStatus::kRunning);
  // Its own run's tasks it still completes.
  EXPECT_TRUE(engine_->complete_remote(got[0].task_id, 1, got[0].lease_owner, true, "{}"));
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineCompositionTest,
                         ::testing::ValuesIn(testing::database_backends("composition.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
