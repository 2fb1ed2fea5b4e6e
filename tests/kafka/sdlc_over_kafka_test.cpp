// The SDLC example with its four agents in processes of their own that talk
// to the engine only over Kafka (label `kafka`): each agent is a
// devcycle-bus-agent (examples/bus_agent.cpp) running one of
// examples/sdlc/agents/*.py, given nothing but the broker's address.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "devcycle/common/uuid.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/workflow/engine.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string broker_url() {
  const char* b = std::getenv("DEVCYCLE_TEST_KAFKA");
  return std::string("kafka://") + (b ? b : "127.0.0.1:19692");
}

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(SdlcOverKafkaTest, TheExampleRunsWithItsAgentsInOtherProcesses) {
  testing::TempDir dir;
  auto db = Database::open("sqlite://" + dir.file("sdlc.db"));
  auto bus = MessageBus::open(broker_url(), *db);
  Registry registry(*db);
  WorkflowCatalog catalog(*db, &registry);
  registry.define_type({"sdlc-agent", "", "{}"});
  // Topics of this run only: the broker lives for the whole test run.
  const std::string unique = new_uuid_v7().substr(24);
  EngineOptions options;
  options.bus = bus.get();
  options.workers = 2;
  options.poll_interval = 20ms;
  options.event_topic = "";
  options.completion_topic = "sdlc-completions-" + unique;
  Engine engine(*db, registry, catalog, options);

  const std::vector<std::pair<std::string, std::string>> roles = {
      {"analyze", "requirements-analysis"},
      {"codegen", "codegen"},
      {"test", "testing"},
      {"deploy", "deployment"}};
  std::map<std::string, std::string> agent_of;  // task id -> agent id
  std::vector<pid_t> workers;
  for (const auto& [name, capability] : roles) {
    const auto topic = "sdlc-" + unique + "." + capability;
    AgentSpec spec;
    spec.owner = "sdlc";
    spec.name = name;
    spec.type = "sdlc-agent";
    spec.capacity = 2;
    const auto a = registry.create(spec);
    registry.add_version(a.id, {"1.0.0", {capability + "@1.0.0"}, {}, "bus:" + topic, ""});
    registry.deploy(a.id, "1.0.0");
    agent_of[name == "codegen" ? "generate" : name] = a.id;
    const pid_t pid =
        spawn({DEVCYCLE_BUS_AGENT, "--bus", broker_url(), "--topic", topic, "--completion-topic",
               options.completion_topic, "--interpreter", "--", "/usr/bin/python3",
               std::string(DEVCYCLE_EXAMPLES_DIR) + "/sdlc/agents/" + name + ".py"});
    ASSERT_GT(pid, 0);
    workers.push_back(pid);
  }
  catalog.create(read_file(std::string(DEVCYCLE_EXAMPLES_DIR) + "/workflows/sdlc.json"), "sdlc");
  StartRun start;
  start.workflow = "sdlc";
  start.owner = "sdlc";
  start.input = json{
      {"requirements", "Users can sign up\nUsers can log in"},
      {"environment",
       "staging"}}.dump();
  const auto run = engine.start(start);
  RunDetail d;
  for (int i = 0; i < 1200; ++i) {
    d = engine.get(run.id);
    if (is_terminal(d.run.status)) break;
    std::this_thread::sleep_for(100ms);
  }
  for (const pid_t pid : workers) ::kill(pid, SIGTERM);
  for (const pid_t pid : workers) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a worker did not stop cleanly";
  }

  ASSERT_EQ(d.run.status, RunStatus::kSucceeded) << d.run.error;
  const auto output = json::parse(d.run.output);
  EXPECT_TRUE(output["deploy"]["release"].get<std::string>().starts_with("r-")) << d.run.output;
  EXPECT_EQ(output["deploy"]["environment"], "staging");
  for (const auto& t : d.tasks) {
    EXPECT_EQ(t.status, TaskStatus::kSucceeded) << t.key;
    EXPECT_EQ(t.agent_id, agent_of[t.key]) << t.key;
  }
  // The agents' stderr came back over Kafka as task log lines.
  const auto deploy = std::find_if(d.tasks.begin(), d.tasks.end(),
                                   [](const TaskRun& t) { return t.key == "deploy"; });
  ASSERT_NE(deploy, d.tasks.end());
  bool logged = false;
  for (const auto& line : engine.logs(deploy->id).lines)
    logged = logged || line.message.starts_with("deployed r-");
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace devcycle
