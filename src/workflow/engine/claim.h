// What the engine's parts pass between them: who can run a task here
// (Runner) and a claimed attempt on its way to a function (Claim), with the
// small conversions every part uses. Internal; plain values, no locking.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/common/error.h"
#include "devcycle/registry/registry.h"
#include "devcycle/workflow/engine.h"

namespace devcycle::internal {

// The "function" of a claim whose agent runs in another process: the topic
// its assignment goes to follows.
inline constexpr std::string_view kBusPrefix = "bus:";

inline Micros us(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

inline Error run_not_found(std::string_view id) {
  return Error(ErrorCode::kNotFound, "run \"" + std::string(id.substr(0, 64)) + "\" not found");
}

inline Error task_not_found(std::string_view id) {
  return Error(ErrorCode::kNotFound, "task \"" + std::string(id.substr(0, 64)) + "\" not found");
}

// Whether runs of `run_owner` may be given to `agent` (remote agents).
inline bool may_serve(const Agent& agent, std::string_view run_owner) {
  return agent.shared || agent.owner == run_owner;
}

// An agent that can run a task here, and the function that runs it.
struct Runner {
  std::string agent_id;
  std::string function;
  int capacity = 1;  // attempts it runs at once
};
using Runners = std::vector<Runner>;  // in the registry's order of preference

// A claimed attempt, on its way to a function.
struct Claim {
  std::string task_id;
  std::string run_id;
  std::string task_key;
  std::string workflow_id;
  std::string function;
  std::string agent_id;
  std::string lease_owner;
  std::string input;
  int attempt = 0;
  Micros started_at = 0;
  Micros lease_expires_at = 0;
  std::optional<Micros> close_deadline;
  TaskTimeouts timeouts;
};

}  // namespace devcycle::internal
