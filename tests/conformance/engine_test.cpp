// The workflow engine over every Database backend. Most tests run the
// engine without threads (workers = 0) on a ManualClock, so that retries,
// leases and timeouts are exact and nothing sleeps.
#include "devcycle/workflow/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "devcycle/messaging/bus_worker.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/testing/fault_injecting_database.h"
#include "support/backends.h"
#include "support/engine_fixture.h"
#include "support/error_matchers.h"
#include "support/plain_hasher.h"
#include "support/race.h"
#include "support/table_snapshot.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class EngineTest : public testing::EngineFixture {
 protected:
  // Options of an engine without threads whose owners may each have
  // `quota` active runs.
  EngineOptions with_run_quota(int quota) {
    EngineOptions o;
    o.clock = clock_;
    o.workers = 0;
    o.max_active_runs_per_owner = quota;
    return o;
  }
};

using testing::echo;

TEST_P(EngineTest, LinearWorkflowPassesOutputsDownstream) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "line", "tasks": [
    {"id": "a", "capability": "step", "input": {"repo": "{{ input.repo }}"}},
    {"id": "b", "capability": "step", "depends_on": ["a"], "input": {"from_a": "{{ tasks.a.output.got.repo }}"}},
    {"id": "c", "capability": "step", "depends_on": ["b"], "input": {"all": "{{ tasks.b.output }}", "n": 1}}]})");
  std::vector<std::string> events;
  auto sub = engine_->subscribe([&](const EngineEvent& e) {
    events.push_back(std::string(to_string(e.kind)) + (e.task_key.empty() ? "" : ":" + e.task_key));
  });
  const auto run = start(wf, R"({"repo": "git://x"})");
  EXPECT_EQ(run.status, RunStatus::kRunning);
  EXPECT_EQ(engine_->run_until_idle(), 3);
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "b").input), json::parse(R"({"from_a": "git://x"})"));
  EXPECT_EQ(json::parse(d.run.output),
            json::parse(R"({"c": {"got": {"all": {"got": {"from_a": "git://x"}}, "n": 1}}})"));
  for (const auto& t : d.tasks) {
    EXPECT_EQ(t.status, TaskStatus::kSucceeded) << t.key;
    ASSERT_EQ(t.attempts.size(), 1u) << t.key;
    EXPECT_EQ(t.attempts[0].status, "succeeded");
    EXPECT_FALSE(t.agent_id.empty());
  }
  EXPECT_EQ(events, (std::vector<std::string>{"run.started", "task.ready:a", "task.started:a",
                                              "task.succeeded:a", "task.ready:b", "task.started:b",
                                              "task.succeeded:b", "task.ready:c", "task.started:c",
                                              "task.succeeded:c", "run.finished"}));
}

TEST_P(EngineTest, FanOutRunsOneTaskPerElementAndCollectsOutputs) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "fan", "tasks": [
    {"id": "each", "capability": "step", "for_each": "input.files", "when": "item != 'skip.c'",
     "input": {"file": "{{ item }}", "i": "{{ index }}"}},
    {"id": "sum", "capability": "step", "depends_on": ["each"], "input": {"outs": "{{ tasks.each.output }}"}}]})");
  const auto run = start(wf, R"({"files": ["a.c", "skip.c", "b.c"]})");
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(task(d, "each[1]").status, TaskStatus::kSkipped);
  EXPECT_EQ(json::parse(task(d, "each[2]").input), json::parse(R"({"file": "b.c", "i": 2})"));
  EXPECT_EQ(
      json::parse(task(d, "each").output),
      json::parse(R"([{"got": {"file": "a.c", "i": 0}}, null, {"got": {"file": "b.c", "i": 2}}])"));
  EXPECT_EQ(json::parse(task(d, "sum").input)["outs"].size(), 3u);
}

TEST_P(EngineTest, EmptyFanOutAndFalseConditionsSkipCleanly) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "skip", "tasks": [
    {"id": "maybe", "capability": "step", "when": "input.go"},
    {"id": "each", "capability": "step", "for_each": "input.none"},
    {"id": "after", "capability": "step", "depends_on": ["maybe", "each"], "input": {"m": "{{ tasks.maybe.output }}"}}]})");
  const auto run = start(wf, R"({"go": false, "none": []})");
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(task(d, "maybe").status, TaskStatus::kSkipped);
  EXPECT_EQ(task(d, "each").output, "[]");
  EXPECT_EQ(json::parse(task(d, "after").input), json::parse(R"({"m": null})"));
}

TEST_P(EngineTest, FailedAttemptsRetryAfterBackoffThenSucceed) {
  agent("a", "flaky", "flaky");
  int calls = 0;
  engine_->register_function("flaky", [&](TaskContext& ctx) -> std::string {
    ++calls;
    EXPECT_EQ(ctx.attempt(), calls);
    EXPECT_EQ(ctx.idempotency_key(), ctx.run_id() + "/t/" + std::to_string(calls));
    if (calls < 3) throw std::runtime_error("network blip " + std::to_string(calls));
    return R"({"ok": true})";
  });
  const auto wf = workflow(R"({"name": "retry", "tasks": [{"id": "t", "capability": "flaky",
    "retry": {"max_attempts": 3, "initial": "10s", "multiplier": 2, "max": "1m", "jitter": 0}}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->run_until_idle(), 1);
  auto d = engine_->get(run.id);
  EXPECT_EQ(task(d, "t").status, TaskStatus::kReady);
  EXPECT_EQ(*task(d, "t").available_at, clock_->now() + 10'000'000);
  clock_->advance(9s);
  EXPECT_EQ(engine_->run_until_idle(), 0);  // still backing off
  clock_->advance(1s);
  EXPECT_EQ(engine_->run_until_idle(), 1);
  d = engine_->get(run.id);
  EXPECT_EQ(*task(d, "t").available_at, clock_->now() + 20'000'000);  // doubled
  clock_->advance(20s);
  engine_->run_until_idle();
  d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded);
  const auto& t = task(d, "t");
  ASSERT_EQ(t.attempts.size(), 3u);
  EXPECT_EQ(t.attempts[0].status, "failed");
  EXPECT_EQ(t.attempts[0].error, "network blip 1");
  EXPECT_EQ(t.attempts[2].status, "succeeded");
}

TEST_P(EngineTest, ExhaustedRetriesFailTheRunAndCancelTheRest) {
  agent("a", "bad", "bad");
  agent("b", "step", "echo");
  engine_->register_function("bad",
                             [](TaskContext&) -> std::string { throw std::runtime_error("boom"); });
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "fail", "tasks": [
    {"id": "x", "capability": "bad", "retry": {"max_attempts": 2, "initial": "1s", "jitter": 0}},
    {"id": "y", "capability": "step", "depends_on": ["x"]}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  clock_->advance(1s);
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_EQ(d.run.error, "task x failed: boom");
  EXPECT_EQ(task(d, "x").attempts.size(), 2u);
  EXPECT_EQ(task(d, "y").status, TaskStatus::kCancelled);
}

TEST_P(EngineTest, InvalidArgumentAndBadOutputFailWithoutRetry) {
  agent("a", "strict", "strict");
  agent("b", "garbled", "garbled");
  engine_->register_function("strict", [](TaskContext&) -> std::string {
    throw Error(ErrorCode::kInvalidArgument, "spec: missing");
  });
  engine_->register_function("garbled", [](TaskContext&) -> std::string { return "{not json"; });
  const auto wf1 = workflow(R"({"name": "s", "tasks": [{"id": "t", "capability": "strict"}]})");
  const auto wf2 = workflow(R"({"name": "g", "tasks": [{"id": "t", "capability": "garbled"}]})");
  const auto r1 = start(wf1);
  const auto r2 = start(wf2);
  engine_->run_until_idle();
  auto d1 = engine_->get(r1.id);
  EXPECT_EQ(d1.run.status, RunStatus::kFailed);
  EXPECT_EQ(task(d1, "t").attempts.size(), 1u);
  auto d2 = engine_->get(r2.id);
  EXPECT_EQ(d2.run.status, RunStatus::kFailed);
  EXPECT_NE(task(d2, "t").error.find("output must be JSON"), std::string::npos);
}

TEST_P(EngineTest, ExpiredLeaseIsRetriedAndTheStaleCompletionIsFencedOff) {
  agent("a", "slow", "slow");
  int calls = 0;
  engine_->register_function("slow", [&](TaskContext& ctx) -> std::string {
    ++calls;
    if (calls == 1) {
      clock_->advance(2min);  // this attempt hangs past its 1m start_to_close
      EXPECT_DEVCYCLE_ERROR(ctx.heartbeat(), ErrorCode::kConflict, "no longer holds its lease");
      return R"({"from": "stale attempt"})";
    }
    return R"({"from": "attempt 2"})";
  });
  const auto wf = workflow(R"({"name": "lease", "tasks": [{"id": "t", "capability": "slow",
    "timeouts": {"start_to_close": "1m"}, "retry": {"max_attempts": 3, "initial": "1s", "jitter": 0}}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->tick(), 1);
  auto d = engine_->get(run.id);
  EXPECT_EQ(task(d, "t").status, TaskStatus::kRunning);  // the stale completion changed nothing
  EXPECT_EQ(task(d, "t").output, "");
  engine_->tick();  // the lease has expired: attempt 1 times out, the task goes back to ready
  d = engine_->get(run.id);
  EXPECT_EQ(task(d, "t").attempts[0].status, "timed_out");
  EXPECT_EQ(task(d, "t").status, TaskStatus::kReady);
  clock_->advance(1s);
  engine_->run_until_idle();
  d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded);
  EXPECT_EQ(json::parse(task(d, "t").output)["from"], "attempt 2");
}

