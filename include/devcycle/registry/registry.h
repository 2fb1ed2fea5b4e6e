// The agent registry: who can do the work.
//
// An *agent* is a registered worker (a code generator, a test runner, a
// deployer, a human reviewer, a model endpoint). Its *type* declares a JSON
// Schema for its configuration. It has many immutable *versions*, each
// offering *capabilities* (codegen@2.1.0) and declaring *requirements* on the
// capabilities of others (lint@^1.0). Exactly one version at a time is
// *deployed* (active); deploying and rolling back are recorded in a history.
// Agents report *heartbeats* with their load; the monitor marks agents
// offline after missed beats. See docs/concepts.md.
//
// Every change is one database transaction; subscribers hear of it after it
// committed. Bad input is Error{kInvalidArgument} naming the field, and
// changes nothing.
//
// Thread-safety: a Registry may be used from any number of threads.
// Subscribers are called on the thread that made the change, after COMMIT,
// and must not block or call back into the Registry's writers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/common/clock.h"
#include "devcycle/common/subscription.h"
#include "devcycle/registry/semver.h"
#include "devcycle/store/database.h"

namespace devcycle {

class SecretStore;

enum class AgentStatus { kOffline, kOnline, kBusy, kDisabled };
std::string_view to_string(AgentStatus status) noexcept;
// Throws Error{kInvalidArgument} naming `field` for an unknown status.
AgentStatus parse_agent_status(std::string_view text, std::string_view field = "status");

// codegen@2.1.0 — a named ability at a version.
struct Capability {
  std::string name;
  Version version;
  // Parses "name@version". Throws Error{kInvalidArgument} naming `field`.
  static Capability parse(std::string_view text, std::string_view field = "capability");
  std::string to_string() const { return name + "@" + version.to_string(); }
};

// lint@^1.0 — a capability that an agent version needs from other agents.
struct Requirement {
  std::string name;
  VersionRange range;
  // Parses "name@range" or "name" (any version). Throws Error{kInvalidArgument}.
  static Requirement parse(std::string_view text, std::string_view field = "requirement");
  std::string to_string() const { return name + "@" + range.to_string(); }
};

struct AgentTypeSpec {
  std::string name;                  // [a-z0-9][a-z0-9._-]*, at most 64
  std::string description;           // at most 4096 bytes of UTF-8
  std::string config_schema = "{}";  // JSON Schema (see json_schema.h)
};

struct AgentType {
  std::string name;
  std::string description;
  std::string config_schema;
  Micros created_at = 0;
};

struct AgentSpec {
  std::string owner;                 // who owns it; 1-128 bytes
  std::string name;                  // unique per owner; [A-Za-z0-9][A-Za-z0-9._-]*, at most 128
  std::string type;                  // a defined AgentType
  std::string description;           // at most 4096 bytes
  std::string configuration = "{}";  // JSON object valid for the type's schema, at most 64 KiB
  std::map<std::string, std::string>
      labels;        // at most 64; keys [a-z0-9._/-]{1,63}, values at most 256 bytes
  int capacity = 1;  // tasks it runs at once, 1-10000
};

// Fields left empty are not changed.
struct AgentUpdate {
  std::optional<std::string> description;
  std::optional<std::string> configuration;
  std::optional<std::map<std::string, std::string>> labels;
  std::optional<int> capacity;
  std::optional<bool> disabled;  // true: kDisabled; false: back to kOffline until a heartbeat
  std::optional<bool> shared;    // see Agent::shared; only an admin may set it (docs/security.md)
  // When set, the update applies only if the agent's revision still equals
  // it; otherwise Error{kConflict}.
  std::optional<std::int64_t> expected_revision;
};

struct Agent {
  std::string id;  // uuid v7
  std::string owner;
  std::string name;
  std::string type;
  std::string description;
  AgentStatus status = AgentStatus::kOffline;
  std::string configuration;
  std::map<std::string, std::string> labels;
  int capacity = 1;
  int load = 0;
  std::optional<std::string> active_version;
  std::optional<Micros> last_heartbeat;
  std::int64_t revision = 1;  // grows with every change
  // Whether runs of every owner may use it; otherwise only its owner's runs
  // are given to it (Engine::claim_remote). Set by an admin.
  bool shared = false;
  Micros created_at = 0;
  Micros updated_at = 0;
};

struct AgentVersionSpec {
  std::string version;                    // semver, e.g. "2.1.0"
  std::vector<std::string> capabilities;  // "codegen@2.1.0", at most 100
  std::vector<std::string> requirements;  // "lint@^1.0", at most 100
  std::string executor;  // how the engine runs it, e.g. "inproc:codegen"; at most 1024
  std::string notes;     // release notes, at most 4096 bytes
};

struct AgentVersion {
  std::string agent_id;
  Version version;
  std::vector<Capability> capabilities;
  std::vector<Requirement> requirements;
  std::string executor;
  std::string notes;
  Micros created_at = 0;
};

struct Deployment {
  std::string id;
  std::string agent_id;
  std::string version;
  std::optional<std::string> previous_version;
  std::string action;  // "deploy" or "rollback"
  std::string actor;
  Micros at = 0;
};

struct DeployOptions {
  std::string actor = "system";
  // Deploy even when requirements are unmet (the report still goes to the log).
  bool force = false;
  // Called with the agent and the version about to become active, inside the
  // transaction that activates it (deploy and rollback alike); what it throws
  // refuses the change. The authorizing facade checks the caller here.
  std::function<void(const Agent&, const AgentVersion&)> check;
};

struct AgentFilter {
  std::optional<std::string> owner;
  std::optional<std::string> type;
  std::optional<AgentStatus> status;
  std::optional<std::string> capability;      // offered by the active version
  std::map<std::string, std::string> labels;  // all must match
  int limit = 50;                             // 1-1000
  std::string page_token;                     // from AgentPage::next_page_token
};

struct AgentPage {
  std::vector<Agent> agents;    // in creation order
  std::string next_page_token;  // empty on the last page
};

struct CapabilityQuery {
  std::string capability;
  std::string range = "*";
  int limit = 10;  // 1-1000
  bool include_offline = false;
};

struct AgentCandidate {
  Agent agent;
  Capability capability;  // as the active version offers it
};

struct CompatibilityProblem {
  enum class Kind {
    kUnmet,     // no other deployed agent offers the capability
    kConflict,  // it is offered, but only at versions outside the range
  };
  Kind kind;
  std::string requirement;  // "lint@^1.0"
  std::string message;
};

struct CompatibilityReport {
  std::vector<CompatibilityProblem> problems;
  bool compatible() const noexcept { return problems.empty(); }
  // Every problem on one line, "; "-separated.
  std::string describe() const;
};

struct AgentEvent {
  enum class Kind { kCreated, kUpdated, kDeleted, kStatusChanged, kDeployed, kRolledBack };
  Kind kind;
  std::string agent_id;
  std::string owner;
  std::string name;
  AgentStatus old_status = AgentStatus::kOffline;
  AgentStatus new_status = AgentStatus::kOffline;
  std::string version;  // for kDeployed / kRolledBack
  Micros at = 0;
};
std::string_view to_string(AgentEvent::Kind kind) noexcept;

struct RegistryOptions {
  std::shared_ptr<Clock> clock = SystemClock::instance();
  // An online or busy agent whose last heartbeat is older than this is
  // marked offline by sweep_offline().
  std::chrono::microseconds heartbeat_timeout = std::chrono::seconds(30);
  // Quota: agents one owner may have; create() beyond it is
  // Error{kResourceExhausted}. 0: no limit.
  int max_agents_per_owner = 0;
  // When given (it must outlive the registry): a configuration that names a
  // secret its agent's owner may not use is refused (kPermissionDenied).
  SecretStore* secrets = nullptr;
};

class Registry {
 public:
  // The registry's schema; Platform applies it, or pass it in
  // DatabaseOptions::migrations, before constructing a Registry.
  static std::vector<Migration> migrations();

