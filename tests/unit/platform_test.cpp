#include "devcycle/platform/platform.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "devcycle/version.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

PlatformOptions memory_options(std::shared_ptr<MemoryLogSink> sink) {
  PlatformOptions o;
  o.database = "sqlite::memory:";
  o.log_sink = std::move(sink);
  return o;
}

TEST(PlatformTest, OpensEveryPartAndSaysSo) {
  auto sink = std::make_shared<MemoryLogSink>();
  auto p = Platform::open(memory_options(sink));
  p->database().write([](Txn& t) { t.execute_script("CREATE TABLE t (x BIGINT)"); });
  p->cache().set("k", "v");
  EXPECT_EQ(p->cache().get("k"), "v");
  EXPECT_EQ(p->database().dialect(), Dialect::kSqlite);
  const auto published = p->bus().publish({"platform.test", "", {}, "hello"}).get();
  const auto got = p->bus().fetch("platform.test", "g", 10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, published.id);
  EXPECT_EQ(got[0].message.payload, "hello");
  EXPECT_THROW(p->messages().receive("not-an-agent"), Error);

  const auto lines = sink->lines();
  ASSERT_FALSE(lines.empty());
  const auto j = nlohmann::json::parse(lines.front());
  EXPECT_EQ(j["msg"], "platform opened");
  EXPECT_EQ(j["database"], "sqlite::memory:");
  EXPECT_EQ(j["bus"], "inproc://");
  EXPECT_EQ(j["cache"], "memory://");

  const auto metrics = p->metrics().render_prometheus();
  EXPECT_NE(metrics.find("devcycle_build_info{version=\"" DEVCYCLE_VERSION_STRING "\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("devcycle_db_commits_total"), std::string::npos);
}

TEST(PlatformTest, DefaultsCreateTheSqliteFileInTheWorkingDirectory) {
  testing::TempDir dir;
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  {
    PlatformOptions o;
    o.log_sink = std::make_shared<MemoryLogSink>();
    auto p = Platform::open(o);
    EXPECT_EQ(p->options().database, "sqlite://./devcycle.db");
    EXPECT_EQ(p->database().url(), "sqlite://./devcycle.db");
  }
  std::filesystem::current_path(cwd);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "devcycle.db"));
}

TEST(PlatformTest, InjectedClockReachesTheCache) {
  auto clock = std::make_shared<ManualClock>();
  auto o = memory_options(std::make_shared<MemoryLogSink>());
  o.clock = clock;
  auto p = Platform::open(o);
  p->cache().set("k", "v", std::chrono::seconds(1));
  clock->advance(std::chrono::seconds(2));
  EXPECT_EQ(p->cache().get("k"), std::nullopt);
  EXPECT_EQ(&p->clock(), clock.get());
}

TEST(PlatformTest, LogLevelFiltersPlatformLogs) {
  auto sink = std::make_shared<MemoryLogSink>();
  auto o = memory_options(sink);
  o.log_level = "warn";
  auto p = Platform::open(o);
  EXPECT_TRUE(sink->records().empty());
  p->logger().warn("shown");
  EXPECT_EQ(sink->records().size(), 1u);
}

TEST(PlatformTest, BadOrUnbuiltSettingsAreClearErrors) {
  auto o = memory_options(std::make_shared<MemoryLogSink>());
  o.bus = "kafka://";
  EXPECT_DEVCYCLE_ERROR(Platform::open(o), ErrorCode::kInvalidArgument, "bus", "names no broker");
  o = memory_options(std::make_shared<MemoryLogSink>());
  o.log_level = "chatty";
  EXPECT_DEVCYCLE_ERROR(Platform::open(o), ErrorCode::kInvalidArgument, "log_level", "chatty");
  o = memory_options(std::make_shared<MemoryLogSink>());
  o.database = "sqlite:/missing-slash.db";
  EXPECT_DEVCYCLE_ERROR(Platform::open(o), ErrorCode::kInvalidArgument, "database",
                        "sqlite:/missing-slash.db");
}

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

