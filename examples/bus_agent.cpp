// devcycle-bus-agent: runs the tasks an engine elsewhere assigns over the
// message bus (an agent whose executor is "bus:"), each as one run of a
// program fixed on this command line — never from the task. The task's input
// reaches the program on stdin as JSON; its stdout (JSON) is the output, its
// stderr lines the task log; the same isolation as the engine's own process
// agents (scrubbed environment, fresh directory, rlimits, process group).
//
//   devcycle-bus-agent --bus kafka://127.0.0.1:9092 --capability codegen
//       --interpreter -- /usr/bin/python3 /opt/agents/codegen.py      (one line)
//
// It needs only the bus: no database, no server. Several copies on one topic
// share its tasks. SIGTERM or SIGINT: it finishes the task in hand and exits.
//
// Exit codes: 0 stopped by a signal, 64 bad usage, 69 the bus cannot be
// reached, 70 an internal error.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/messaging/bus_worker.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/store/database.h"
#include "devcycle/workflow/process_executor.h"

namespace {

constexpr int kUsage = 64, kUnavailable = 69, kSoftware = 70;

const char* const kHelp =
    "usage: devcycle-bus-agent [options] -- PROGRAM [ARG...]\n"
    "  --bus URL               kafka://host:port (default $DEVCYCLE_BUS)\n"
    "  --capability NAME       take tasks from devcycle.tasks.NAME\n"
    "  --topic TOPIC           or from this topic (an executor \"bus:TOPIC\")\n"
    "  --completion-topic T    where outcomes go (default devcycle.completions)\n"
    "  --group G               consumer group (default: one per topic)\n"
    "  --interpreter           PROGRAM is an interpreter (python3, sh, ...): allow it\n"
    "  --timeout-ms N          one task's time limit (default 300000)\n"
    "  --memory-mb N           address-space limit (default 1024)\n";

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr, "devcycle-bus-agent: %s\n%s", problem.c_str(), kHelp);
  std::exit(kUsage);
}

long number(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (!*text || *end || v <= 0) usage(flag + ": \"" + text + "\" is not a positive number");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bus_url = std::getenv("DEVCYCLE_BUS") ? std::getenv("DEVCYCLE_BUS") : "";
  std::string topic;
  devcycle::BusWorkerOptions worker_options;
  devcycle::ProcessOptions process;
  bool interpreter = false;
  std::vector<std::string> program;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + ": needs a value");
      return argv[++i];
    };
    if (a == "--") {
      program.assign(argv + i + 1, argv + argc);
      break;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--bus") {
      bus_url = value();
    } else if (a == "--capability") {
      topic = std::string("devcycle.tasks.") + value();
    } else if (a == "--topic") {
      topic = value();
    } else if (a == "--completion-topic") {
      worker_options.completion_topic = value();
    } else if (a == "--group") {
      worker_options.group = value();
    } else if (a == "--interpreter") {
      interpreter = true;
    } else if (a == "--timeout-ms") {
      process.timeout = std::chrono::milliseconds(number(a, value()));
    } else if (a == "--memory-mb") {
      process.memory_bytes = static_cast<std::uint64_t>(number(a, value())) * 1024 * 1024;
    } else {
      usage("unknown option \"" + a + "\"");
    }
  }
  if (bus_url.empty()) usage("--bus: missing (or set DEVCYCLE_BUS)");
  if (topic.empty()) usage("--capability or --topic: missing");
  if (program.empty()) usage("PROGRAM: missing after --");
  // The operator's own command line is the allow-list: exactly this program.
  process.allow = {{program[0], interpreter}};
  try {
    devcycle::check_allowed(program, process);
  } catch (const devcycle::Error& e) {
    usage(e.what());
  }
  // Worker timeouts: an assignment is handed to another worker only after
  // this one has certainly given up on it.
  worker_options.visibility_timeout = process.timeout + std::chrono::minutes(1);

  // Signals are taken by sigwait below, never by a handler.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    // A bus URL other than inproc:// needs no database; inproc:// would be
    // this process's own, useless to an engine elsewhere.
    if (bus_url.starts_with("inproc:"))
      usage("--bus: inproc:// is this process only; use kafka://");
    auto db = devcycle::Database::open("sqlite::memory:");
    auto bus = devcycle::MessageBus::open(bus_url, *db);
    devcycle::BusWorker worker(
        *bus, topic,
        [&](devcycle::TaskContext& ctx) {
          devcycle::ProcessCall call;
          call.argv = program;
          call.input = std::string(ctx.input());
          call.on_stderr_line = [&](std::string_view line) {
            ctx.log(devcycle::LogLevel::kInfo, std::string(line));
          };
          const auto r = devcycle::run_process(call, process);
          if (r.exit_code != 0 || r.timed_out || r.cancelled || r.output_too_large)
            throw std::runtime_error(devcycle::describe(r, process));
          if (!r.artifacts.empty()) {
            ctx.log(devcycle::LogLevel::kWarn,
                    std::to_string(r.artifacts.size()) +
                        " file(s) in ./artifacts/ were not kept: artifacts do not travel over "
                        "the bus");
          }
          return r.output;
        },
        worker_options);
    std::fprintf(stderr, "devcycle-bus-agent: taking tasks from %s on %s\n", topic.c_str(),
                 bus_url.c_str());
    int sig = 0;
    sigwait(&stop, &sig);
    std::fprintf(stderr, "devcycle-bus-agent: stopping (signal %d)\n", sig);
    return 0;
  } catch (const devcycle::Error& e) {
    std::fprintf(stderr, "devcycle-bus-agent: %s\n", e.what());
    return e.code() == devcycle::ErrorCode::kUnavailable       ? kUnavailable
           : e.code() == devcycle::ErrorCode::kInvalidArgument ? kUsage
                                                               : kSoftware;
  }
}
