// The authorizing facade over runs, tasks and the remote agents' side of
// tasks.
#include "devcycle/common/error.h"
#include "devcycle/platform/platform.h"
#include "platform/scoped_refs.h"

namespace devcycle {

using internal::ref;

namespace {

// Text that may quote what a task saw (errors) or what an agent echoed
// (outputs) never carries a secret's value out.
std::string redacted(Platform& p, std::string text) {
  auto* secrets = p.secrets();
  return secrets && !text.empty() ? secrets->redact(text) : text;
}

void redact(Platform& p, TaskRun& t) {
  // An input rendered from an upstream output may carry what an agent echoed.
  t.input = redacted(p, std::move(t.input));
  t.error = redacted(p, std::move(t.error));
  t.output = redacted(p, std::move(t.output));
  for (auto& a : t.attempts) a.error = redacted(p, std::move(a.error));
}

}  // namespace

RunDetail ScopedRuns::readable(std::string_view run_id) {
  auto d = platform_->engine().get(run_id);
  authorize(who_, Action::kRead, ref(Resource::kRun, d.run.id, d.run.owner));
  return d;
}

Run ScopedRuns::start(StartRun request) {
  authorize(who_, Action::kCreate, ref(Resource::kRun));
  // Running a workflow is executing it: its owner's, or an admin's, to do.
  const auto workflow = platform_->workflows().get(request.workflow, request.version);
  authorize(who_, Action::kExecute, ref(Resource::kWorkflow, workflow.name, workflow.owner));
  request.owner = who_.id;
  return platform_->engine().start(request);
}

RunPage ScopedRuns::list(const RunFilter& filter) {
  authorize(who_, Action::kRead, ref(Resource::kRun));
  auto page = platform_->engine().list(filter);
  for (auto& run : page.runs) {
    run.input = redacted(*platform_, std::move(run.input));
    run.error = redacted(*platform_, std::move(run.error));
    run.output = redacted(*platform_, std::move(run.output));
  }
  return page;
}

RunDetail ScopedRuns::get(std::string_view run_id) {
  auto d = readable(run_id);
  d.run.input = redacted(*platform_, std::move(d.run.input));
  d.run.error = redacted(*platform_, std::move(d.run.error));
  d.run.output = redacted(*platform_, std::move(d.run.output));
  for (auto& t : d.tasks) redact(*platform_, t);
  return d;
}

namespace {

using RunChange = Run (Engine::*)(std::string_view);

Run change(Platform& p, const Principal& who, const RunDetail& d, RunChange action) {
  authorize(who, Action::kUpdate, ref(Resource::kRun, d.run.id, d.run.owner));
  return (p.engine().*action)(d.run.id);
}

}  // namespace

Run ScopedRuns::cancel(std::string_view run_id) {
  return change(*platform_, who_, readable(run_id), &Engine::cancel);
}
Run ScopedRuns::pause(std::string_view run_id) {
  return change(*platform_, who_, readable(run_id), &Engine::pause);
}
Run ScopedRuns::resume(std::string_view run_id) {
  return change(*platform_, who_, readable(run_id), &Engine::resume);
}
Run ScopedRuns::retry(std::string_view run_id) {
  return change(*platform_, who_, readable(run_id), &Engine::retry);
}

bool ScopedRuns::signal(std::string_view run_id, std::string_view name, std::string_view payload) {
  const auto d = readable(run_id);
  authorize(who_, Action::kUpdate, ref(Resource::kRun, d.run.id, d.run.owner));
  return platform_->engine().signal(d.run.id, name, payload);
}

std::vector<Artifact> ScopedRuns::artifacts(std::string_view run_id) {
  return platform_->engine().artifacts(readable(run_id).run.id);
}

Artifact ScopedRuns::artifact(std::string_view run_id, std::string_view artifact_id) {
  return platform_->engine().artifact(readable(run_id).run.id, artifact_id);
}

TaskRun ScopedRuns::task(std::string_view task_id) {
  auto t = platform_->engine().get_task(task_id);
  const auto owner = platform_->engine().get(t.run_id).run.owner;
  authorize(who_, Action::kRead, ref(Resource::kTask, t.id, owner));
  redact(*platform_, t);
  return t;
}

TaskRun ScopedRuns::cancel_task(std::string_view task_id) {
  const auto t = platform_->engine().get_task(task_id);
  const auto owner = platform_->engine().get(t.run_id).run.owner;
  authorize(who_, Action::kRead, ref(Resource::kTask, t.id, owner));
  authorize(who_, Action::kUpdate, ref(Resource::kTask, t.id, owner));
  return platform_->engine().cancel_task(t.id);
}

TaskLogPage ScopedRuns::logs(std::string_view task_id, std::optional<int> attempt, int limit,
                             std::string page_token) {
  const auto t = task(task_id);
  auto page = platform_->engine().logs(t.id, attempt, limit, std::move(page_token));
  for (auto& line : page.lines) line.message = redacted(*platform_, std::move(line.message));
  return page;
}

void ScopedRuns::check_watch_all() {
  authorize(who_, Action::kRead, ref(Resource::kRun, "*", "*"));
}

// --- remote agents ---

std::vector<RemoteTask> ScopedRuns::claim(std::string_view agent_id, int max,
                                          std::chrono::milliseconds lease) {
  const auto agent = ScopedAgents(*platform_, who_).acting_as(agent_id);
  return platform_->engine().claim_remote(agent.id, max, lease);
}

TaskRun ScopedRuns::held_task(std::string_view task_id) {
  auto t = platform_->engine().get_task(task_id);
  // A task no agent holds is nobody's to act on: not found, as for a stranger.
  if (t.agent_id.empty()) {
    throw Error(ErrorCode::kNotFound, "task \"" + std::string(task_id) + "\" not found");
  }
  ScopedAgents(*platform_, who_).acting_as(t.agent_id);
  return t;
}

bool ScopedRuns::extend(std::string_view task_id, int attempt, std::string_view lease_owner,
                        std::chrono::milliseconds lease) {
  return platform_->engine().extend_remote(held_task(task_id).id, attempt, lease_owner, lease);
}

bool ScopedRuns::log(std::string_view task_id, int attempt, std::string_view lease_owner,
                     LogLevel level, std::string_view message) {
  return platform_->engine().log_remote(held_task(task_id).id, attempt, lease_owner, level,
                                        message);
}

bool ScopedRuns::complete(std::string_view task_id, int attempt, std::string_view lease_owner,
                          bool ok, std::string_view output_or_error, bool retryable) {
  return platform_->engine().complete_remote(held_task(task_id).id, attempt, lease_owner, ok,
                                             output_or_error, retryable);
}

}  // namespace devcycle
