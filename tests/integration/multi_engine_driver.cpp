// The engine processes of multi_engine_test, all on one PostgreSQL database.
//
//   multi_engine_driver setup URL RUNS CAPACITY   agent (of CAPACITY), workflow and RUNS runs
//   multi_engine_driver work URL LOG       works until no run is active
//
// In work mode the in-process agent appends "S <task id> <attempt> <pid> <us>"
// when an attempt starts and "E ..." when it ends to LOG (O_APPEND: lines of
// several processes never interleave), so the test can check that no two
// attempts of one task ever ran at the same time.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/common/error.h"
#include "devcycle/workflow/engine.h"

using namespace devcycle;
using namespace std::chrono_literals;

namespace {

void append(int fd, char kind, TaskContext& ctx) {
  const std::string line = std::string(1, kind) + " " + ctx.task_id() + " " +
                           std::to_string(ctx.attempt()) + " " + std::to_string(::getpid()) + " " +
                           std::to_string(SystemClock::instance()->now()) + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throw std::runtime_error("lease log write failed");
  }
}

int setup(Database& db, int runs, int capacity) {
  Registry registry(db);
  WorkflowCatalog catalog(db, &registry);
  EngineOptions options;
  options.workers = 0;  // this process only starts runs
  Engine engine(db, registry, catalog, options);
  registry.define_type({"worker", "", "{}"});
  AgentSpec spec;
  spec.owner = "multi";
  spec.name = "worker";
  spec.type = "worker";
  spec.capacity = capacity;
  const auto agent = registry.create(spec);
  registry.add_version(agent.id, {"1.0.0", {"work@1.0.0"}, {}, "inproc:work", ""});
  registry.deploy(agent.id, "1.0.0");
  // A fan-out and a join: sibling completions that race to release "c".
  catalog.create(R"({"name": "multi", "tasks": [
    {"id": "a", "capability": "work", "retry": {"max_attempts": 50, "initial": "10ms", "max": "50ms"}},
    {"id": "b", "capability": "work", "depends_on": ["a"], "for_each": "[1, 2]",
     "retry": {"max_attempts": 50, "initial": "10ms", "max": "50ms"}},
    {"id": "c", "capability": "work", "depends_on": ["b"],
     "retry": {"max_attempts": 50, "initial": "10ms", "max": "50ms"}}]})",
                 "multi");
  std::vector<StartRun> batch;
  for (int i = 0; i < runs; ++i) {
    StartRun r;
    r.workflow = "multi";
    r.owner = "multi";
    r.idempotency_key = "multi-" + std::to_string(i);
    batch.push_back(std::move(r));
    if (batch.size() == 1000 || i + 1 == runs) {
      engine.start_many(batch);
      batch.clear();
    }
  }
  return 0;
}

int work(Database& db, const std::string& log) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return 70;
  Registry registry(db);
  WorkflowCatalog catalog(db, &registry);
  EngineOptions options;
  options.workers = 4;
  options.default_lease = 1s;  // short, so that a killed engine's attempts come back soon
  options.poll_interval = 5ms;
  Engine engine(db, registry, catalog, options);
  engine.register_function("work", [fd](TaskContext& ctx) {
    append(fd, 'S', ctx);
    std::this_thread::sleep_for(std::chrono::microseconds(200 + std::rand() % 800));
    append(fd, 'E', ctx);
    return std::string(R"({"done": true})");
  });
  for (;;) {
    bool active = false;
    for (auto status : {RunStatus::kRunning, RunStatus::kPending}) {
      RunFilter f;
      f.status = status;
      f.limit = 1;
      active = active || !engine.list(f).runs.empty();
    }
    if (!active) return 0;
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s setup URL RUNS CAPACITY | work URL LOG\n", argv[0]);
    return 64;
  }
  const std::string mode = argv[1];
  try {
    auto db = Database::open(argv[2]);
    if (mode == "setup" && argc == 5) return setup(*db, std::atoi(argv[3]), std::atoi(argv[4]));
    if (mode == "work") return work(*db, argv[3]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "multi_engine_driver %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
  return 64;
}