  // Applies migrations() to `db` (idempotent). `db` must outlive the Registry.
  Registry(Database& db, RegistryOptions options = {});
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Types. define_type throws kAlreadyExists when the name is taken.
  AgentType define_type(const AgentTypeSpec& spec);
  AgentType get_type(std::string_view name);
  std::vector<AgentType> list_types();

  // Agents. Unknown ids are Error{kNotFound}.
  Agent create(const AgentSpec& spec);
  Agent get(std::string_view agent_id);
  Agent get_by_name(std::string_view owner, std::string_view name);
  AgentPage list(const AgentFilter& filter = {});
  Agent update(std::string_view agent_id, const AgentUpdate& update);
  // Deletes the agent with its versions, labels and deployment history.
  void remove(std::string_view agent_id);

  // Versions are immutable; adding an existing one is kAlreadyExists.
  AgentVersion add_version(std::string_view agent_id, const AgentVersionSpec& spec);
  AgentVersion get_version(std::string_view agent_id, std::string_view version);
  // Newest (highest precedence) first.
  std::vector<AgentVersion> versions(std::string_view agent_id);

  // Makes `version` the active one. Unless options.force, refuses with
  // Error{kInvalidArgument} listing every unmet or conflicting requirement.
  Deployment deploy(std::string_view agent_id, std::string_view version,
                    const DeployOptions& options = {});
  // Re-activates the version that was active before the current one, or
  // `to_version` when given. kInvalidArgument when there is nothing to go back to.
  Deployment rollback(std::string_view agent_id,
                      std::optional<std::string> to_version = std::nullopt,
                      const DeployOptions& options = {});
  // Newest first.
  std::vector<Deployment> deployments(std::string_view agent_id);

  // Agents whose active version offers `query.capability` within its range:
  // online agents with free capacity first (least loaded first), then busy
  // ones, then (when asked) offline ones. Disabled agents never.
  std::vector<AgentCandidate> select(const CapabilityQuery& query);
  // Checks a version's requirements against the deployed agents (other than
  // this one), reporting every problem at once.
  CompatibilityReport check_compatibility(std::string_view agent_id, std::string_view version);
  // Agents whose active version requires `capability`.
  std::vector<Agent> dependents(std::string_view capability);

  // Records a heartbeat: online, or busy when load >= capacity. A disabled
  // agent stays disabled. load must be 0-1000000.
  Agent heartbeat(std::string_view agent_id, int load = 0);
  // Marks offline every online or busy agent whose heartbeat is older than
  // the timeout; returns them. The AgentMonitor calls this periodically.
  std::vector<Agent> sweep_offline();

  Subscription subscribe(std::function<void(const AgentEvent&)> handler);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Calls registry.sweep_offline() every `interval` on its own thread until
// destroyed.
class AgentMonitor {
 public:
  AgentMonitor(Registry& registry, std::chrono::milliseconds interval);
  ~AgentMonitor();
  AgentMonitor(const AgentMonitor&) = delete;
  AgentMonitor& operator=(const AgentMonitor&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
