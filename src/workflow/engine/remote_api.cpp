// Remote agents (executor "remote") working over the API: they claim ready
// tasks they may serve, extend their leases, log, and complete, each call
// fenced by the attempt's lease and by who may serve the run's owner.
#include <algorithm>

#include "devcycle/common/uuid.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::Claim;
using internal::may_serve;
using internal::RunProgress;
using internal::RunStore;
using internal::task_not_found;
using internal::us;

void Engine::Impl::check_remote_serves(const TaskRun& task) {
  if (task.agent_id.empty()) return;  // not claimed: the fence refuses it
  const auto agent = registry.get(task.agent_id);
  if (!may_serve(agent, owner_of_run(task.run_id))) {
    throw Error(ErrorCode::kPermissionDenied,
                "agent \"" + agent.name +
                    "\" may not work on this run: it belongs to another owner and the agent is "
                    "not shared");
  }
}

std::string Engine::Impl::owner_of_run(const std::string& run_id) {
  auto run = db.read([&](Txn& t) { return RunStore(t).find_run(run_id); });
  if (!run) throw Error(ErrorCode::kNotFound, "run \"" + run_id + "\" not found");
  return run->owner;
}

namespace {

// Whether the agent's deployed version offers what the task asks for.
bool serves(const Agent& agent, const AgentVersion& version, const TaskDefinition& d) {
  if (!d.agent.empty()) return d.agent == agent.owner + "/" + agent.name;
  if (d.capability.empty()) return false;
  const auto range = VersionRange::parse(d.version_range);
  return std::any_of(
      version.capabilities.begin(), version.capabilities.end(),
      [&](const Capability& c) { return c.name == d.capability && range.contains(c.version); });
}

void check_remote_call(std::string_view task_id, int attempt, std::string_view lease_owner) {
  if (!is_uuid(task_id)) throw task_not_found(task_id);
  if (attempt < 1) throw Error(ErrorCode::kInvalidArgument, "attempt: must be at least 1");
  if (lease_owner.empty() || lease_owner.size() > 256)
    throw Error(ErrorCode::kInvalidArgument, "lease_owner: must be 1-256 bytes");
}

}  // namespace