TEST_P(EngineTest, HeartbeatsKeepALongAttemptAlive) {
  agent("a", "long", "long");
  engine_->register_function("long", [&](TaskContext& ctx) -> std::string {
    for (int i = 0; i < 5; ++i) {
      clock_->advance(20s);  // each step within the 30s heartbeat timeout
      ctx.heartbeat();
      ctx.log(LogLevel::kInfo, "step " + std::to_string(i));
    }
    return "{}";
  });
  const auto wf = workflow(R"({"name": "hb", "tasks": [{"id": "t", "capability": "long",
    "timeouts": {"heartbeat": "30s"}}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded);
  const auto page1 = engine_->logs(task(d, "t").id, std::nullopt, 3);
  ASSERT_EQ(page1.lines.size(), 3u);
  EXPECT_EQ(page1.lines[0].message, "step 0");
  EXPECT_EQ(page1.lines[0].attempt, 1);
  const auto page2 = engine_->logs(task(d, "t").id, 1, 3, page1.next_page_token);
  ASSERT_EQ(page2.lines.size(), 2u);
  EXPECT_EQ(page2.lines[1].message, "step 4");
  EXPECT_TRUE(page2.next_page_token.empty());
  EXPECT_DEVCYCLE_ERROR(engine_->logs("0190c8a0-0000-7000-8000-000000000000"), ErrorCode::kNotFound,
                        "task");
}

TEST_P(EngineTest, TasksNobodyCanRunTimeOutOnScheduleToStart) {
  const auto wf = workflow(R"({"name": "orphan", "tasks": [{"id": "t", "capability": "nobody",
    "timeouts": {"schedule_to_start": "5m"}}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->run_until_idle(), 0);
  clock_->advance(4min);
  engine_->tick();
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kRunning);
  clock_->advance(2min);
  engine_->tick();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_EQ(task(d, "t").status, TaskStatus::kTimedOut);
  EXPECT_NE(d.run.error.find("schedule_to_start"), std::string::npos);
}

TEST_P(EngineTest, RunTimeoutEndsTheRun) {
  const auto wf = workflow(
      R"({"name": "slowrun", "timeout": "10m", "tasks": [{"id": "t", "capability": "nobody"}]})");
  const auto run = start(wf);
  EXPECT_EQ(*run.deadline_at, clock_->now() + 600'000'000);
  clock_->advance(11min);
  engine_->tick();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kTimedOut);
  EXPECT_EQ(task(d, "t").status, TaskStatus::kCancelled);
}

TEST_P(EngineTest, CancelStopsTheRunAndTellsRunningWork) {
  agent("a", "step", "self_cancel");
  Engine* engine = engine_.get();
  bool saw_cancel = false;
  engine_->register_function("self_cancel", [&](TaskContext& ctx) -> std::string {
    engine->cancel(ctx.run_id());
    saw_cancel = ctx.cancelled();
    return "{}";
  });
  const auto wf = workflow(R"({"name": "c", "tasks": [{"id": "t", "capability": "step"},
                                                      {"id": "u", "capability": "step", "depends_on": ["t"]}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  EXPECT_TRUE(saw_cancel);
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kCancelled);
  EXPECT_EQ(task(d, "t").status, TaskStatus::kCancelled);  // its completion was refused
  EXPECT_EQ(task(d, "t").attempts[0].status, "cancelled");
  EXPECT_EQ(task(d, "u").status, TaskStatus::kCancelled);
  EXPECT_EQ(engine_->cancel(run.id).status, RunStatus::kCancelled);  // idempotent
}

TEST_P(EngineTest, RetryRunsAFailedRunAgainFromWhatDidNotSucceed) {
  agent("a", "step", "echo");
  agent("b", "gate", "gate");
  bool open = false;
  int echo_calls = 0;
  engine_->register_function("echo", [&](TaskContext& ctx) {
    ++echo_calls;
    return echo(ctx);
  });
  engine_->register_function("gate", [&](TaskContext&) -> std::string {
    if (!open) throw std::runtime_error("closed");
    return "{}";
  });
  const auto wf = workflow(R"({"name": "r", "tasks": [{"id": "first", "capability": "step"},
    {"id": "gate", "capability": "gate", "depends_on": ["first"], "retry": {"max_attempts": 1}},
    {"id": "last", "capability": "step", "depends_on": ["gate"]}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kFailed);
  EXPECT_DEVCYCLE_ERROR(engine_->retry("0190c8a0-0000-7000-8000-000000000000"),
                        ErrorCode::kNotFound, "run");
  open = true;
  EXPECT_EQ(engine_->retry(run.id).status, RunStatus::kRunning);
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded);
  EXPECT_EQ(echo_calls, 2);  // "first" was not run again
  EXPECT_EQ(task(d, "gate").attempts.size(), 2u);
  EXPECT_DEVCYCLE_ERROR(engine_->retry(run.id), ErrorCode::kInvalidArgument, "succeeded");
}

TEST_P(EngineTest, IdempotencyKeyReturnsTheSameRun) {
  const auto wf = workflow(R"({"name": "i", "tasks": [{"id": "t", "capability": "nobody"}]})");
  const auto wf2 = workflow(R"({"name": "j", "tasks": [{"id": "t", "capability": "nobody"}]})");
  const auto a = start(wf, "{}", "deploy-42");
  const auto b = start(wf, "{}", "deploy-42");
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(engine_->list().runs.size(), 1u);
  EXPECT_DEVCYCLE_ERROR(start(wf2, "{}", "deploy-42"), ErrorCode::kConflict, "idempotency_key",
                        "deploy-42");
}

TEST_P(EngineTest, BadStartsAreRefusedNamingTheFieldAndStoreNothing) {
  const auto wf = workflow(R"({"name": "v", "input_schema": {"type": "object", "required": ["repo"],
    "properties": {"repo": {"type": "string"}}}, "tasks": [{"id": "t", "capability": "nobody"}]})");
  EXPECT_DEVCYCLE_ERROR(start(wf, R"({"repo": 5})"), ErrorCode::kInvalidArgument, "input_schema",
                        "$.repo: must be a string");
  EXPECT_DEVCYCLE_ERROR(start(wf, R"({})"), ErrorCode::kInvalidArgument, "$.repo: is required");
  EXPECT_DEVCYCLE_ERROR(start(wf, "[1]"), ErrorCode::kInvalidArgument,
                        "input: must be a JSON object");
  EXPECT_DEVCYCLE_ERROR(start(wf, "{oops"), ErrorCode::kInvalidArgument, "input: not valid JSON");
  EXPECT_DEVCYCLE_ERROR(start("ghost"), ErrorCode::kNotFound, "ghost");
  StartRun r;
  r.workflow = wf;
  r.input = R"({"repo": "x"})";
  EXPECT_DEVCYCLE_ERROR(engine_->start(r), ErrorCode::kInvalidArgument, "owner");
  r.owner = "alice";
  r.version = 9;
  EXPECT_DEVCYCLE_ERROR(engine_->start(r), ErrorCode::kNotFound, "version 9");
  EXPECT_TRUE(engine_->list().runs.empty());
  EXPECT_DEVCYCLE_ERROR(engine_->get("nope"), ErrorCode::kNotFound, "nope");
}

// A bus that refuses batches while `down` is set: the outbox must keep the
// events until the bus takes them. Everything else goes to the real bus.
class FlakyBus final : public MessageBus {
 public:
  explicit FlakyBus(MessageBus& real) : real_(real) {}
  std::atomic<bool> down{false};
  std::future<Published> publish(Message m) override { return real_.publish(std::move(m)); }
  std::future<std::vector<Published>> publish_batch(std::vector<Message> ms) override {
    if (down) throw Error(ErrorCode::kUnavailable, "bus: down for the test");
    return real_.publish_batch(std::move(ms));
  }
  std::vector<Delivery> fetch(const std::string& t, const std::string& g, int max,
                              const ConsumeOptions& o) override {
    return real_.fetch(t, g, max, o);
  }
  void ack(const Delivery& d) override { real_.ack(d); }
  void ack(const std::vector<Delivery>& ds) override { real_.ack(ds); }
  void nack(const Delivery& d, const std::string& r, const ConsumeOptions& o) override {
    real_.nack(d, r, o);
  }
  Subscription subscribe(const std::string& t, const std::string& g, MessageHandler h,
                         SubscribeOptions o) override {
    return real_.subscribe(t, g, std::move(h), o);
  }
  std::vector<DeadLetter> dead_letters(const std::string& t, const std::string& g, int l,
                                       std::int64_t a) override {
    return real_.dead_letters(t, g, l, a);
  }
  int redrive(const std::string& t, const std::string& g,
              const std::vector<std::string>& ids) override {
    return real_.redrive(t, g, ids);
  }
  void seek(const std::string& t, const std::string& g, std::int64_t o) override {
    real_.seek(t, g, o);
  }
  void seek_to_time(const std::string& t, const std::string& g, Micros at) override {
    real_.seek_to_time(t, g, at);
  }
  std::int64_t purge(Micros before) override { return real_.purge(before); }

 private:
  MessageBus& real_;
};

