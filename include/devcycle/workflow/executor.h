// How an agent runs a task. An agent version's executor string says which
// executor (ExecutorSpec); the in-process executor calls a C++ (or, through
// the bindings, Python or Java) function with a TaskContext.
//
// Execution is at-least-once: an attempt may run again after a crash or a
// lost lease. Use idempotency_key() (run/task/attempt) to make side effects
// safe. Recording is exactly-once: only the attempt that holds the lease can
// complete the task.
//
// Thread-safety: a TaskContext belongs to one attempt and may be used from
// the thread running it (log, heartbeat and cancelled are thread-safe).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "devcycle/observability/logger.h"
#include "devcycle/store/blob_store.h"

namespace devcycle {

class TaskContext {
 public:
  virtual ~TaskContext() = default;

  virtual const std::string& run_id() const noexcept = 0;
  virtual const std::string& task_id() const noexcept = 0;   // the task's row id (uuid)
  virtual const std::string& task_key() const noexcept = 0;  // "build", or "test[2]" in a fan-out
  virtual int attempt() const noexcept = 0;                  // 1, 2, ...
  // "<run id>/<task key>/<attempt>".
  virtual std::string idempotency_key() const = 0;
  virtual const std::string& input() const noexcept = 0;     // rendered input, JSON text
  virtual const std::string& agent_id() const noexcept = 0;  // the agent chosen for this attempt

  // Appends a line to this attempt's task log.
  virtual void log(LogLevel level, std::string_view message) = 0;
  // Extends the lease. Throws Error{kConflict} when the attempt has lost its
  // lease (timed out, cancelled, or taken over): stop working then.
  virtual void heartbeat() = 0;
  // True once the run or task was cancelled; long work should poll it.
  virtual bool cancelled() const noexcept = 0;
  // Stores `bytes` as an artifact of this attempt named `name` (1-255
  // bytes, no '/', no control characters): in the engine's BlobStore, listed
  // with the run. Error{kUnavailable} when the engine has no blob store.
  virtual BlobInfo put_artifact(std::string_view name, std::string_view bytes);
};

// An in-process agent: returns the task's output as JSON text ("" means
// null). Throwing fails the attempt; it is retried per the task's policy,
// except that Error{kInvalidArgument} (the input can never work) fails the
// task at once.
using TaskFunction = std::function<std::string(TaskContext&)>;

// An agent version's executor string, parsed once (a plain value):
//   inproc:<function>   a function registered with Engine::register_function
//   process:<argv>      a program on this host (process_executor.h)
//   bus:<topic>         an agent in another process, over the message bus; an
//                       empty topic means devcycle.tasks.<capability or name>
//   remote              a remote worker that claims tasks over the API
//   http:… / https:…    an HTTP endpoint
// Anything else is kUnknown: the registry stores it as given and nobody runs
// its tasks.
struct ExecutorSpec {
  enum class Kind { kInproc, kProcess, kBus, kRemote, kHttp, kUnknown };
  Kind kind = Kind::kUnknown;
  // What follows the prefix: the function, the argv text, the topic; the
  // whole URL for kHttp; empty for kRemote and kUnknown.
  std::string target;

  static ExecutorSpec parse(std::string_view executor);
  // Whether the executor runs code the agent's owner controls on a host of
  // this deployment or reaches a network endpoint (process, http): deploying
  // such an agent is an admin's decision (docs/security.md).
  bool runs_code() const noexcept { return kind == Kind::kProcess || kind == Kind::kHttp; }
};
std::string_view to_string(ExecutorSpec::Kind kind) noexcept;

}  // namespace devcycle
