#include "workflow/engine/runner_resolver.h"

#include "messaging/bus_checks.h"

namespace devcycle::internal {

void RunnerResolver::register_function(std::string name, TaskFunction fn) {
  {
    std::lock_guard lock(functions_mu_);
    functions_[std::move(name)] = std::move(fn);
  }
  forget();
}

TaskFunction RunnerResolver::function(const std::string& name) {
  std::lock_guard lock(functions_mu_);
  if (auto it = functions_.find(name); it != functions_.end()) return it->second;
  return {};
}

std::string RunnerResolver::key_of(const TaskDefinition& d) {
  return d.capability.empty() ? "@" + d.agent : d.capability + "@" + d.version_range;
}

Runners RunnerResolver::resolve_and_remember(const TaskDefinition& d, Micros at) {
  auto found = resolve(d);
  std::lock_guard lock(resolutions_mu_);
  resolutions_[key_of(d)] = {found, at + 1'000'000};
  return found;
}

std::optional<Runners> RunnerResolver::known(const TaskDefinition& d, Micros at) {
  std::lock_guard lock(resolutions_mu_);
  if (auto it = resolutions_.find(key_of(d)); it != resolutions_.end() && it->second.until > at)
    return it->second.runners;
  return std::nullopt;
}

Runners RunnerResolver::remembered(const TaskDefinition& d, Micros at) {
  auto found = known(d, at);
  return found ? std::move(*found) : Runners{};
}

void RunnerResolver::forget() {
  std::lock_guard lock(resolutions_mu_);
  resolutions_.clear();
}

Micros RunnerResolver::rate_wait(const TaskDefinition& d) {
  if (d.capability.empty() || !options_.cache) return 0;
  const auto it = options_.capability_rate_limits.find(d.capability);
  if (it == options_.capability_rate_limits.end()) return 0;
  const auto r =
      options_.cache->take("engine-rate:" + d.capability, it->second.per_second, it->second.burst);
  return r.allowed ? 0 : std::max<Micros>(1000, r.retry_after.count() * 1000);
}

bool RunnerResolver::rate_limited(const TaskDefinition& d) const {
  return !d.capability.empty() && options_.cache &&
         options_.capability_rate_limits.count(d.capability) > 0;
}

Runners RunnerResolver::resolve(const TaskDefinition& d) {
  std::vector<Agent> agents;
  try {
    if (!d.capability.empty()) {
      CapabilityQuery q;
      q.capability = d.capability;
      q.range = d.version_range;
      q.include_offline = true;
      q.limit = 100;
      for (auto& c : registry_.select(q)) agents.push_back(std::move(c.agent));
    } else {
      const auto slash = d.agent.find('/');
      auto a = registry_.get_by_name(d.agent.substr(0, slash), d.agent.substr(slash + 1));
      if (a.active_version && a.status != AgentStatus::kDisabled) agents.push_back(std::move(a));
    }
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return {};
    throw;
  }
  // Every agent that can run it, but of one kind: all run elsewhere (bus)
  // or all run here, as the first one does.
  Runners out;
  const auto add = [&](const Agent& a, std::string function) {
    if (!out.empty() &&
        out.front().function.starts_with(kBusPrefix) != function.starts_with(kBusPrefix))
      return;
    out.push_back({a.id, std::move(function), a.capacity});
  };
  for (const auto& a : agents) {
    const auto v = registry_.get_version(a.id, *a.active_version);
    const auto spec = ExecutorSpec::parse(v.executor);
    if (spec.kind == ExecutorSpec::Kind::kBus && options_.bus) {
      // Run elsewhere: the "function" is the topic its assignments go to.
      auto topic = spec.target;
      if (topic.empty()) topic = "devcycle.tasks." + (d.capability.empty() ? a.name : d.capability);
      try {
        check_topic(topic, "executor");
      } catch (const Error&) {
        continue;  // not a topic: nobody here can run it
      }
      add(a, std::string(kBusPrefix) + topic);
      continue;
    }
    if (spec.kind == ExecutorSpec::Kind::kProcess && !options_.processes.allow.empty()) {
      // The "function" is the executor itself; its argv is checked when it runs.
      add(a, v.executor);
      continue;
    }
    if (spec.kind != ExecutorSpec::Kind::kInproc) continue;
    const auto& name = spec.target;
    bool known = false;
    {
      std::lock_guard lock(functions_mu_);
      known = functions_.count(name) > 0;
    }
    if (known) add(a, name);
  }
  return out;
}

}  // namespace devcycle::internal