TEST_P(EngineTest, EventsReachTheBusThroughTheOutboxEvenAfterTheBusWasDown) {
  auto real = MessageBus::open("inproc://", *db_);
  FlakyBus bus(*real);
  bus.down = true;
  auto engine = std::make_unique<Engine>(*db_, *registry_, *catalog_, on_bus(bus));
  agent("a", "step", "echo");
  engine->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "ev", "tasks": [{"id": "a", "capability": "step"},
    {"id": "b", "capability": "step", "depends_on": ["a"]}]})");
  StartRun r;
  r.workflow = wf;
  r.owner = "alice";
  const auto run = engine->start(r);
  EXPECT_EQ(engine->run_until_idle(), 2);
  auto outbox = [&] {
    return db_->read([](Txn& t) { return t.query("SELECT COUNT(*) FROM outbox")[0][0].as_int(); });
  };
  EXPECT_EQ(outbox(), 8) << "the bus is down: the events wait in the outbox";
  EXPECT_TRUE(real->fetch("devcycle.events", "watcher", 100).empty());

  bus.down = false;  // the relay retries on its own
  std::vector<Delivery> got;
  for (int i = 0; i < 1000 && got.size() < 8; ++i) {
    auto more = real->fetch("devcycle.events", "watcher", 100);
    real->ack(more);  // one run's events share a key: the next comes after the ack
    got.insert(got.end(), more.begin(), more.end());
    if (got.size() < 8) std::this_thread::sleep_for(20ms);  // liveness, not speed
  }
  std::vector<std::string> kinds;
  for (const auto& d : got) {
    const auto j = json::parse(d.message.payload);
    EXPECT_EQ(d.message.key, run.id);
    EXPECT_EQ(j["run_id"], run.id);
    kinds.push_back(j["kind"].get<std::string>() +
                    (j.contains("task_key") ? ":" + j["task_key"].get<std::string>() : ""));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"run.started", "task.ready:a", "task.started:a",
                                             "task.succeeded:a", "task.ready:b", "task.started:b",
                                             "task.succeeded:b", "run.finished"}));
  EXPECT_EQ(json::parse(got.back().message.payload)["status"], "succeeded");
  for (int i = 0; i < 500 && outbox() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(outbox(), 0) << "published events leave the outbox";
  engine.reset();
}

// An agent in another process, played by the test over the bus: it takes
// assignments and sends completions back; the engine records each once.
TEST_P(EngineTest, TasksOfBusAgentsGoOutAsAssignmentsAndCompletionsComeBack) {
  auto bus = MessageBus::open("inproc://", *db_);
  auto o = on_bus(*bus);
  o.event_topic = "";  // assignments only
  auto engine = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  const auto agent_id = agent_run_by("remote", "far", "bus:");
  const auto wf = workflow(R"({"name": "far", "tasks": [
    {"id": "a", "capability": "far", "input": {"n": 1}},
    {"id": "b", "capability": "far", "depends_on": ["a"], "input": {"n": "{{ tasks.a.output.n }}"}}]})");
  const auto run = start(wf);

  // The remote agent's side: the next assignment (ticking the engine meanwhile).
  auto next_assignment = [&] {
    for (int i = 0; i < 1000; ++i) {  // liveness, not speed
      engine->tick();
      auto got = bus->fetch("devcycle.tasks.far", "remote-agents", 1);
      if (!got.empty()) {
        bus->ack(got);
        return json::parse(got[0].message.payload);
      }
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("no assignment came");
  };
  auto complete = [&](const json& as, const json& output) {
    json c = {{"task_id", as["task_id"]},
              {"run_id", as["run_id"]},
              {"task_key", as["task_key"]},
              {"attempt", as["attempt"]},
              {"lease_owner", as["lease_owner"]},
              {"agent_id", as["agent_id"]},
              {"started_at", as["started_at"]},
              {"ok", true},
              {"output", output}};
    bus->publish({"devcycle.completions", "", {}, c.dump()}).get();
  };
  auto status_of = [&](const std::string& key) { return task(engine->get(run.id), key).status; };
  auto wait_for = [&](const std::string& key, TaskStatus s) {
    for (int i = 0; i < 1000 && status_of(key) != s; ++i) std::this_thread::sleep_for(10ms);
    return status_of(key);
  };

  const auto first = next_assignment();
  EXPECT_EQ(first["task_key"], "a");
  EXPECT_EQ(first["attempt"], 1);
  EXPECT_EQ(first["input"], json({{"n", 1}}));
  EXPECT_EQ(first["idempotency_key"], run.id + "/a/1");
  EXPECT_EQ(status_of("a"), TaskStatus::kRunning);
  complete(first, {{"n", 41}});
  EXPECT_EQ(wait_for("a", TaskStatus::kSucceeded), TaskStatus::kSucceeded);
  complete(first, {{"n", 99}});  // a duplicate: fenced off, changes nothing

  const auto second = next_assignment();
  EXPECT_EQ(second["task_key"], "b");
  EXPECT_EQ(second["input"], json({{"n", 41}})) << "a's first completion is the one recorded";
  auto stale = second;
  stale["attempt"] = 7;
  complete(stale, {{"n", 0}});  // a stale attempt: fenced off
  complete(second, {{"done", true}});
  for (int i = 0; i < 1000 && engine->get(run.id).run.status != RunStatus::kSucceeded; ++i)
    std::this_thread::sleep_for(10ms);
  const auto d = engine->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "b").output), json({{"done", true}}));
  ASSERT_EQ(task(d, "a").attempts.size(), 1u);
  EXPECT_EQ(task(d, "a").attempts[0].agent_id, agent_id);
  EXPECT_EQ(json::parse(task(d, "a").output), json({{"n", 41}}));
  engine.reset();
}

// The same with the ready-made BusWorker as the agent's process: its log
// lines reach the task log, its heartbeats keep the lease, its output the run.
TEST_P(EngineTest, ABusWorkerRunsTheTasksOfABusAgent) {
  auto bus = MessageBus::open("inproc://", *db_);
  auto engine = std::make_unique<Engine>(*db_, *registry_, *catalog_, on_bus(*bus));
  agent_run_by("remote", "far", "bus:builds");
  std::atomic<int> calls{0}, extended{0};
  BusWorker worker(*bus, "builds", [&](TaskContext& ctx) {
    ++calls;
    ctx.log(LogLevel::kInfo, "building " + ctx.task_key());
    // A heartbeat 40 s into the 60 s lease moves its end 40 s on, once the
    // engine has it.
    const auto lease = [&] { return engine->get_task(ctx.task_id()).lease_expires_at.value_or(0); };
    const auto before = lease();
    clock_->advance(40s);
    ctx.heartbeat();
    for (int i = 0; i < 500 && lease() <= before; ++i) std::this_thread::sleep_for(10ms);
    if (lease() == before + 40'000'000) ++extended;
    const auto in = json::parse(ctx.input());
    return json{{"n", in.value("n", 0) + 1}}.dump();
  });
  const auto wf = workflow(R"({"name": "far2", "tasks": [
    {"id": "a", "capability": "far", "input": {"n": 1}},
    {"id": "b", "capability": "far", "depends_on": ["a"], "input": {"n": "{{ tasks.a.output.n }}"}}]})");
  const auto run = start(wf);
  for (int i = 0; i < 1000 && engine->get(run.id).run.status == RunStatus::kRunning; ++i) {
    engine->tick();  // claims what is ready; liveness, not speed
    std::this_thread::sleep_for(10ms);
  }
  const auto d = engine->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "b").output), json({{"n", 3}}));
  EXPECT_EQ(calls.load(), 2);
  EXPECT_EQ(extended.load(), 2) << "each heartbeat kept the lease";
  const auto logs = engine->logs(task(d, "a").id);
  ASSERT_EQ(logs.lines.size(), 1u);
  EXPECT_EQ(logs.lines[0].message, "building a");
  EXPECT_DEVCYCLE_ERROR(BusWorker(*bus, "bad topic!", [](TaskContext&) { return std::string(); }),
                        ErrorCode::kInvalidArgument, "topic");
  engine.reset();
}

TEST_P(EngineTest, AnEventTopicThatIsNotATopicIsRefused) {
  auto bus = MessageBus::open("inproc://", *db_);
  auto o = on_bus(*bus);
  o.event_topic = "not a topic";
  EXPECT_DEVCYCLE_ERROR(Engine(*db_, *registry_, *catalog_, o), ErrorCode::kInvalidArgument,
                        "EngineOptions.event_topic");
}

TEST_P(EngineTest, StartManyStartsEveryRunInOrder) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "m", "tasks": [
    {"id": "t", "capability": "step", "input": {"n": "{{ input.n }}"}}]})");
  std::vector<StartRun> requests(3);
  for (int i = 0; i < 3; ++i) {
    requests[i].workflow = wf;
    requests[i].owner = "alice";
    requests[i].input = json{{"n", i}}.dump();
  }
  requests[2].idempotency_key = "same";
  requests.push_back(requests[2]);  // the same key again: the same run
  const auto runs = engine_->start_many(requests);
  ASSERT_EQ(runs.size(), 4u);
  EXPECT_EQ(runs[3].id, runs[2].id);
  EXPECT_EQ(engine_->list().runs.size(), 3u);
  EXPECT_EQ(engine_->run_until_idle(), 3);
  for (int i = 0; i < 3; ++i) {
    const auto d = engine_->get(runs[i].id);
    EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
    EXPECT_EQ(json::parse(task(d, "t").input), json({{"n", i}})) << i;
  }
  EXPECT_TRUE(engine_->start_many({}).empty());
}

TEST_P(EngineTest, ActiveRunQuotaPerOwner) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, with_run_quota(2));
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "q", "tasks": [{"id": "t", "capability": "step"}]})");
  start(wf, "{}", "first");
  start(wf);
  const auto before = testing::table_snapshot(*db_, {"workflow_runs", "tasks"});
  EXPECT_DEVCYCLE_ERROR(start(wf), ErrorCode::kResourceExhausted, "quota",
                        "max_active_runs_per_owner");
  EXPECT_EQ(testing::table_snapshot(*db_, {"workflow_runs", "tasks"}), before);
  // A repeated idempotency key is not a new run; another owner has a quota of its own.
  EXPECT_NO_THROW(start(wf, "{}", "first"));
  StartRun bob{wf, std::nullopt, "{}", "bob", "", {}};
  EXPECT_NO_THROW(engine_->start(bob));
  // A batch is counted whole, and named by the run that went over.
  std::vector<StartRun> batch(2, bob);
  EXPECT_DEVCYCLE_ERROR(engine_->start_many(batch), ErrorCode::kResourceExhausted, "runs[1].quota");
  // Finished runs free the quota.
  EXPECT_EQ(engine_->run_until_idle(), 3);
  EXPECT_NO_THROW(start(wf));
}

