#include "devcycle/auth/authz.h"

#include <algorithm>

#include "devcycle/common/error.h"

namespace devcycle {

std::string_view to_string(Resource r) noexcept {
  switch (r) {
    case Resource::kAgent:
      return "agent";
    case Resource::kAgentType:
      return "agent_type";
    case Resource::kWorkflow:
      return "workflow";
    case Resource::kRun:
      return "run";
    case Resource::kTask:
      return "task";
    case Resource::kUser:
      return "user";
    case Resource::kApiKey:
      return "api_key";
    case Resource::kSecret:
      return "secret";
    case Resource::kAuditLog:
      return "audit_log";
  }
  return "object";
}

std::string_view to_string(Action a) noexcept {
  switch (a) {
    case Action::kRead:
      return "read";
    case Action::kCreate:
      return "create";
    case Action::kUpdate:
      return "update";
    case Action::kDelete:
      return "delete";
    case Action::kExecute:
      return "execute";
  }
  return "act on";
}

std::string_view to_string(Decision d) noexcept {
  switch (d) {
    case Decision::kAllow:
      return "allow";
    case Decision::kNotFound:
      return "hidden";
    case Decision::kPermissionDenied:
      return "denied";
  }
  return "denied";
}

namespace {

// Objects only their owner (and admins) may see.
bool private_resource(Resource r) {
  return r == Resource::kUser || r == Resource::kApiKey || r == Resource::kAuditLog;
}

Decision decide_agent(const Principal& who, Action action, const ObjectRef& o) {
  // An agent key sees its own agent and the tasks of its capabilities; nothing else exists for it.
  if (o.resource == Resource::kAgent && !o.id.empty() && o.id == who.agent_id) {
    // It acts as its agent (heartbeats are kExecute) but never reconfigures it.
    if (action == Action::kRead || action == Action::kExecute) return Decision::kAllow;
    return Decision::kPermissionDenied;
  }
  if (o.resource == Resource::kTask && std::find(who.capabilities.begin(), who.capabilities.end(),
                                                 o.capability) != who.capabilities.end()) {
    if (action == Action::kRead || action == Action::kExecute)
      return Decision::kAllow;  // claim, log, complete
    return Decision::kPermissionDenied;
  }
  return Decision::kNotFound;
}

}  // namespace

Decision decide(const Principal& who, Action action, const ObjectRef& o) {
  if (who.role == Role::kAdmin) return Decision::kAllow;
  if (who.role == Role::kAgent) return decide_agent(who, action, o);
  const bool creating = action == Action::kCreate;
  const bool own = creating || (!o.owner.empty() && o.owner == who.id) ||
                   (o.resource == Resource::kUser && o.id == who.id);
  if (private_resource(o.resource)) {
    if (o.resource == Resource::kAuditLog) return Decision::kNotFound;
    if (o.resource == Resource::kUser) {
      // Users read and update themselves (password, profile); roles and accounts are an admin's.
      if (!own || creating) return creating ? Decision::kPermissionDenied : Decision::kNotFound;
      return action == Action::kRead || action == Action::kUpdate ? Decision::kAllow
                                                                  : Decision::kPermissionDenied;
    }
    if (!own) return Decision::kNotFound;  // another's API key does not exist for you
  }
  if (action == Action::kRead)
    return Decision::kAllow;  // viewers and developers read everything else
  if (who.role == Role::kViewer) return Decision::kPermissionDenied;
  // Developers from here on.
  if (o.resource == Resource::kAgentType)
    return Decision::kPermissionDenied;  // types are platform config
  if (o.resource == Resource::kAgent && o.runs_code)
    return Decision::kPermissionDenied;  // host code: admin-only
  return own ? Decision::kAllow : Decision::kPermissionDenied;
}

void authorize(const Principal& who, Action action, const ObjectRef& o) {
  switch (decide(who, action, o)) {
    case Decision::kAllow:
      return;
    case Decision::kNotFound:
      throw Error(ErrorCode::kNotFound,
                  std::string(to_string(o.resource)) + " \"" + o.id.substr(0, 64) + "\" not found");
    case Decision::kPermissionDenied:
      throw Error(ErrorCode::kPermissionDenied, "a " + std::string(to_string(who.role)) +
                                                    " may not " + std::string(to_string(action)) +
                                                    " this " + std::string(to_string(o.resource)));
  }
}

}  // namespace devcycle
