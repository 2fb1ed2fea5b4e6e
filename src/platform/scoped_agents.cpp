// The authorizing facade over the registry and the workflow catalog.
#include "devcycle/common/error.h"
#include "devcycle/platform/platform.h"
#include "platform/scoped_refs.h"

namespace devcycle {

using internal::ref;

using internal::agent_ref;

std::vector<AgentType> ScopedAgents::list_types() {
  authorize(who_, Action::kRead, ref(Resource::kAgentType));
  return platform_->registry().list_types();
}

AgentType ScopedAgents::get_type(std::string_view name) {
  authorize(who_, Action::kRead, ref(Resource::kAgentType, std::string(name)));
  return platform_->registry().get_type(name);
}

AgentType ScopedAgents::define_type(const AgentTypeSpec& spec) {
  authorize(who_, Action::kCreate, ref(Resource::kAgentType));
  return platform_->registry().define_type(spec);
}

AgentPage ScopedAgents::list(const AgentFilter& filter) {
  if (who_.role == Role::kAgent) {
    AgentPage own;  // an agent key sees only its own agent
    if (!who_.agent_id.empty()) own.agents.push_back(get(who_.agent_id));
    return own;
  }
  authorize(who_, Action::kRead, ref(Resource::kAgent));
  return platform_->registry().list(filter);
}

Agent ScopedAgents::get(std::string_view agent_id) {
  auto a = platform_->registry().get(agent_id);
  authorize(who_, Action::kRead, ref(Resource::kAgent, a.id, a.owner));
  return a;
}

Agent ScopedAgents::create(AgentSpec spec) {
  authorize(who_, Action::kCreate, ref(Resource::kAgent));
  spec.owner = who_.id;
  return platform_->registry().create(spec);
}

Agent ScopedAgents::update(std::string_view agent_id, const AgentUpdate& update) {
  auto& registry = platform_->registry();
  const auto a = get(agent_id);
  authorize(who_, Action::kUpdate, agent_ref(registry, a));
  if (update.shared && who_.role != Role::kAdmin) {
    throw Error(ErrorCode::kPermissionDenied,
                "shared: only an admin may share an agent with every owner's runs");
  }
  return registry.update(a.id, update);
}

void ScopedAgents::remove(std::string_view agent_id) {
  auto& registry = platform_->registry();
  const auto a = get(agent_id);
  authorize(who_, Action::kDelete, agent_ref(registry, a));
  registry.remove(a.id);
}

std::vector<AgentVersion> ScopedAgents::versions(std::string_view agent_id) {
  return platform_->registry().versions(get(agent_id).id);
}

AgentVersion ScopedAgents::get_version(std::string_view agent_id, std::string_view version) {
  return platform_->registry().get_version(get(agent_id).id, version);
}

AgentVersion ScopedAgents::add_version(std::string_view agent_id, const AgentVersionSpec& spec) {
  const auto a = get(agent_id);
  auto target = ref(Resource::kAgent, a.id, a.owner);
  target.runs_code = internal::runs_code(spec.executor);
  authorize(who_, Action::kUpdate, target);
  return platform_->registry().add_version(a.id, spec);
}

namespace {

// Deploy and rollback alike: the version that becomes active decides whether
// this is an admin's change, checked in the transaction that activates it.
DeployOptions activation(const Principal& who, bool force) {
  DeployOptions o;
  o.actor = who.id;
  o.force = force;
  o.check = [who](const Agent& a, const AgentVersion& v) {
    auto target = ref(Resource::kAgent, a.id, a.owner);
    target.runs_code = internal::runs_code(v.executor);
    authorize(who, Action::kUpdate, target);
  };
  return o;
}

}  // namespace

Deployment ScopedAgents::deploy(std::string_view agent_id, std::string_view version, bool force) {
  return platform_->registry().deploy(get(agent_id).id, version, activation(who_, force));
}

Deployment ScopedAgents::rollback(std::string_view agent_id, std::optional<std::string> to_version,
                                  bool force) {
  return platform_->registry().rollback(get(agent_id).id, std::move(to_version),
                                        activation(who_, force));
}

std::vector<Deployment> ScopedAgents::deployments(std::string_view agent_id) {
  return platform_->registry().deployments(get(agent_id).id);
}

CompatibilityReport ScopedAgents::check_compatibility(std::string_view agent_id,
                                                      std::string_view version) {
  return platform_->registry().check_compatibility(get(agent_id).id, version);
}

std::vector<AgentCandidate> ScopedAgents::select(const CapabilityQuery& query) {
  authorize(who_, Action::kRead, ref(Resource::kAgent));
  return platform_->registry().select(query);
}

Agent ScopedAgents::acting_as(std::string_view agent_id) {
  const auto a = get(agent_id);
  // Acting as an agent that runs code is an admin's (or its own key's) to do.
  authorize(who_, Action::kExecute, agent_ref(platform_->registry(), a));
  return a;
}

void ScopedAgents::check_watch_all() {
  authorize(who_, Action::kRead, ref(Resource::kAgent, "*", "*"));
}

Agent ScopedAgents::heartbeat(std::string_view agent_id, int load) {
  return platform_->registry().heartbeat(acting_as(agent_id).id, load);
}

// --- workflows ---

std::vector<WorkflowSummary> ScopedWorkflows::list() {
  authorize(who_, Action::kRead, ref(Resource::kWorkflow));
  return platform_->workflows().list();
}

StoredWorkflow ScopedWorkflows::create(std::string_view definition_json) {
  authorize(who_, Action::kCreate, ref(Resource::kWorkflow));
  // A new version of an existing workflow is its owner's to add: checked in
  // the transaction that stores it, so a race to create a new name leaves
  // the loser refused, not the owner of version 2.
  const std::string name = internal::definition_name(definition_json).value_or("");
  return platform_->workflows().create(
      definition_json, who_.id, [&](const std::string& existing_owner) {
        authorize(who_, Action::kUpdate, ref(Resource::kWorkflow, name, existing_owner));
      });
}

DefinitionReport ScopedWorkflows::validate(std::string_view definition_json) {
  authorize(who_, Action::kRead, ref(Resource::kWorkflow));
  return validate_definition(definition_json, &platform_->registry()).second;
}

StoredWorkflow ScopedWorkflows::get(std::string_view name, std::optional<int> version) {
  authorize(who_, Action::kRead, ref(Resource::kWorkflow, std::string(name)));
  return platform_->workflows().get(name, version);
}

std::vector<StoredWorkflow> ScopedWorkflows::versions(std::string_view name) {
  authorize(who_, Action::kRead, ref(Resource::kWorkflow, std::string(name)));
  auto out = platform_->workflows().versions(name);
  if (out.empty())
    throw Error(ErrorCode::kNotFound, "workflow \"" + std::string(name) + "\" not found");
  return out;
}

}  // namespace devcycle