TEST_P(EngineTest, SecretsReachTheTaskAndNothingElse) {
  SecretStore secrets(*db_, "8f14e45fceea167a5a36dedd4bea2543c9f0f895fb98ab9159f51fd0297e236d",
                      clock_);
  const std::string value = "tok-\"quoted\"-s3cr3t";
  secrets.put("TOKEN", value, "alice");  // the runs' owner
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.secrets = &secrets;
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  std::vector<std::string> seen;  // the inputs the function got
  agent("a", "deploy", "deploy");
  engine_->register_function("deploy", [&](TaskContext& ctx) -> std::string {
    seen.push_back(ctx.input());
    const auto in = json::parse(ctx.input());
    ctx.log(LogLevel::kInfo, "using " + in["auth"].get<std::string>());
    if (in["msg"] == "fail") throw std::runtime_error("rejected " + in["auth"].get<std::string>());
    return json{{"msg", in["msg"]}}.dump();
  });
  const auto wf = workflow(R"({"name": "s", "tasks": [{"id": "d", "capability": "deploy",
    "retry": {"max_attempts": 1},
    "input": {"auth": "Bearer {{ secrets.TOKEN }}", "msg": "{{ input.msg }}"}}]})");

  const auto ok = start(wf, R"({"msg": "hello"})");
  EXPECT_EQ(engine_->run_until_idle(), 1);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(json::parse(seen[0])["auth"], "Bearer " + value);  // JSON escaping kept intact
  auto d = engine_->get(ok.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  const auto& t = task(d, "d");
  EXPECT_EQ(t.input.find("s3cr3t"), std::string::npos);  // stored: the marker only
  EXPECT_NE(t.input.find("[secret:TOKEN:"), std::string::npos);
  const auto logs = engine_->logs(t.id);
  ASSERT_EQ(logs.lines.size(), 1u);
  EXPECT_EQ(logs.lines[0].message, "using Bearer [redacted:TOKEN]");

  // A marker brought in by data names nothing: neither a forged one nor
  // one copied from another task.
  const auto marker = json::parse(t.input)["auth"].get<std::string>().substr(7);
  for (const auto& forged :
       {marker, std::string("[secret:TOKEN:00000000000000000000000000000000]")}) {
    seen.clear();
    start(wf, json{{"msg", forged}}.dump());
    EXPECT_EQ(engine_->run_until_idle(), 1);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(json::parse(seen[0])["msg"], forged);
  }

  // Errors are redacted before they are stored.
  const auto failed = start(wf, R"({"msg": "fail"})");
  engine_->run_until_idle();
  d = engine_->get(failed.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_EQ(task(d, "d").error, "rejected Bearer [redacted:TOKEN]");

  // A secret that does not exist fails the task, naming it.
  const auto wf2 = workflow(R"({"name": "s2", "tasks": [{"id": "d", "capability": "deploy",
    "retry": {"max_attempts": 1}, "input": {"auth": "{{ secrets.MISSING }}", "msg": "x"}}]})");
  const auto missing = start(wf2);
  engine_->run_until_idle();
  d = engine_->get(missing.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_NE(task(d, "d").error.find("secret \"MISSING\" not found"), std::string::npos);

  // Secrets are for inputs only: never in a condition.
  EXPECT_DEVCYCLE_ERROR(workflow(R"({"name": "s3", "tasks": [{"id": "d", "capability": "deploy",
    "when": "secrets.TOKEN == 'x'"}]})"),
                        ErrorCode::kInvalidArgument, "secrets may be read only in a task's input");
}

// Issue #20: a developer could read any user's secret by naming it in a
// task input and running the task on an agent of their own. A secret now
// reaches only work run for its owner (or an admin), checked when the
// definition or configuration is stored and again when the task executes.
TEST_P(EngineTest, ASecretReachesOnlyTheWorkOfItsOwnerOrAnAdmin) {
  SecretStore secrets(*db_, "8f14e45fceea167a5a36dedd4bea2543c9f0f895fb98ab9159f51fd0297e236d",
                      clock_);
  secrets.put("ALICES", "alice-s3cr3t", "alice");
  secrets.put("BOBS", "bob-s3cr3t", "bob");
  WorkflowCatalog catalog(*db_, registry_.get(), clock_, &secrets);
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.secrets = &secrets;
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, catalog, o);
  std::vector<std::string> seen;
  agent("a", "deploy", "deploy");
  engine_->register_function("deploy", [&](TaskContext& ctx) -> std::string {
    seen.push_back(ctx.input());
    return "{}";
  });
  const auto def = [](const std::string& name, const std::string& secret) {
    return R"({"name": ")" + name + R"(", "tasks": [{"id": "d", "capability": "deploy",
      "retry": {"max_attempts": 3}, "input": {"auth": "{{ secrets.)" +
           secret + R"( }}"}}]})";
  };
  // Stored: refused, naming the secret; nothing is stored.
  EXPECT_DEVCYCLE_ERROR(catalog.create(def("steal", "BOBS"), "alice"), ErrorCode::kPermissionDenied,
                        "secret \"BOBS\"");
  EXPECT_DEVCYCLE_ERROR(catalog.get("steal"), ErrorCode::kNotFound);
  EXPECT_NO_THROW(catalog.create(def("mine", "ALICES"), "alice"));

  // Named before it existed, then created by someone else: refused when the
  // task executes, once (retrying cannot help), and the value goes nowhere.
  catalog.create(def("later", "LATER"), "alice");
  secrets.put("LATER", "later-s3cr3t", "bob");
  StartRun r;
  r.workflow = "later";
  r.owner = "alice";
  const auto run = engine_->start(r);
  engine_->run_until_idle();
  auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_EQ(task(d, "d").attempt, 1);
  EXPECT_NE(task(d, "d").error.find("secret \"LATER\": the owner of this work may not use it"),
            std::string::npos)
      << task(d, "d").error;
  EXPECT_TRUE(seen.empty());

  // An agent's configuration is its owner's to write: the same rule.
  RegistryOptions ro;
  ro.clock = clock_;
  ro.secrets = &secrets;
  Registry registry(*db_, ro);
  AgentSpec spec;
  spec.owner = "alice";
  spec.name = "thief";
  spec.type = "worker";
  spec.configuration = R"({"token": "{{ secrets.BOBS }}"})";
  EXPECT_DEVCYCLE_ERROR(registry.create(spec), ErrorCode::kPermissionDenied, "secret \"BOBS\"");
  spec.configuration = R"({"token": "{{ secrets.ALICES }}"})";
  const auto mine = registry.create(spec);
  AgentUpdate u;
  u.configuration = R"({"token": "{{ secrets.BOBS }}"})";
  EXPECT_DEVCYCLE_ERROR(registry.update(mine.id, u), ErrorCode::kPermissionDenied, "BOBS");
  EXPECT_EQ(registry.get(mine.id).configuration, R"({"token":"{{ secrets.ALICES }}"})");

  // An active admin's work may use anyone's secret (the matrix's execute).
  UserDirectoryOptions uo;
  uo.clock = clock_;
  uo.hasher = testing::plain_hasher();
  const auto cache = testing::test_cache(clock_);
  UserDirectory users(*db_, *cache, uo);
  const auto root = users.create({"root@example.com", "root", "tolerable mule 9", Role::kAdmin});
  EXPECT_TRUE(secrets.may_use("BOBS", root.id));
  EXPECT_FALSE(secrets.may_use("BOBS", "alice"));
  catalog.create(def("admins", "BOBS"), root.id);
  r.workflow = "admins";
  r.owner = root.id;
  const auto ok = engine_->start(r);
  engine_->run_until_idle();
  EXPECT_EQ(engine_->get(ok.id).run.status, RunStatus::kSucceeded);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(json::parse(seen[0])["auth"], "bob-s3cr3t");

  // A deactivated account's work gets no secret, not even its own.
  users.deactivate(root.id);
  EXPECT_FALSE(secrets.may_use("BOBS", root.id));
  secrets.put("ROOTS", "root-s3cr3t", root.id);
  EXPECT_FALSE(secrets.may_use("ROOTS", root.id));
}

// Two servers on one database starting runs for one owner at once: the
// quota holds across them (each has its own writer connection).
TEST_P(EngineTest, ActiveRunQuotaHoldsForTwoServersStartingAtOnce) {
  if (GetParam().name == "sqlite_memory") GTEST_SKIP() << "a second open is another database";
  agent("a", "step", "echo");
  const auto wf = workflow(R"({"name": "q", "tasks": [{"id": "t", "capability": "step"}]})");
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, with_run_quota(3));
  auto db2 = Database::open(GetParam().url(dir_));
  RegistryOptions ro;
  ro.clock = clock_;
  Registry registry2(*db2, ro);
  WorkflowCatalog catalog2(*db2, &registry2, clock_);
  Engine engine2(*db2, registry2, catalog2, with_run_quota(3));
  const auto outcome = testing::race(6, 8, ErrorCode::kResourceExhausted, [&](int t, int) {
    (t % 2 ? engine2 : *engine_).start(StartRun{wf, std::nullopt, "{}", "alice", "", {}});
  });
  EXPECT_EQ(outcome.succeeded, 3);
  EXPECT_EQ(outcome.refused, 45);
  const auto runs = db_->read(
      [](Txn& t) { return t.query("SELECT COUNT(*) FROM workflow_runs")[0][0].as_int(); });
  EXPECT_EQ(runs, 3);
}

