// The process that waits_crash_test kills.
//
//   waits_crash_driver DB_PATH waits    — a run with a timer, then a signal
//     wait and a child workflow (a timer, an in-process task), then an
//     in-process task; the driver itself sends the signal once the task
//     waits for it, and exits 0 when the run has succeeded.
//   waits_crash_driver DB_PATH process PROGRAM — a process agent running
//     PROGRAM 1234.7 (a sleep); the driver waits forever.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "devcycle/common/error.h"
#include "devcycle/workflow/engine.h"

using namespace devcycle;
using namespace std::chrono_literals;

namespace {

Agent ensure_agent(Registry& registry, const std::string& name, const std::string& capability,
                   const std::string& executor) {
  Agent agent;
  try {
    agent = registry.get_by_name("crash", name);
  } catch (const Error&) {
    agent = registry.create({"crash", name, "worker", "", "{}", {}, 1});
  }
  if (!agent.active_version) {
    try {
      registry.add_version(agent.id, {"1.0.0", {capability + "@1.0.0"}, {}, executor, ""});
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kAlreadyExists) throw;
    }
    registry.deploy(agent.id, "1.0.0");
  }
  return agent;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DB_PATH waits | DB_PATH process PROGRAM\n", argv[0]);
    return 64;
  }
  const std::string mode = argv[2];
  auto db = Database::open(std::string("sqlite://") + argv[1]);
  Registry registry(*db);
  WorkflowCatalog catalog(*db, &registry);
  if (registry.list_types().empty()) registry.define_type({"worker", "", "{}"});
  EngineOptions options;
  options.workers = 2;
  options.default_lease = 1s;
  options.poll_interval = 5ms;
  if (mode == "process") options.processes.allow = {{argv[3], false}};
  Engine engine(*db, registry, catalog, options);

  if (mode == "process") {
    ensure_agent(registry, "sleeper", "nap",
                 std::string("process:[\"") + argv[3] + "\", \"1234.7\"]");
    catalog.create(R"({"name": "sleepy", "tasks": [{"id": "nap", "capability": "nap",
      "retry": {"max_attempts": 1}}]})",
                   "crash");
    engine.start({"sleepy", std::nullopt, "{}", "crash", "the-one", {}});
    for (;;) std::this_thread::sleep_for(1s);
  }

  engine.register_function("done", [](TaskContext&) { return std::string(R"({"ok": true})"); });
  ensure_agent(registry, "finisher", "finish", "inproc:done");
  catalog.create(R"({"name": "waity-child", "tasks": [
    {"id": "nap", "sleep": "500ms"},
    {"id": "end", "capability": "finish", "depends_on": ["nap"],
     "retry": {"max_attempts": 100, "initial": "10ms", "max": "50ms"}}]})",
                 "crash");
  catalog.create(R"({"name": "waity", "tasks": [
    {"id": "nap", "sleep": "1s"},
    {"id": "go", "signal": "go", "depends_on": ["nap"]},
    {"id": "sub", "workflow": "waity-child", "depends_on": ["nap"]},
    {"id": "end", "capability": "finish", "depends_on": ["go", "sub"],
     "retry": {"max_attempts": 100, "initial": "10ms", "max": "50ms"}}]})",
                 "crash");
  const auto run = engine.start({"waity", std::nullopt, "{}", "crash", "the-one", {}});
  for (;;) {
    const auto d = engine.get(run.id);  // the idempotency key: the run of the first start
    if (is_terminal(d.run.status)) return d.run.status == RunStatus::kSucceeded ? 0 : 1;
    for (const auto& t : d.tasks) {
      if (t.key == "go" && t.status == TaskStatus::kWaiting) engine.signal(run.id, "go", "{}");
    }
    std::this_thread::sleep_for(20ms);
  }
}
