// The fixture of the engine's conformance suites: an engine without threads
// (workers = 0) on a ManualClock over one Database backend, so that retries,
// leases and timeouts are exact and nothing sleeps.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "devcycle/workflow/engine.h"
#include "support/backends.h"
#include "support/temp_dir.h"

namespace devcycle::testing {

class EngineFixture : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    RegistryOptions ro;
    ro.clock = clock_;
    registry_ = std::make_unique<Registry>(*db_, ro);
    catalog_ = std::make_unique<WorkflowCatalog>(*db_, registry_.get(), clock_);
    registry_->define_type({"worker", "", "{}"});
    engine_ = make_engine(0);
  }

  std::unique_ptr<Engine> make_engine(int workers, std::shared_ptr<Clock> clock = nullptr) {
    EngineOptions o;
    o.clock = clock ? clock : clock_;
    o.workers = workers;
    o.default_lease = std::chrono::seconds(60);
    o.poll_interval = std::chrono::milliseconds(5);
    return std::make_unique<Engine>(*db_, *registry_, *catalog_, o);
  }

  // An agent offering `capability`@1.0.0, run by the in-process function `fn`.
  void agent(const std::string& name, const std::string& capability, const std::string& fn,
             int capacity = 100) {
    agent_run_by(name, capability, "inproc:" + fn, capacity);
  }

  // An agent offering `capability`@1.0.0 with any executor; returns its id.
  // Its capacity is high enough to limit nothing unless a test says so.
  std::string agent_run_by(const std::string& name, const std::string& capability,
                           const std::string& executor, int capacity = 100) {
    AgentSpec spec;
    spec.owner = "ops";
    spec.name = name;
    spec.type = "worker";
    spec.capacity = capacity;
    const auto a = registry_->create(spec);
    registry_->add_version(a.id, {"1.0.0", {capability + "@1.0.0"}, {}, executor, ""});
    registry_->deploy(a.id, "1.0.0");
    return a.id;
  }

  // Options of an engine without threads, on the test clock, talking to `bus`.
  EngineOptions on_bus(MessageBus& bus) {
    EngineOptions o;
    o.clock = clock_;
    o.workers = 0;
    o.bus = &bus;
    return o;
  }

  std::string workflow(const std::string& json_text) {
    return catalog_->create(json_text, "alice").name;
  }

  devcycle::Run start(const std::string& wf, const std::string& input = "{}",
                      const std::string& key = "") {
    StartRun r;
    r.workflow = wf;
    r.input = input;
    r.owner = "alice";
    r.idempotency_key = key;
    return engine_->start(r);
  }

  const TaskRun& task(const RunDetail& d, const std::string& key) {
    for (const auto& t : d.tasks) {
      if (t.key == key) return t;
    }
    throw std::runtime_error("no task " + key);
  }

  TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<WorkflowCatalog> catalog_;
  std::unique_ptr<Engine> engine_;
};

// Echo: returns {"got": input}.
inline std::string echo(TaskContext& ctx) {
  return nlohmann::json{{"got", nlohmann::json::parse(ctx.input())}}.dump();
}

}  // namespace devcycle::testing