TEST_P(EngineTest, ProcessAgentsRunAllowListedProgramsWithTheInputOnStdin) {
  const auto cat = std::filesystem::canonical("/bin/cat").string();
  const auto sh = std::filesystem::canonical("/bin/sh").string();
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.processes.allow = {{cat, false}, {sh, true}};
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  agent_run_by("echoer", "echo", "process:[\"" + cat + "\"]");
  agent_run_by(
      "talker", "talk",
      "process:[\"" + sh + "\", \"-c\", \"echo working >&2; echo '{\\\"done\\\": true}'\"]");
  agent_run_by("outsider", "outside",
               "process:[\"" + std::filesystem::canonical("/bin/ls").string() + "\"]");
  const auto wf = workflow(R"({"name": "p", "tasks": [
    {"id": "e", "capability": "echo", "input": {"cmd": "{{ input.cmd }}"}},
    {"id": "t", "capability": "talk", "depends_on": ["e"]}]})");
  const std::string injection = "; rm -rf / $(id) `id`";
  const auto run = start(wf, json{{"cmd", injection}}.dump());
  EXPECT_EQ(engine_->run_until_idle(), 2);
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "e").output), json({{"cmd", injection}}));  // literally
  EXPECT_EQ(json::parse(task(d, "t").output), json({{"done", true}}));
  const auto logs = engine_->logs(task(d, "t").id);
  ASSERT_EQ(logs.lines.size(), 1u);
  EXPECT_EQ(logs.lines[0].message, "working");

  // Not on the allow-list: the task fails at once, saying why.
  const auto wf2 = workflow(R"({"name": "p2", "tasks": [{"id": "o", "capability": "outside"}]})");
  const auto refused = start(wf2);
  engine_->run_until_idle();
  const auto r = engine_->get(refused.id);
  EXPECT_EQ(r.run.status, RunStatus::kFailed);
  EXPECT_NE(task(r, "o").error.find("not on the allow-list"), std::string::npos)
      << task(r, "o").error;
  EXPECT_EQ(task(r, "o").attempt, 1);  // not retried
}

TEST_P(EngineTest, PauseLetsRunningAttemptsFinishAndStartsNothingUntilResumed) {
  std::string run_id;
  agent("a", "step", "step");
  agent("b", "fanout", "fanfn");  // registered later: its tasks stay ready meanwhile
  engine_->register_function("step", [&](TaskContext& ctx) -> std::string {
    // The first task pauses its own run while it runs: its completion is
    // still recorded, but its successor waits.
    if (ctx.task_key() == "one") engine_->pause(run_id);
    return json{{"key", ctx.task_key()}}.dump();
  });
  const auto wf = workflow(R"({"name": "pz", "tasks": [
    {"id": "one", "capability": "step"},
    {"id": "two", "capability": "step", "depends_on": ["one"]},
    {"id": "fan", "capability": "fanout", "depends_on": ["two"], "for_each": "[1, 2, 3]"}]})");
  run_id = start(wf).id;
  EXPECT_EQ(engine_->run_until_idle(), 1);
  auto d = engine_->get(run_id);
  EXPECT_EQ(d.run.status, RunStatus::kPaused);
  EXPECT_EQ(task(d, "one").status, TaskStatus::kSucceeded);
  EXPECT_EQ(task(d, "two").status, TaskStatus::kPending);
  EXPECT_EQ(engine_->pause(run_id).status, RunStatus::kPaused);  // again: as it is
  EXPECT_EQ(engine_->run_until_idle(), 0);

  EXPECT_EQ(engine_->resume(run_id).status, RunStatus::kRunning);
  EXPECT_EQ(engine_->run_until_idle(), 1);  // two; the fan-out elements are then ready
  d = engine_->get(run_id);
  EXPECT_EQ(task(d, "fan[0]").status, TaskStatus::kReady);
  // Ready fan-out elements wait too, and come back.
  engine_->pause(run_id);
  d = engine_->get(run_id);
  for (const char* k : {"fan[0]", "fan[1]", "fan[2]"})
    EXPECT_EQ(task(d, k).status, TaskStatus::kPending);
  engine_->register_function("fanfn", echo);
  EXPECT_EQ(engine_->run_until_idle(), 0);
  engine_->resume(run_id);
  EXPECT_EQ(engine_->run_until_idle(), 3);
  d = engine_->get(run_id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;

  EXPECT_DEVCYCLE_ERROR(engine_->pause(run_id), ErrorCode::kInvalidArgument,
                        "only running runs can be paused");
  EXPECT_DEVCYCLE_ERROR(engine_->resume(run_id), ErrorCode::kInvalidArgument,
                        "only paused runs can be resumed");
  EXPECT_DEVCYCLE_ERROR(engine_->pause("nope"), ErrorCode::kNotFound, "run");
}

TEST_P(EngineTest, TasksStoreArtifacts) {
  const auto blobs = BlobStore::open("file://" + dir_.path().string() + "/blobs");
  const auto sh = std::filesystem::canonical("/bin/sh").string();
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.blobs = blobs.get();
  o.processes.allow = {{sh, true}};
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  agent("a", "build", "build");
  engine_->register_function("build", [](TaskContext& ctx) -> std::string {
    const auto info = ctx.put_artifact("report.txt", "all green");
    EXPECT_THROW(ctx.put_artifact("../escape", "x"), Error);
    return json{{"report", info.digest}}.dump();
  });
  agent_run_by("p", "bundle",
               "process:[\"" + sh +
                   "\", \"-c\", \"mkdir artifacts && printf bundle > artifacts/release.tar && "
                   "ln -s /etc/passwd artifacts/link && echo null\"]");
  const auto wf = workflow(R"({"name": "art", "tasks": [
    {"id": "build", "capability": "build"},
    {"id": "bundle", "capability": "bundle", "depends_on": ["build"]}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->run_until_idle(), 2);
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  const auto list = engine_->artifacts(run.id);
  ASSERT_EQ(list.size(), 2u);  // the link was not taken
  EXPECT_EQ(list[0].name, "report.txt");
  EXPECT_EQ(list[0].task_key, "build");
  EXPECT_EQ(json::parse(task(d, "build").output)["report"], list[0].digest);
  EXPECT_EQ(blobs->get(list[0].digest), "all green");
  EXPECT_EQ(list[1].name, "release.tar");
  EXPECT_EQ(blobs->get(list[1].digest), "bundle");
  EXPECT_EQ(engine_->artifact(run.id, list[1].id).size, 6u);
  EXPECT_DEVCYCLE_ERROR(engine_->artifact(run.id, "nope"), ErrorCode::kNotFound, "artifact");
  EXPECT_DEVCYCLE_ERROR(engine_->artifacts("nope"), ErrorCode::kNotFound, "run");
}

TEST_P(EngineTest, RetentionPurgesFinishedRunsWithEverythingTheyOwned) {
  const auto blobs = BlobStore::open("file://" + dir_.path().string() + "/blobs");
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.blobs = blobs.get();
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  agent("a", "step", "step");
  engine_->register_function("step", [](TaskContext& ctx) -> std::string {
    ctx.log(LogLevel::kInfo, "working");
    ctx.put_artifact("out.txt", "artifact of " + ctx.run_id());
    ctx.put_artifact("shared.txt", "the same bytes in every run");
    return "{}";
  });
  const auto wf = workflow(R"({"name": "ret", "tasks": [{"id": "s", "capability": "step"}]})");
  const auto old_run = start(wf);
  engine_->run_until_idle();
  const auto old_blob = engine_->artifacts(old_run.id)[0].digest;
  clock_->advance(std::chrono::hours(48));
  const auto new_run = start(wf);
  engine_->run_until_idle();
  const auto unfinished =
      start(workflow(R"({"name": "ret2", "tasks": [{"id": "s", "capability": "nobody"}]})"));
  // Blobs stored long ago (the cleaner spares recent ones).
  const auto age = [&](const std::string& digest) {
    const auto hex = digest.substr(7);
    std::filesystem::last_write_time(
        dir_.path() / "blobs" / "sha256" / hex.substr(0, 2) / hex.substr(2),
        std::filesystem::file_time_type::clock::now() - std::chrono::hours(1));
  };
  for (const auto& a : engine_->artifacts(old_run.id)) age(a.digest);

  EXPECT_EQ(engine_->purge_finished(clock_->now() - 3'600'000'000LL), 1);
  EXPECT_DEVCYCLE_ERROR(engine_->get(old_run.id), ErrorCode::kNotFound, "run");
  EXPECT_NO_THROW(engine_->get(new_run.id));
  EXPECT_NO_THROW(engine_->get(unfinished.id));
  const auto left = [&](const char* table) {
    return db_->read([&](Txn& t) {
      return t.query("SELECT COUNT(*) FROM " + std::string(table))[0][0].as_int();
    });
  };
  EXPECT_EQ(left("task_logs"), 1);
  EXPECT_EQ(left("task_attempts"), 1);
  EXPECT_EQ(left("artifacts"), 2);
  // Its own blob is gone; the one the newer run also names stays.
  EXPECT_FALSE(blobs->stat(old_blob).has_value());
  EXPECT_TRUE(blobs->stat(blob_digest("the same bytes in every run")).has_value());
  EXPECT_EQ(engine_->purge_finished(clock_->now() - 3'600'000'000LL), 0);
}

TEST_P(EngineTest, TimersWaitThenFireAndSurviveARestart) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "tm", "tasks": [
    {"id": "nap", "sleep": "5m"},
    {"id": "until", "until": "{{ input.at }}", "depends_on": ["nap"]},
    {"id": "after", "capability": "step", "depends_on": ["until"]}]})");
  const auto at = clock_->now() + 3'600'000'000LL;  // an hour from now
  std::time_t secs = at / 1'000'000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const auto run = start(wf, json{{"at", text}}.dump());
  auto d = engine_->get(run.id);
  EXPECT_EQ(task(d, "nap").status, TaskStatus::kWaiting);
  EXPECT_EQ(engine_->run_until_idle(), 0);
  // The engine goes away and another comes: the timer is in the database.
  engine_.reset();
  engine_ = make_engine(0);
  engine_->register_function("echo", echo);
  clock_->advance(std::chrono::minutes(4));
  engine_->run_until_idle();
  EXPECT_EQ(task(engine_->get(run.id), "nap").status, TaskStatus::kWaiting);
  clock_->advance(std::chrono::minutes(1));
  engine_->run_until_idle();
  d = engine_->get(run.id);
  EXPECT_EQ(task(d, "nap").status, TaskStatus::kSucceeded);
  EXPECT_EQ(task(d, "until").status, TaskStatus::kWaiting);
  EXPECT_EQ(*task(d, "until").available_at, at);
  clock_->advance(std::chrono::minutes(56));
  EXPECT_EQ(engine_->run_until_idle(), 1);  // until fired; after ran
  d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "until").output)["fired_at"], at);

  // An until that is not a time fails its task, saying so.
  const auto bad = start(wf, R"({"at": "tomorrow-ish"})");
  clock_->advance(std::chrono::minutes(5));
  engine_->run_until_idle();
  d = engine_->get(bad.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_NE(task(d, "until").error.find("not an RFC 3339 time"), std::string::npos);
}

