// The authorizing facade: what one principal may do, and nothing else.
//
// Platform::as(principal) returns a Scoped whose handles perform each
// operation only when the authorization matrix (authz.h, the table in
// docs/security.md) allows it for that principal. An object the principal
// may not read is Error{kNotFound}; one it may read but not change is
// Error{kPermissionDenied} — in both cases nothing has changed. The reference
// server calls nothing else for its routes, and bindings expose this API to
// programs that act for users.
//
// Where the check happens: owners never change (agents, workflows, runs,
// tasks, secrets, keys), so a check against the owner read before the action
// is the same as one inside it; where mutable state decides — the version a
// deploy or rollback makes active, whether a secret exists yet — the check
// runs inside the transaction that acts (DeployOptions::check,
// SecretStore::put(name, value, principal)). Read results pass through
// SecretStore::redact (errors, outputs, log lines).
//
// The unscoped parts of Platform (registry(), engine(), ...) stay for trusted
// in-process use — tests, tools, the engine's own work — and check nothing.
//
// Thread-safety: a Scoped and its handles are small values holding the
// Platform by reference (it must outlive them) and a copy of the principal;
// use them from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/api_keys.h"
#include "devcycle/auth/audit.h"
#include "devcycle/auth/auth.h"
#include "devcycle/auth/authz.h"
#include "devcycle/auth/secrets.h"
#include "devcycle/auth/sessions.h"
#include "devcycle/messaging/agent_messages.h"
#include "devcycle/messaging/messaging.h"
#include "devcycle/registry/registry.h"
#include "devcycle/workflow/engine.h"
#include "devcycle/workflow/workflow.h"

namespace devcycle {

class Platform;

// A platform and the principal every call of a handle is made for.
class ScopedBase {
 public:
  ScopedBase(Platform& platform, Principal who) : platform_(&platform), who_(std::move(who)) {}
  const Principal& principal() const noexcept { return who_; }

 protected:
  Platform* platform_;
  Principal who_;
};

// Agent types, agents, their versions and deployments.
class ScopedAgents : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  std::vector<AgentType> list_types();
  AgentType get_type(std::string_view name);
  AgentType define_type(const AgentTypeSpec& spec);  // admins

  // An agent key sees only its own agent.
  AgentPage list(const AgentFilter& filter = {});
  Agent get(std::string_view agent_id);
  // The principal becomes the owner, whatever spec.owner says.
  Agent create(AgentSpec spec);
  // Changing an agent whose active version runs code, and sharing one, is
  // for admins.
  Agent update(std::string_view agent_id, const AgentUpdate& update);
  void remove(std::string_view agent_id);
  std::vector<AgentVersion> versions(std::string_view agent_id);
  AgentVersion get_version(std::string_view agent_id, std::string_view version);
  // A version that runs code (process:, http:) is an admin's to add.
  AgentVersion add_version(std::string_view agent_id, const AgentVersionSpec& spec);
  // The version that becomes active decides, inside the transaction.
  Deployment deploy(std::string_view agent_id, std::string_view version, bool force = false);
  Deployment rollback(std::string_view agent_id, std::optional<std::string> to_version,
                      bool force = false);
  std::vector<Deployment> deployments(std::string_view agent_id);
  CompatibilityReport check_compatibility(std::string_view agent_id, std::string_view version);
  std::vector<AgentCandidate> select(const CapabilityQuery& query);
  // Acting as the agent (its own key, its owner, an admin).
  Agent heartbeat(std::string_view agent_id, int load = 0);
  // The agent, when the principal may act as it; otherwise the refusal.
  Agent acting_as(std::string_view agent_id);
  // Throws unless the principal may follow every agent's events.
  void check_watch_all();
};

// The workflow catalog.
class ScopedWorkflows : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  std::vector<WorkflowSummary> list();
  // A new version of an existing name is its owner's (or an admin's).
  StoredWorkflow create(std::string_view definition_json);
  DefinitionReport validate(std::string_view definition_json);
  StoredWorkflow get(std::string_view name, std::optional<int> version = std::nullopt);
  std::vector<StoredWorkflow> versions(std::string_view name);
};

