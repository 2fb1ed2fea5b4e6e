// The process that engine_crash_test kills. It opens the engine on a SQLite
// file, starts the runs once (idempotency keys make a restart harmless), and
// works until every run has finished. Its in-process agent appends
// "<run> <task> <attempt>" to a side-effect log and fsyncs it before it
// completes, so the test can see every execution, including those whose
// completion a SIGKILL lost.
//
//   engine_crash_driver DB_PATH SIDE_EFFECT_LOG RUNS
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "devcycle/common/error.h"
#include "devcycle/workflow/engine.h"

using namespace devcycle;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DB_PATH SIDE_EFFECT_LOG RUNS\n", argv[0]);
    return 64;
  }
  const std::string log_path = argv[2];
  const int runs = std::atoi(argv[3]);
  auto db = Database::open(std::string("sqlite://") + argv[1]);
  Registry registry(*db);
  WorkflowCatalog catalog(*db, &registry);
  EngineOptions options;
  options.workers = 4;
  options.default_lease = 1s;  // short, so that a killed attempt is retried soon
  options.poll_interval = 5ms;
  Engine engine(*db, registry, catalog, options);

  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return 70;
  engine.register_function("work", [fd](TaskContext& ctx) {
    const std::string line =
        ctx.run_id() + " " + ctx.task_key() + " " + std::to_string(ctx.attempt()) + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
        ::fsync(fd) != 0) {
      throw std::runtime_error("side-effect log write failed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + std::rand() % 10));
    return std::string(R"({"done": true})");
  });

  if (registry.list_types().empty()) registry.define_type({"worker", "", "{}"});
  Agent agent;
  try {
    agent = registry.get_by_name("crash", "worker");
  } catch (const Error&) {
    AgentSpec spec;
    spec.owner = "crash";
    spec.name = "worker";
    spec.type = "worker";
    spec.capacity = 100;  // the test is about crashes, not capacity
    agent = registry.create(spec);
  }
  if (!agent.active_version) {
    try {
      registry.add_version(agent.id, {"1.0.0", {"work@1.0.0"}, {}, "inproc:work", ""});
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kAlreadyExists) throw;
    }
    registry.deploy(agent.id, "1.0.0");
  }
  const auto wf = catalog.create(R"({"name": "crashy", "tasks": [
    {"id": "a", "capability": "work", "retry": {"max_attempts": 100, "initial": "10ms", "max": "50ms"}},
    {"id": "b", "capability": "work", "depends_on": ["a"], "for_each": "[1, 2, 3]",
     "retry": {"max_attempts": 100, "initial": "10ms", "max": "50ms"}},
    {"id": "c", "capability": "work", "depends_on": ["b"],
     "retry": {"max_attempts": 100, "initial": "10ms", "max": "50ms"}}]})",
                                 "crash");
  for (int i = 0; i < runs; ++i) {
    StartRun r;
    r.workflow = wf.name;
    r.owner = "crash";
    r.idempotency_key = "crash-" + std::to_string(i);
    engine.start(r);
  }
  for (;;) {
    RunFilter f;
    f.status = RunStatus::kRunning;
    f.limit = 1;
    if (engine.list(f).runs.empty()) return 0;
    std::this_thread::sleep_for(10ms);
  }
}