TEST_P(EngineTest, SignalsReleaseWaitingTasksOrWaitForThem) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "sg", "tasks": [
    {"id": "approve", "signal": "approval", "timeouts": {"start_to_close": "1h"}},
    {"id": "ship", "capability": "step", "depends_on": ["approve"],
     "input": {"by": "{{ tasks.approve.output.by }}"}}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->run_until_idle(), 0);
  EXPECT_EQ(task(engine_->get(run.id), "approve").status, TaskStatus::kWaiting);
  EXPECT_TRUE(engine_->signal(run.id, "approval", R"({"by": "alice"})"));
  EXPECT_EQ(engine_->run_until_idle(), 1);
  auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "ship").output)["got"]["by"], "alice");

  // A signal sent before the task waits is kept for it.
  const auto wf2 = workflow(R"({"name": "sg2", "tasks": [
    {"id": "first", "sleep": "1m"},
    {"id": "approve", "signal": "approval", "depends_on": ["first"]}]})");
  const auto early = start(wf2);
  EXPECT_FALSE(engine_->signal(early.id, "approval", R"({"early": true})"));
  clock_->advance(std::chrono::minutes(1));
  engine_->run_until_idle();
  d = engine_->get(early.id);
  EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(json::parse(task(d, "approve").output), json({{"early", true}}));

  // No signal in time: the task times out and the run fails.
  const auto late = start(wf);
  clock_->advance(std::chrono::minutes(61));
  engine_->run_until_idle();
  d = engine_->get(late.id);
  EXPECT_EQ(task(d, "approve").status, TaskStatus::kTimedOut);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_DEVCYCLE_ERROR(engine_->signal(late.id, "approval"), ErrorCode::kInvalidArgument,
                        "takes no signals");
  EXPECT_DEVCYCLE_ERROR(engine_->signal(late.id, "Bad Name"), ErrorCode::kInvalidArgument,
                        "signal");
  EXPECT_DEVCYCLE_ERROR(engine_->signal("nope", "approval"), ErrorCode::kNotFound, "run");
  EXPECT_DEVCYCLE_ERROR(workflow(R"({"name": "sg3", "tasks": [
    {"id": "x", "signal": "go", "capability": "step"}]})"),
                        ErrorCode::kInvalidArgument,
                        "give one of capability, agent, workflow, sleep");
}

TEST_P(EngineTest, AProcessAgentReadsItsConfigurationWithSecretsFromAgentJson) {
  SecretStore secrets(*db_, "8f14e45fceea167a5a36dedd4bea2543c9f0f895fb98ab9159f51fd0297e236d",
                      clock_);
  secrets.put("API_TOKEN", "s3cr3t-in-config", "ops");
  const auto sh = std::filesystem::canonical("/bin/sh").string();
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.secrets = &secrets;
  o.processes.allow = {{sh, true}};
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  AgentSpec spec;
  spec.owner = "ops";
  spec.name = "configured";
  spec.type = "worker";
  spec.configuration =
      R"({"endpoint": "https://models.example", "token": "{{ secrets.API_TOKEN }}"})";
  const auto a = registry_->create(spec);
  registry_->add_version(
      a.id, {"1.0.0",
             {"call@1.0.0"},
             {},
             "process:[\"" + sh + "\", \"-c\", \"grep -c s3cr3t-in-config agent.json\"]",
             ""});
  registry_->deploy(a.id, "1.0.0");
  const auto wf = workflow(R"({"name": "cfg", "tasks": [{"id": "c", "capability": "call"}]})");
  const auto run = start(wf);
  EXPECT_EQ(engine_->run_until_idle(), 1);
  const auto d = engine_->get(run.id);
  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  EXPECT_EQ(task(d, "c").output, "1");  // the value was in agent.json, once
  // The stored configuration keeps the reference, not the value.
  EXPECT_EQ(registry_->get(a.id).configuration.find("s3cr3t"), std::string::npos);
}

TEST_P(EngineTest, CapabilityRateLimitsSpaceOutStarts) {
  // The buckets must refill on the test's clock, which only memory:// follows
  // (Redis buckets refill in real time: the Cache suite covers them).
  CacheOptions co;
  co.clock = clock_;
  const auto cache = Cache::open("memory://", co);
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.cache = cache.get();
  o.capability_rate_limits["deploy"] = {1.0, 2.0};  // 1/s, 2 at once
  engine_.reset();
  engine_ = std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  agent("d", "deploy", "echo");
  agent("b", "build", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(R"({"name": "rl", "tasks": [{"id": "d", "capability": "deploy"}]})");
  const auto other = workflow(R"({"name": "rl2", "tasks": [{"id": "b", "capability": "build"}]})");
  for (int i = 0; i < 5; ++i) start(wf);
  for (int i = 0; i < 3; ++i) start(other);
  EXPECT_EQ(engine_->run_until_idle(), 2 + 3);  // the burst, and the unlimited ones
  EXPECT_EQ(engine_->run_until_idle(), 0);
  clock_->advance(std::chrono::milliseconds(1000));
  EXPECT_EQ(engine_->run_until_idle(), 1);
  clock_->advance(std::chrono::milliseconds(2000));
  EXPECT_EQ(engine_->run_until_idle(), 2);
  EXPECT_EQ(engine_->list().runs.size(), 8u);
  for (const auto& r : engine_->list().runs) EXPECT_EQ(r.status, RunStatus::kSucceeded);
}

TEST_P(EngineTest, StartManyIsAllOrNothingAndNamesTheRun) {
  const auto wf = workflow(R"({"name": "v", "input_schema": {"type": "object", "required": ["repo"],
    "properties": {"repo": {"type": "string"}}}, "tasks": [{"id": "t", "capability": "nobody"}]})");
  const auto other = workflow(R"({"name": "o", "tasks": [{"id": "t", "capability": "nobody"}]})");
  start(other, "{}", "taken");
  const auto before = testing::table_snapshot(*db_, {"workflow_runs", "tasks", "task_attempts"});
  std::vector<StartRun> requests(3);
  for (auto& r : requests) {
    r.workflow = wf;
    r.owner = "alice";
    r.input = R"({"repo": "x"})";
  }
  requests[1].input = R"({"repo": 5})";
  EXPECT_DEVCYCLE_ERROR(engine_->start_many(requests), ErrorCode::kInvalidArgument,
                        "runs[1].input: does not match", "$.repo: must be a string");
  requests[1].input = R"({"repo": "y"})";
  requests[2].owner = "";
  EXPECT_DEVCYCLE_ERROR(engine_->start_many(requests), ErrorCode::kInvalidArgument,
                        "runs[2].owner");
  requests[2].owner = "alice";
  requests[2].workflow = "ghost";
  EXPECT_DEVCYCLE_ERROR(engine_->start_many(requests), ErrorCode::kNotFound, "runs[2]: ", "ghost");
  requests[2].workflow = wf;
  // Found only inside the transaction: the runs before it are not kept either.
  requests[2].idempotency_key = "taken";
  EXPECT_DEVCYCLE_ERROR(engine_->start_many(requests), ErrorCode::kConflict,
                        "runs[2].idempotency_key", "taken");
  EXPECT_DEVCYCLE_ERROR(engine_->start_many(std::vector<StartRun>(1001, requests[0])),
                        ErrorCode::kInvalidArgument, "runs: 1001 runs", "at most 1000");
  EXPECT_EQ(testing::table_snapshot(*db_, {"workflow_runs", "tasks", "task_attempts"}), before);
}

TEST_P(EngineTest, TemplateErrorsAtRunTimeFailTheTaskOnce) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto wf = workflow(
      R"({"name": "t", "tasks": [{"id": "t", "capability": "step", "when": "input.n > 'x'"}]})");
  const auto run = start(wf, R"({"n": 1})");
  engine_->run_until_idle();
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_NE(task(d, "t").error.find("cannot order a number and a string"), std::string::npos);
}

TEST_P(EngineTest, HigherPriorityRunsFirst) {
  agent("a", "step", "record");
  std::vector<std::string> order;
  engine_->register_function("record", [&](TaskContext& ctx) {
    order.push_back(ctx.task_key());
    return std::string("{}");
  });
  const auto wf =
      workflow(R"({"name": "p", "tasks": [{"id": "low", "capability": "step", "priority": -5},
    {"id": "high", "capability": "step", "priority": 50}, {"id": "mid", "capability": "step"}]})");
  start(wf);
  engine_->run_until_idle();
  EXPECT_EQ(order, (std::vector<std::string>{"high", "mid", "low"}));
}