// Runs and tasks, and the remote agents' side of tasks.
class ScopedRuns : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  // Creating a run and executing its workflow; the principal becomes the
  // run's owner, whatever request.owner says.
  Run start(StartRun request);
  RunPage list(const RunFilter& filter = {});
  RunDetail get(std::string_view run_id);  // errors and outputs redacted
  Run cancel(std::string_view run_id);
  Run pause(std::string_view run_id);
  Run resume(std::string_view run_id);
  Run retry(std::string_view run_id);
  bool signal(std::string_view run_id, std::string_view name, std::string_view payload = "{}");
  std::vector<Artifact> artifacts(std::string_view run_id);
  Artifact artifact(std::string_view run_id, std::string_view artifact_id);
  TaskRun task(std::string_view task_id);  // redacted
  TaskRun cancel_task(std::string_view task_id);
  TaskLogPage logs(std::string_view task_id, std::optional<int> attempt = std::nullopt,
                   int limit = 100, std::string page_token = {});  // redacted
  // Throws unless the principal may follow every run's events.
  void check_watch_all();

  // Remote agents: acting as the agent (and, for a task, as the agent that
  // holds it). The engine adds its own rule: only the owner's runs, unless
  // the agent is shared.
  std::vector<RemoteTask> claim(std::string_view agent_id, int max,
                                std::chrono::milliseconds lease);
  bool extend(std::string_view task_id, int attempt, std::string_view lease_owner,
              std::chrono::milliseconds lease);
  bool log(std::string_view task_id, int attempt, std::string_view lease_owner, LogLevel level,
           std::string_view message);
  bool complete(std::string_view task_id, int attempt, std::string_view lease_owner, bool ok,
                std::string_view output_or_error, bool retryable = true);

 private:
  RunDetail readable(std::string_view run_id);
  TaskRun held_task(std::string_view task_id);
};

// Secrets: names and owners are readable, values never.
class ScopedSecrets : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  std::vector<SecretInfo> list();
  SecretInfo info(std::string_view name);
  // Creates (owned by the principal) or replaces the value; never transfers.
  SecretInfo put(std::string_view name, std::string_view value, bool* created = nullptr);
  void remove(std::string_view name);
};

// Direct messages between agents, acting as one of them; the bus's dead
// letters (admins).
class ScopedMessages : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  DirectMessage send(std::string_view from_agent, std::string_view to_agent,
                     std::string_view message_type, std::string_view payload_json);
  std::vector<DirectMessage> receive(std::string_view agent_id, int limit = 100);
  DirectMessage get(std::string_view agent_id, std::string_view message_id);
  DirectMessage mark_read(std::string_view agent_id, std::string_view message_id);
  std::vector<DeadLetter> dead_letters(std::string_view topic, std::string_view group,
                                       int limit = 100, std::int64_t after_offset = -1);
  int redrive(std::string_view topic, std::string_view group,
              const std::vector<std::string>& ids = {});
};

// API keys: each user's own; admins anyone's.
class ScopedApiKeys : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  std::vector<ApiKey> list(std::optional<std::string> owner = std::nullopt);
  // An agent key must act as an agent the principal may change.
  CreatedApiKey create(const NewApiKey& key);
  ApiKey get(std::string_view key_id);
  ApiKey revoke(std::string_view key_id);
};

// Accounts: admins manage them; everyone reads and changes their own
// password; sessions are as private as their user.
class ScopedUsers : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  UserPage list(const UserFilter& filter = {});
  User create(const NewUser& user);
  User get(std::string_view user_id);
  // Role and activation (admins; never one's own deactivation). Each ends
  // what the old state allowed (Identity).
  User update(std::string_view user_id, std::optional<Role> role, std::optional<bool> active);
  User change_password(std::string_view current_password, std::string_view new_password);
  // Admins: a temporary password the user must change at the next login;
  // deleting an account (never one's own), whose objects keep a tombstone
  // owner.
  User reset_password(std::string_view user_id, std::string_view new_password);
  void remove(std::string_view user_id);
  std::vector<Session> sessions();
  Session revoke_session(std::string_view session_id);
};

// The audit log (admins).
class ScopedAudit : public ScopedBase {
 public:
  using ScopedBase::ScopedBase;
  AuditPage query(const AuditFilter& filter = {});
};

class Scoped : public ScopedBase {
 public:
  Scoped(Platform& platform, Principal who) : ScopedBase(platform, std::move(who)) {}
  ScopedAgents agents() const { return {*platform_, who_}; }
  ScopedWorkflows workflows() const { return {*platform_, who_}; }
  ScopedRuns runs() const { return {*platform_, who_}; }
  ScopedSecrets secrets() const { return {*platform_, who_}; }
  ScopedMessages messages() const { return {*platform_, who_}; }
  ScopedApiKeys api_keys() const { return {*platform_, who_}; }
  ScopedUsers users() const { return {*platform_, who_}; }
  ScopedAudit audit() const { return {*platform_, who_}; }
};

}  // namespace devcycle