std::vector<RemoteTask> Engine::claim_remote(std::string_view agent_id, int max,
                                             std::chrono::milliseconds lease) {
  if (max < 1 || max > 100) throw Error(ErrorCode::kInvalidArgument, "max: must be 1..100");
  if (lease < std::chrono::seconds(1) || lease > std::chrono::hours(1))
    throw Error(ErrorCode::kInvalidArgument, "lease: must be between 1 s and 1 h");
  // Registry reads happen here, outside the write.
  const auto agent = impl_->registry.get(agent_id);
  if (!agent.active_version || agent.status == AgentStatus::kDisabled) return {};
  const auto version = impl_->registry.get_version(agent.id, *agent.active_version);
  if (ExecutorSpec::parse(version.executor).kind != ExecutorSpec::Kind::kRemote) {
    throw Error(ErrorCode::kInvalidArgument,
                "agent \"" + agent.name + "\": its deployed version " +
                    version.version.to_string() + " has executor \"" + version.executor +
                    "\", not \"remote\"; only remote agents claim tasks over the API");
  }
  const Micros at = impl_->now();
  const std::string owner = "remote:" + agent.id;
  std::vector<EngineEvent> events;
  std::vector<std::string> owners;  // of each claimed task's run
  auto claimed = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    events.clear();
    std::vector<RemoteTask> out;
    owners.clear();
    const int running = store.running_by_agent()[agent.id];
    const int room = std::min(max, agent.capacity - running);
    if (room <= 0) return out;
    for (const auto& row : store.ready_tasks(at, us(impl_->options.aging_step), 500)) {
      if (static_cast<int>(out.size()) >= room) break;
      const auto def = impl_->definition(t, impl_->workflow_of(store, row.task.run_id));
      const auto& d = RunProgress::definition_of(*def, row.task.definition_id);
      if (!serves(agent, version, d) || impl_->resolver.rate_limited(d)) continue;
      // A remote agent runs code its owner controls: it gets the inputs (and
      // secrets) of its owner's runs only, unless an admin shared it.
      const auto run = store.find_run(row.task.run_id);
      if (!run || !may_serve(agent, run->owner)) continue;  // purged meanwhile, or not for it
      const auto& run_owner = run->owner;
      std::optional<Micros> close_deadline;
      if (d.timeouts.start_to_close) close_deadline = at + us(*d.timeouts.start_to_close);
      const Micros until =
          close_deadline ? std::min(at + us(lease), *close_deadline) : at + us(lease);
      if (!store.claim(row, owner, agent.id, at, until, close_deadline)) continue;
      RemoteTask r{row.task.id, row.task.run_id, row.task.key, row.task.attempt + 1,
                   owner,       row.task.input,  "",           until};
      r.idempotency_key = r.run_id + "/" + r.task_key + "/" + std::to_string(r.attempt);
      events.push_back({EngineEvent::Kind::kTaskStarted, r.run_id, r.task_id, r.task_key, r.attempt,
                        "running", "", at, ""});
      out.push_back(std::move(r));
      owners.push_back(run_owner);
    }
    impl_->stage(t, events);
    return out;
  });
  impl_->emit(events);
  std::vector<RemoteTask> out;
  for (std::size_t i = 0; i < claimed.size(); ++i) {
    auto& r = claimed[i];
    // The values of the secrets it names, as an in-process function gets them.
    if (impl_->options.secrets && r.input.find("[secret:") != std::string::npos) {
      try {
        r.input = impl_->options.secrets->resolve(r.task_id, r.input, owners[i]);
      } catch (const Error& e) {
        complete_remote(r.task_id, r.attempt, r.lease_owner, false, e.what(), false);
        continue;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool Engine::extend_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                           std::chrono::milliseconds lease) {
  check_remote_call(task_id, attempt, lease_owner);
  if (lease < std::chrono::seconds(1) || lease > std::chrono::hours(1))
    throw Error(ErrorCode::kInvalidArgument, "lease: must be between 1 s and 1 h");
  impl_->check_remote_serves(get_task(task_id));
  const Micros at = impl_->now();
  return impl_->db.write([&](Txn& t) {
    RunStore store(t);
    const auto row = store.leased(task_id, attempt, lease_owner, at);
    if (!row) return false;
    const Micros until =
        row->close_deadline ? std::min(at + us(lease), *row->close_deadline) : at + us(lease);
    return store.extend_lease(task_id, attempt, lease_owner, at, until);
  });
}

bool Engine::log_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                        LogLevel level, std::string_view message) {
  check_remote_call(task_id, attempt, lease_owner);
  impl_->check_remote_serves(get_task(task_id));
  TaskLogLine line;
  line.id = new_uuid_v7();
  line.task_id = task_id;
  line.attempt = attempt;
  line.level = level;
  line.message = impl_->redact(message.substr(0, 64 * 1024));
  line.at = impl_->now();
  std::string run_id, task_key;
  const bool stored = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    const auto row = store.leased(task_id, attempt, lease_owner, line.at);
    if (!row) return false;
    run_id = row->task.run_id;
    task_key = row->task.key;
    store.insert_log(line);
    return true;
  });
  if (stored) {
    impl_->emit({{EngineEvent::Kind::kTaskLog, run_id, line.task_id, task_key, line.attempt,
                  std::string(to_string(line.level)), "", line.at, line.message}});
  }
  return stored;
}

bool Engine::complete_remote(std::string_view task_id, int attempt, std::string_view lease_owner,
                             bool ok, std::string_view output_or_error, bool retryable) {
  check_remote_call(task_id, attempt, lease_owner);
  if (output_or_error.size() > 16 * 1024 * 1024)
    throw Error(ErrorCode::kInvalidArgument, "output: larger than 16 MiB");
  const auto task = get_task(task_id);
  impl_->check_remote_serves(task);
  Claim c;
  c.task_id = task.id;
  c.run_id = task.run_id;
  c.task_key = task.key;
  c.workflow_id = impl_->workflow_of(task.run_id);
  c.agent_id = task.agent_id;
  c.lease_owner = lease_owner;
  c.attempt = attempt;
  c.started_at = task.started_at.value_or(0);
  bool recorded = false;
  auto next =
      impl_->complete(c, ok, ok ? std::string(output_or_error) : impl_->redact(output_or_error),
                      retryable, &recorded);
  if (next) {
    // A successor this engine runs in-process, claimed with the completion.
    if (impl_->options.workers == 0) {
      impl_->execute(*next);
    } else {
      {
        std::lock_guard lock(impl_->queue_mu);
        impl_->queue.push_back(std::move(*next));
      }
      impl_->queue_cv.notify_one();
    }
  }
  impl_->notify_scheduler();
  return recorded;
}

}  // namespace devcycle