TEST_P(EngineTest, WaitingWorkOvertakesFresherHigherPriorityWork) {
  agent("a", "step", "record");
  std::vector<std::string> order;
  engine_->register_function("record", [&](TaskContext& ctx) {
    order.push_back(ctx.run_id());
    return std::string("{}");
  });
  const auto old_wf = workflow(R"({"name": "old", "tasks": [{"id": "t", "capability": "step"}]})");
  const auto p2 =
      workflow(R"({"name": "p2", "tasks": [{"id": "t", "capability": "step", "priority": 2}]})");
  const auto p4 =
      workflow(R"({"name": "p4", "tasks": [{"id": "t", "capability": "step", "priority": 4}]})");
  const auto old_run = start(old_wf);
  clock_->advance(std::chrono::seconds(35));  // 3 aging steps of 10 s, and a half
  const auto p2_run = start(p2);
  const auto p4_run = start(p4);
  engine_->run_until_idle();
  EXPECT_EQ(order, (std::vector<std::string>{p4_run.id, old_run.id, p2_run.id}));
}

// The ready queue is a cache: work another engine readied is found from the
// database, and tasks this engine cannot run do not hide it.
TEST_P(EngineTest, WorkReadiedByAnotherEngineIsFound) {
  agent("a", "step", "record");
  int ran = 0;
  engine_->register_function("record", [&](TaskContext&) {
    ++ran;
    return std::string("{}");
  });
  start(workflow(R"({"name": "stuck", "tasks": [{"id": "t", "capability": "nobody"}]})"));
  EXPECT_EQ(engine_->tick(), 0);
  auto other = make_engine(0);
  StartRun r;
  r.workflow = workflow(R"({"name": "w", "tasks": [{"id": "t", "capability": "step"}]})");
  r.owner = "alice";
  const auto run = other->start(r);
  other.reset();
  EXPECT_EQ(engine_->tick(), 1);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kSucceeded);
  EXPECT_EQ(engine_->tick(), 0) << "the stuck task stays where it is";
}

TEST_P(EngineTest, AnotherEngineContinuesTheRun) {
  agent("a", "first", "first");
  agent("b", "second", "second");
  engine_->register_function("first", echo);
  const auto wf = workflow(R"({"name": "handoff", "tasks": [{"id": "a", "capability": "first"},
    {"id": "b", "capability": "second", "depends_on": ["a"]}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kRunning);  // nobody here runs "second"
  engine_.reset();
  auto other = make_engine(0);
  other->register_function("second", echo);
  other->run_until_idle();
  EXPECT_EQ(other->get(run.id).run.status, RunStatus::kSucceeded);
}

TEST_P(EngineTest, ListFiltersAndPages) {
  const auto a = workflow(R"({"name": "a", "tasks": [{"id": "t", "capability": "nobody"}]})");
  const auto b = workflow(R"({"name": "b", "tasks": [{"id": "t", "capability": "nobody"}]})");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    clock_->advance(1s);
    ids.push_back(start(i < 3 ? a : b).id);
  }
  engine_->cancel(ids[0]);
  RunFilter f;
  f.workflow = "a";
  EXPECT_EQ(engine_->list(f).runs.size(), 3u);
  f = {};
  f.status = RunStatus::kCancelled;
  ASSERT_EQ(engine_->list(f).runs.size(), 1u);
  EXPECT_EQ(engine_->list(f).runs[0].id, ids[0]);
  f = {};
  f.limit = 2;
  auto page = engine_->list(f);
  ASSERT_EQ(page.runs.size(), 2u);
  EXPECT_EQ(page.runs[0].id, ids[4]);  // newest first
  f.page_token = page.next_page_token;
  page = engine_->list(f);
  EXPECT_EQ(page.runs[0].id, ids[2]);
  f = {};
  f.limit = 0;
  EXPECT_DEVCYCLE_ERROR(engine_->list(f), ErrorCode::kInvalidArgument, "limit");
}

// Liveness, not speed: waits up to 60 s until `n` runs (at most 100) succeeded.
void wait_until_succeeded(Engine& engine, std::size_t n) {
  for (int i = 0; i < 6000; ++i) {
    RunFilter f;
    f.status = RunStatus::kSucceeded;
    f.limit = 100;
    if (engine.list(f).runs.size() == n) return;
    std::this_thread::sleep_for(10ms);
  }
}

TEST_P(EngineTest, ThreadedEngineRunsManyRunsToTheEnd) {
  engine_.reset();
  agent("a", "step", "work");
  auto engine = make_engine(4, SystemClock::instance());
  std::atomic<int> calls{0};
  engine->register_function("work", [&](TaskContext& ctx) {
    ++calls;
    ctx.log(LogLevel::kDebug, "working");
    return echo(ctx);
  });
  const auto wf = workflow(R"({"name": "many", "tasks": [{"id": "a", "capability": "step"},
    {"id": "b", "capability": "step", "depends_on": ["a"], "for_each": "[1, 2, 3]"},
    {"id": "c", "capability": "step", "depends_on": ["b"]}]})");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    StartRun r;
    r.workflow = wf;
    r.owner = "alice";
    ids.push_back(engine->start(r).id);
  }
  wait_until_succeeded(*engine, ids.size());
  for (const auto& id : ids) EXPECT_EQ(engine->get(id).run.status, RunStatus::kSucceeded) << id;
  EXPECT_EQ(calls.load(), 20 * 5);
}

// Worker threads hand outcomes over in batches; on PostgreSQL a batch reads
// the rows its successes need in one statement and writes its changes
// together (new runs, tasks, claims, run ends). Joins whose two sides end in
// one batch, chains, fan-outs and text that needs escaping all come out
// exactly as they went in, each task run once.
TEST_P(EngineTest, ThreadedBatchesKeepJoinsChainsAndTextExact) {
  engine_.reset();
  agent("a", "step", "work");
  auto engine = make_engine(4, SystemClock::instance());
  std::atomic<int> calls{0};
  engine->register_function("work", [&](TaskContext& ctx) {
    ++calls;
    return echo(ctx);
  });
  const auto diamond = workflow(R"({"name": "diamond", "tasks": [{"id": "a", "capability": "step"},
    {"id": "b", "capability": "step", "depends_on": ["a"]},
    {"id": "c", "capability": "step", "depends_on": ["a"]},
    {"id": "d", "capability": "step", "depends_on": ["b", "c"]}]})");
  const auto chain = workflow(R"({"name": "chain", "tasks": [
    {"id": "a", "capability": "step", "input": {"s": "{{ input.s }}"}},
    {"id": "b", "capability": "step", "depends_on": ["a"]},
    {"id": "c", "capability": "step", "depends_on": ["b"]},
    {"id": "d", "capability": "step", "depends_on": ["c"], "for_each": "[1, 2]"},
    {"id": "e", "capability": "step", "depends_on": ["d"]}]})");
  const std::string text =
      "quote \" backslash \\ braces {a,b} NULL null , \"\" newline \n tab \t é ☃ \U0001D11E";
  std::vector<StartRun> requests;
  for (int i = 0; i < 40; ++i) {
    StartRun r;
    r.workflow = i % 2 ? diamond : chain;
    r.owner = "alice";
    r.input = json{{"s", text}, {"i", i}}.dump();
    r.labels = {{"shape", i % 2 ? "diamond" : "chain"}, {"odd", "NULL \"{,}\""}};
    if (i % 5 == 0) r.idempotency_key = "key \"" + std::to_string(i) + "\" {\\}";
    requests.push_back(std::move(r));
  }
  const auto runs = engine->start_many(requests);
  wait_until_succeeded(*engine, runs.size());
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto d = engine->get(runs[i].id);
    ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << i << " " << d.run.error;
    EXPECT_EQ(json::parse(d.run.input), json::parse(requests[i].input)) << i;
    EXPECT_EQ(d.run.labels, requests[i].labels) << i;
    EXPECT_EQ(d.run.idempotency_key, requests[i].idempotency_key) << i;
    for (const auto& t : d.tasks) {
      EXPECT_EQ(t.status, TaskStatus::kSucceeded) << i << " " << t.key;
      const bool group = i % 2 == 0 && t.key == "d";  // a fan-out group runs nowhere itself
      EXPECT_EQ(t.attempts.size(), group ? 0u : 1u) << i << " " << t.key;
    }
    if (i % 2) {
      EXPECT_EQ(d.tasks.size(), 4u);
    } else {
      EXPECT_EQ(d.tasks.size(), 7u);  // a, b, c, d, d[0], d[1], e
      EXPECT_EQ(json::parse(task(d, "a").output), json({{"got", {{"s", text}}}})) << i;
      EXPECT_EQ(json::parse(task(d, "b").output), json({{"got", json::object()}})) << i;
    }
  }
  EXPECT_EQ(calls.load(), 20 * 4 + 20 * 6);
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineTest,
                         ::testing::ValuesIn(testing::database_backends("engine.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

// Runs workflows over a database that fails a seeded tenth of all calls
// (after the closure ran, so each failure must roll back). Every run must
// still finish, with every task recorded as succeeded exactly once.
TEST_P(EngineTest, RunsFinishCorrectlyDespiteDatabaseFaults) {
  agent("a", "step", "echo");
  const auto wf = workflow(R"({"name": "faulty", "tasks": [
    {"id": "a", "capability": "step", "retry": {"max_attempts": 50, "initial": "1s", "max": "1s", "jitter": 0}},
    {"id": "b", "capability": "step", "depends_on": ["a"], "for_each": "[1, 2, 3]",
     "retry": {"max_attempts": 50, "initial": "1s", "max": "1s", "jitter": 0}},
    {"id": "c", "capability": "step", "depends_on": ["b"], "input": {"b": "{{ tasks.b.output }}"},
     "retry": {"max_attempts": 50, "initial": "1s", "max": "1s", "jitter": 0}}]})");
  engine_.reset();
  FaultOptions faults;
  faults.fail_fraction = 0.1;
  faults.seed = 42;
  // The faulty view forwards to the real database without owning it.
  struct Forward final : Database {
    explicit Forward(Database& d) : db(d) {}
    using Database::read;
    using Database::submit;
    void submit(TxnFn fn, DoneFn done) override { db.submit(std::move(fn), std::move(done)); }
    void read(const TxnFn& fn) override { db.read(fn); }
    void migrate(std::span<const Migration> m) override { db.migrate(m); }
    Dialect dialect() const noexcept override { return db.dialect(); }
    std::string url() const override { return db.url(); }
    void close() override {}
    Database& db;
  };
  FaultInjectingDatabase faulty(std::make_unique<Forward>(*db_), faults);
  EngineOptions o;
  o.clock = clock_;
  o.workers = 0;
  o.default_lease = 5s;
  Engine engine(faulty, *registry_, *catalog_, o);
  engine.register_function("echo", echo);
  auto viewer = make_engine(0);  // reads through the real database
  auto engine_view = [&](const std::string& id) { return viewer->get(id); };

  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    for (int tries = 0;; ++tries) {
      ASSERT_LT(tries, 50);
      try {
        StartRun r;
        r.workflow = wf;
        r.owner = "alice";
        r.idempotency_key = "run-" + std::to_string(i);
        ids.push_back(engine.start(r).id);
        break;
      } catch (const Error& e) {
        ASSERT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
      }
    }
  }
  int rounds = 0;
  for (; rounds < 2000; ++rounds) {
    try {
      engine.tick();
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    }
    clock_->advance(2s);  // lets leases of lost completions expire and backoffs pass
    bool done = true;
    for (const auto& id : ids) done = done && is_terminal(engine_view(id).run.status);
    if (done) break;
  }
  EXPECT_LT(rounds, 2000);
  EXPECT_GT(faulty.injected(), 0u);
  for (const auto& id : ids) {
    const auto d = engine_view(id);
    EXPECT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
    for (const auto& t : d.tasks) {
      EXPECT_EQ(t.status, TaskStatus::kSucceeded) << t.key;
      const auto wins = std::count_if(t.attempts.begin(), t.attempts.end(),
                                      [](const TaskAttempt& a) { return a.status == "succeeded"; });
      EXPECT_EQ(wins, t.key == "b" ? 0 : 1) << t.key;  // "b" is the fan-out group
    }
    EXPECT_EQ(nlohmann::json::parse(d.run.output)["c"]["got"]["b"].size(), 3u);
  }
}

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