TEST(PlatformRegistryTest, RegistryUsesThePlatformDatabaseAndClock) {
  auto clock = std::make_shared<ManualClock>();
  auto o = memory_options(std::make_shared<MemoryLogSink>());
  o.clock = clock;
  o.heartbeat_timeout = std::chrono::seconds(10);
  o.monitor_interval = std::chrono::milliseconds(0);  // the test sweeps by hand
  auto p = Platform::open(o);
  auto& r = p->registry();
  r.define_type({"tester", "", "{}"});
  AgentSpec spec;
  spec.owner = "alice";
  spec.name = "t1";
  spec.type = "tester";
  const auto a = r.create(spec);
  r.heartbeat(a.id);
  clock->advance(std::chrono::seconds(11));
  EXPECT_EQ(r.sweep_offline().size(), 1u);
  const auto tables = p->database().read([](Txn& t) {
    return t.query("SELECT COUNT(*) FROM schema_migrations WHERE module = 'registry'")[0][0]
        .as_int();
  });
  EXPECT_EQ(tables, 2);  // agents, then their shared flag
  const auto wf = p->workflows().create(
      R"({"name": "w", "tasks": [{"id": "a", "capability": "lint"}]})", "alice");
  EXPECT_EQ(wf.version, 1);
  EXPECT_EQ(wf.warnings.size(), 1u);  // no agent offers lint: the catalog sees the registry
}

TEST(PlatformRegistryTest, BadMonitorSettingsAreRefused) {
  auto o = memory_options(std::make_shared<MemoryLogSink>());
  o.heartbeat_timeout = std::chrono::milliseconds(0);
  EXPECT_DEVCYCLE_ERROR(Platform::open(o), ErrorCode::kInvalidArgument, "heartbeat_timeout");
  o = memory_options(std::make_shared<MemoryLogSink>());
  o.monitor_interval = std::chrono::milliseconds(-1);
  EXPECT_DEVCYCLE_ERROR(Platform::open(o), ErrorCode::kInvalidArgument, "monitor_interval");
}

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

// Issue #20: retention and the engine's metrics were the server's; every
// embedder now gets them from the Platform.
TEST(PlatformOperationsTest, EngineMetricsAndRetentionComeWithThePlatform) {
  auto clock = std::make_shared<ManualClock>();
  PlatformOptions o;
  o.database = "sqlite::memory:";
  o.clock = clock;
  o.engine_workers = 0;
  o.monitor_interval = std::chrono::milliseconds(0);
  o.retention = std::chrono::hours(24);
  o.retention_sweep = std::chrono::milliseconds(100);
  auto p = Platform::open(o);
  p->registry().define_type({"tester", "", "{}"});
  AgentSpec spec;
  spec.owner = "alice";
  spec.name = "echo";
  spec.type = "tester";
  const auto a = p->registry().create(spec);
  p->registry().add_version(a.id, {"1.0.0", {"echo@1.0.0"}, {}, "inproc:echo", ""});
  p->registry().deploy(a.id, "1.0.0");
  p->engine().register_function("echo", [](TaskContext& ctx) { return ctx.input(); });
  p->workflows().create(R"({"name": "w", "tasks": [{"id": "t", "capability": "echo"}]})", "alice");
  StartRun r;
  r.workflow = "w";
  r.owner = "alice";
  const auto run = p->engine().start(r);
  auto text = p->metrics().render_prometheus();
  EXPECT_NE(text.find("devcycle_runs_started_total 1"), std::string::npos) << text;
  EXPECT_NE(text.find("devcycle_tasks_open{status=\"ready\"} 1"), std::string::npos) << text;
  p->engine().run_until_idle();
  text = p->metrics().render_prometheus();
  EXPECT_NE(text.find("devcycle_runs_finished_total{status=\"succeeded\"} 1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("devcycle_tasks_open{status=\"ready\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("devcycle_agents{status=\"offline\"} 1"), std::string::npos) << text;

  // Two days on, the sweep (every 100 ms) purges the finished run.
  clock->advance(std::chrono::hours(48));
  bool purged = false;
  for (int i = 0; i < 100 && !purged; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    try {
      p->engine().get(run.id);
    } catch (const Error& e) {
      purged = e.code() == ErrorCode::kNotFound;
    }
  }
  EXPECT_TRUE(purged);
}

TEST(PlatformOperationsTest, CollectorsRunBeforeRenderingUntilRemoved) {
  MetricsRegistry m;
  int runs = 0;
  const auto id = m.add_collector([&] { m.gauge("depth", "queue depth").set(++runs); });
  EXPECT_NE(m.render_prometheus().find("devcycle_depth 1"), std::string::npos);
  EXPECT_NE(m.render_prometheus().find("devcycle_depth 2"), std::string::npos);
  m.remove_collector(id);
  EXPECT_NE(m.render_prometheus().find("devcycle_depth 2"), std::string::npos);
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace devcycle
