// Authorization: who may do what to which object.
//
// The model (DESIGN's authorization section): every object has an owner.
// Admins do everything. Developers read everything and change what they own.
// Viewers read everything and change nothing. Agent principals (API keys with
// the agent role) see and act on only their own agent and the tasks of their
// capabilities. Creating or changing an agent that runs commands or calls
// URLs is admin-only. Users, API keys and the audit log are private: others'
// are invisible to non-admins.
//
// An object the caller may not read is Error{kNotFound} — its existence is
// not revealed; one it may read but not change is Error{kPermissionDenied}.
// The full matrix is the table in docs/security.md, which a test checks
// against this code cell by cell.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/auth.h"

namespace devcycle {

enum class Resource {
  kAgent,
  kAgentType,
  kWorkflow,
  kRun,
  kTask,
  kUser,
  kApiKey,
  kSecret,
  kAuditLog
};
// kExecute: start a workflow, act as an agent (heartbeat), claim and
// complete a task. kUpdate: change configuration or state by hand.
enum class Action { kRead, kCreate, kUpdate, kDelete, kExecute };
std::string_view to_string(Resource r) noexcept;
std::string_view to_string(Action a) noexcept;

struct Principal {
  std::string id;  // user id (for API keys: the key's owner)
  Role role = Role::kViewer;
  // Agent principals: the capabilities their key is scoped to (empty: none).
  std::vector<std::string> capabilities;
  // Agent principals: the id of the agent they act as.
  std::string agent_id;
  // Set by Identity when an admin reset the user's password: Platform::as
  // refuses everything until it is changed. A principal an embedder makes
  // itself is trusted as made.
  bool must_change_password = false;
};

struct ObjectRef {
  Resource resource;
  std::string id;     // the object's id ("" when creating)
  std::string owner;  // its owner's user id ("" when creating: the caller becomes the owner)
  // Agents: whether it runs commands or calls URLs (process / http executors).
  bool runs_code = false;
  // Tasks: the capability they need.
  std::string capability;
};

enum class Decision { kAllow, kNotFound, kPermissionDenied };
std::string_view to_string(Decision d) noexcept;

Decision decide(const Principal& who, Action action, const ObjectRef& object);

// decide(), throwing Error{kNotFound} or Error{kPermissionDenied} naming the
// resource, the action and the role (never the object's owner).
void authorize(const Principal& who, Action action, const ObjectRef& object);

}  // namespace devcycle