TEST_P(EngineTest, CancellingOneTaskStopsItsWorkAndFailsTheRun) {
  agent("a", "step", "self");
  Engine* engine = engine_.get();
  bool told = false;
  engine_->register_function("self", [&](TaskContext& ctx) -> std::string {
    engine->cancel_task(ctx.task_id());
    told = ctx.cancelled();
    return "{}";
  });
  const auto wf = workflow(R"({"name": "one", "tasks": [{"id": "t", "capability": "step"},
                                                        {"id": "u", "capability": "step", "depends_on": ["t"]}]})");
  const auto run = start(wf);
  engine_->run_until_idle();
  EXPECT_TRUE(told);
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_EQ(d.run.error, "task t cancelled: cancelled");
  EXPECT_EQ(task(d, "t").attempts[0].status, "cancelled");
  EXPECT_EQ(task(d, "u").status, TaskStatus::kCancelled);
  EXPECT_EQ(engine_->cancel_task(task(d, "t").id).status, TaskStatus::kCancelled);  // idempotent
  EXPECT_DEVCYCLE_ERROR(engine_->cancel_task("0190c8a0-0000-7000-8000-000000000000"),
                        ErrorCode::kNotFound, "task");
}

TEST_P(EngineTest, LogLinesCanBeFollowedLive) {
  agent("a", "step", "chatty");
  engine_->register_function("chatty", [](TaskContext& ctx) {
    ctx.log(LogLevel::kInfo, "starting");
    ctx.log(LogLevel::kWarn, "almost done");
    return std::string("{}");
  });
  std::vector<std::string> followed;
  auto sub = engine_->subscribe([&](const EngineEvent& e) {
    if (e.kind == EngineEvent::Kind::kTaskLog)
      followed.push_back(e.task_key + " " + e.status + " " + e.message);
  });
  start(workflow(R"({"name": "logs", "tasks": [{"id": "t", "capability": "step"}]})"));
  engine_->run_until_idle();
  EXPECT_EQ(followed, (std::vector<std::string>{"t info starting", "t warn almost done"}));
}

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

TEST_P(EngineTest, TasksNobodyHereCanRunDoNotHideRunnableOnes) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  const auto blocked = workflow(R"({"name": "blocked", "tasks": [{"id": "x", "capability": "nobody",
    "for_each": "input.n", "priority": 100}]})");
  std::string many = "{\"n\": [0";
  for (int i = 1; i < 300; ++i) many += "," + std::to_string(i);
  many += "]}";
  start(blocked, many);
  const auto run =
      start(workflow(R"({"name": "runnable", "tasks": [{"id": "t", "capability": "step"}]})"));
  engine_->run_until_idle();
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kSucceeded);
}

TEST_P(EngineTest, ExpiryThatFailsARunLeavesItsOtherTasksCancelled) {
  agent("a", "hang", "hang");
  engine_->register_function("hang", [&](TaskContext&) -> std::string {
    clock_->advance(2min);  // past every lease: the completion is refused
    return "{}";
  });
  const auto wf = workflow(R"({"name": "twin", "tasks": [
    {"id": "a", "capability": "hang", "priority": 10, "timeouts": {"start_to_close": "1m"}, "retry": {"max_attempts": 1}},
    {"id": "b", "capability": "hang", "timeouts": {"start_to_close": "1m"}, "retry": {"max_attempts": 5}}]})");
  const auto run = start(wf);
  engine_->tick();  // claims both; a runs and hangs; b's claim has expired before it starts and is
                    // dropped
  engine_->tick();  // both leases expired: a fails for good, the run fails, b is cancelled
  const auto d = engine_->get(run.id);
  EXPECT_EQ(d.run.status, RunStatus::kFailed);
  EXPECT_EQ(task(d, "a").status, TaskStatus::kTimedOut);
  EXPECT_EQ(task(d, "b").status,
            TaskStatus::kCancelled);  // not revived by the same maintenance pass
  ASSERT_EQ(task(d, "b").attempts.size(), 1u);
  EXPECT_EQ(task(d, "b").attempts[0].status, "cancelled");
  EXPECT_EQ(engine_->run_until_idle(), 0);
}

TEST_P(EngineTest, ARetriedTaskIsNotBornCancelled) {
  const auto wf = workflow(R"({"name": "again", "tasks": [{"id": "t", "capability": "late"}]})");
  const auto run = start(wf);
  engine_->cancel_task(
      task(engine_->get(run.id), "t").id);  // cancelled while still waiting for an agent
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kFailed);
  agent("a", "late", "late");
  bool cancelled = true;
  engine_->register_function("late", [&](TaskContext& ctx) {
    cancelled = ctx.cancelled();
    return std::string("{}");
  });
  engine_->retry(run.id);
  engine_->run_until_idle();
  EXPECT_EQ(engine_->get(run.id).run.status, RunStatus::kSucceeded);
  EXPECT_FALSE(cancelled);
}

TEST_P(EngineTest, ARunFailureTellsRunningSiblingsTheyAreCancelled) {
  engine_.reset();
  agent("a", "bad", "bad");
  agent("b", "watch", "watch");
  auto engine = make_engine(2, SystemClock::instance());
  engine->register_function("bad", [](TaskContext&) -> std::string {
    std::this_thread::sleep_for(50ms);  // let the sibling start first
    throw Error(ErrorCode::kInvalidArgument, "no");
  });
  std::atomic<bool> told{false};
  engine->register_function("watch", [&](TaskContext& ctx) {
    // Liveness, not speed: give the cancellation up to 20 s to arrive.
    for (int i = 0; i < 2000 && !told; ++i) {
      told = ctx.cancelled();
      std::this_thread::sleep_for(10ms);
    }
    return std::string("{}");
  });
  const auto wf =
      workflow(R"({"name": "sib", "tasks": [{"id": "w", "capability": "watch", "priority": 5},
                                                        {"id": "x", "capability": "bad"}]})");
  StartRun r;
  r.workflow = wf;
  r.owner = "alice";
  const auto run = engine->start(r);
  for (int i = 0; i < 2000 && !is_terminal(engine->get(run.id).run.status); ++i)
    std::this_thread::sleep_for(10ms);
  for (int i = 0; i < 2000 && !told; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(engine->get(run.id).run.status, RunStatus::kFailed);
  EXPECT_TRUE(told.load());
}

TEST_P(EngineTest, LabelFiltersFindOldRunsAcrossManyNewerOnes) {
  const auto wf = workflow(R"({"name": "l", "tasks": [{"id": "t", "capability": "nobody"}]})");
  StartRun r;
  r.workflow = wf;
  r.owner = "alice";
  r.labels = {{"team", "core"}};
  const auto old = engine_->start(r);
  r.labels.clear();
  for (int i = 0; i < 300; ++i) engine_->start(r);
  RunFilter f;
  f.labels = {{"team", "core"}};
  f.limit = 10;
  const auto page = engine_->list(f);
  ASSERT_EQ(page.runs.size(), 1u);
  EXPECT_EQ(page.runs[0].id, old.id);
  EXPECT_TRUE(page.next_page_token.empty());
}

TEST_P(EngineTest, AHandlerMayUnsubscribeItself) {
  agent("a", "step", "echo");
  engine_->register_function("echo", echo);
  int seen = 0;
  Subscription sub;
  sub = engine_->subscribe([&](const EngineEvent&) {
    ++seen;
    sub.reset();  // must not wait for itself
  });
  start(workflow(R"({"name": "once", "tasks": [{"id": "t", "capability": "step"}]})"));
  engine_->run_until_idle();
  EXPECT_GE(seen, 1);
  const int after = seen;
  start("once");
  engine_->run_until_idle();
  EXPECT_EQ(seen, after);
}

}  // namespace
}  // namespace devcycle
