// Small value types of the registry: statuses, capabilities, requirements,
// reports, subscriptions.
#include "common/field_checks.h"
#include "devcycle/common/error.h"
#include "devcycle/registry/registry.h"

namespace devcycle {

std::string_view to_string(AgentStatus status) noexcept {
  switch (status) {
    case AgentStatus::kOffline:
      return "offline";
    case AgentStatus::kOnline:
      return "online";
    case AgentStatus::kBusy:
      return "busy";
    case AgentStatus::kDisabled:
      return "disabled";
  }
  return "offline";
}

AgentStatus parse_agent_status(std::string_view text, std::string_view field) {
  for (auto s :
       {AgentStatus::kOffline, AgentStatus::kOnline, AgentStatus::kBusy, AgentStatus::kDisabled}) {
    if (text == to_string(s)) return s;
  }
  throw Error(ErrorCode::kInvalidArgument,
              std::string(field) + ": \"" + std::string(text.substr(0, 64)) +
                  "\" is not an agent status (offline, online, busy or disabled)");
}

std::string_view to_string(AgentEvent::Kind kind) noexcept {
  switch (kind) {
    case AgentEvent::Kind::kCreated:
      return "agent.created";
    case AgentEvent::Kind::kUpdated:
      return "agent.updated";
    case AgentEvent::Kind::kDeleted:
      return "agent.deleted";
    case AgentEvent::Kind::kStatusChanged:
      return "agent.status_changed";
    case AgentEvent::Kind::kDeployed:
      return "agent.deployed";
    case AgentEvent::Kind::kRolledBack:
      return "agent.rolled_back";
  }
  return "agent.updated";
}

Capability Capability::parse(std::string_view text, std::string_view field) {
  const auto at = text.find('@');
  if (at == std::string_view::npos) {
    throw Error(ErrorCode::kInvalidArgument, std::string(field) + ": \"" +
                                                 std::string(text.substr(0, 128)) +
                                                 "\" must be name@version, e.g. codegen@2.1.0");
  }
  Capability c;
  c.name = std::string(text.substr(0, at));
  internal::check_lower_name(std::string(field) + " name", c.name, 128);
  c.version = Version::parse(text.substr(at + 1), std::string(field) + " version");
  return c;
}

Requirement Requirement::parse(std::string_view text, std::string_view field) {
  const auto at = text.find('@');
  Requirement r;
  r.name = std::string(text.substr(0, at));
  internal::check_lower_name(std::string(field) + " name", r.name, 128);
  if (at != std::string_view::npos) {
    r.range = VersionRange::parse(text.substr(at + 1), std::string(field) + " range");
  }
  return r;
}

std::string CompatibilityReport::describe() const {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += "; ";
    out += p.message;
  }
  return out;
}

}  // namespace devcycle
