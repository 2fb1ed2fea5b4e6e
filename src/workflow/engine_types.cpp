// Status names of runs, tasks and engine events.
#include <array>

#include "devcycle/common/error.h"
#include "devcycle/workflow/engine.h"

namespace devcycle {
namespace {

constexpr std::array<std::string_view, 7> kRun = {"pending", "running",   "paused",   "succeeded",
                                                  "failed",  "cancelled", "timed_out"};
constexpr std::array<std::string_view, 9> kTask = {"pending",   "ready",     "running",
                                                   "waiting",   "succeeded", "failed",
                                                   "timed_out", "cancelled", "skipped"};

template <class E, std::size_t N>
E parse(const std::array<std::string_view, N>& names, std::string_view text, std::string_view field,
        const char* what) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<E>(i);
  }
  std::string known;
  for (auto n : names) known += (known.empty() ? "" : ", ") + std::string(n);
  throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": \"" +
                                               std::string(text.substr(0, 64)) + "\" is not a " +
                                               what + " status (" + known + ")");
}

}  // namespace

std::string_view to_string(RunStatus s) noexcept { return kRun[static_cast<std::size_t>(s)]; }
std::string_view to_string(TaskStatus s) noexcept { return kTask[static_cast<std::size_t>(s)]; }
RunStatus parse_run_status(std::string_view text, std::string_view field) {
  return parse<RunStatus>(kRun, text, field, "run");
}
TaskStatus parse_task_status(std::string_view text, std::string_view field) {
  return parse<TaskStatus>(kTask, text, field, "task");
}

bool is_terminal(RunStatus s) noexcept {
  return s == RunStatus::kSucceeded || s == RunStatus::kFailed || s == RunStatus::kCancelled ||
         s == RunStatus::kTimedOut;
}

bool is_terminal(TaskStatus s) noexcept {
  return s == TaskStatus::kSucceeded || s == TaskStatus::kFailed || s == TaskStatus::kTimedOut ||
         s == TaskStatus::kCancelled || s == TaskStatus::kSkipped;
}

std::string_view to_string(EngineEvent::Kind kind) noexcept {
  switch (kind) {
    case EngineEvent::Kind::kRunStarted:
      return "run.started";
    case EngineEvent::Kind::kRunFinished:
      return "run.finished";
    case EngineEvent::Kind::kTaskReady:
      return "task.ready";
    case EngineEvent::Kind::kTaskStarted:
      return "task.started";
    case EngineEvent::Kind::kTaskSucceeded:
      return "task.succeeded";
    case EngineEvent::Kind::kTaskFailed:
      return "task.failed";
    case EngineEvent::Kind::kTaskRetrying:
      return "task.retrying";
    case EngineEvent::Kind::kTaskSkipped:
      return "task.skipped";
    case EngineEvent::Kind::kTaskCancelled:
      return "task.cancelled";
    case EngineEvent::Kind::kTaskLog:
      return "task.log";
    case EngineEvent::Kind::kRunPaused:
      return "run.paused";
    case EngineEvent::Kind::kRunResumed:
      return "run.resumed";
    case EngineEvent::Kind::kTaskWaiting:
      return "task.waiting";
    case EngineEvent::Kind::kRunQueued:
      return "run.queued";
  }
  return "task.ready";
}

BlobInfo TaskContext::put_artifact(std::string_view, std::string_view) {
  throw Error(ErrorCode::kUnavailable, "artifacts: this executor cannot store artifacts");
}

}  // namespace devcycle
