// Who runs a task here: the in-process functions registered with this
// engine, and which agent and function serve a task's capability or named
// agent (looked up in the registry and remembered for a second; any
// registry change or new function forgets them). Also the capability rate
// limits, which decide whether a runner may start now.
//
// Thread-safe. resolve() reads the registry (and so the database): never
// call it inside a write closure; remembered()/known() never read.
// resolve_and_remember() passes on the registry's errors other than
// kNotFound (which means nobody); rate_wait() passes on the cache's.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "devcycle/registry/registry.h"
#include "devcycle/workflow/engine.h"
#include "workflow/engine/claim.h"

namespace devcycle::internal {

class RunnerResolver {
 public:
  RunnerResolver(Registry& registry, const EngineOptions& options)
      : registry_(registry), options_(options) {}

  void register_function(std::string name, TaskFunction fn);
  // The function registered under `name`; empty when there is none.
  TaskFunction function(const std::string& name);

  // Looks up who runs `d` now (the registry), remembering the answer.
  Runners resolve_and_remember(const TaskDefinition& d, Micros at);
  // Who runs `d`, as last looked up (possibly nobody); nullopt when not
  // looked up within the last second.
  std::optional<Runners> known(const TaskDefinition& d, Micros at);
  // known(), or nobody.
  Runners remembered(const TaskDefinition& d, Micros at);
  // Forgets every lookup (a registry change).
  void forget();

  // Takes a start of `d` from its capability's rate limit; how long to wait
  // when there is none (0: go).
  Micros rate_wait(const TaskDefinition& d);
  // Whether `d`'s capability has a rate limit at all.
  bool rate_limited(const TaskDefinition& d) const;

 private:
  // Picks the agents and local functions for a task; nobody when no agent
  // with a function here (or a bus topic, or an allowed process) can run it.
  Runners resolve(const TaskDefinition& d);
  static std::string key_of(const TaskDefinition& d);

  Registry& registry_;
  const EngineOptions& options_;
  std::mutex functions_mu_;
  std::map<std::string, TaskFunction, std::less<>> functions_;
  struct Resolution {
    Runners runners;
    Micros until = 0;
  };
  std::mutex resolutions_mu_;
  std::map<std::string, Resolution> resolutions_;
};

}  // namespace devcycle::internal
