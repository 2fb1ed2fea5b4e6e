// The authorizing facade over secrets, direct messages and dead letters, API
// keys, accounts and the audit log.
#include "devcycle/common/error.h"
#include "devcycle/platform/platform.h"
#include "platform/scoped_refs.h"

namespace devcycle {

using internal::ref;

namespace {

SecretStore& secrets_of(Platform& p) {
  if (!p.secrets()) {
    throw Error(ErrorCode::kInvalidArgument,
                "master_key: secrets need a platform opened with a master key");
  }
  return *p.secrets();
}

void require_admin(const Principal& who, const std::string& what) {
  if (who.role != Role::kAdmin) {
    throw Error(ErrorCode::kPermissionDenied, "only an admin may " + what);
  }
}

}  // namespace

// --- secrets ---

std::vector<SecretInfo> ScopedSecrets::list() {
  authorize(who_, Action::kRead, ref(Resource::kSecret));
  return secrets_of(*platform_).list();
}

SecretInfo ScopedSecrets::info(std::string_view name) {
  auto i = secrets_of(*platform_).info(name);
  authorize(who_, Action::kRead, ref(Resource::kSecret, i.name, i.owner));
  return i;
}

SecretInfo ScopedSecrets::put(std::string_view name, std::string_view value, bool* created) {
  return secrets_of(*platform_).put(name, value, who_, created);  // checked in its transaction
}

void ScopedSecrets::remove(std::string_view name) {
  const auto i = info(name);
  authorize(who_, Action::kDelete, ref(Resource::kSecret, i.name, i.owner));
  secrets_of(*platform_).remove(i.name);
}

// --- direct messages and dead letters ---

DirectMessage ScopedMessages::send(std::string_view from_agent, std::string_view to_agent,
                                   std::string_view message_type, std::string_view payload_json) {
  const auto sender = ScopedAgents(*platform_, who_).acting_as(from_agent);
  return platform_->messages().send(sender.id, to_agent, message_type, payload_json);
}

std::vector<DirectMessage> ScopedMessages::receive(std::string_view agent_id, int limit) {
  const auto recipient = ScopedAgents(*platform_, who_).acting_as(agent_id);
  return platform_->messages().receive(recipient.id, limit);
}

DirectMessage ScopedMessages::get(std::string_view agent_id, std::string_view message_id) {
  const auto agent = ScopedAgents(*platform_, who_).acting_as(agent_id);
  auto m = platform_->messages().get(message_id);
  if (m.sender != agent.id && m.recipient != agent.id) {
    throw Error(ErrorCode::kNotFound, "message \"" + std::string(message_id) + "\" not found");
  }
  return m;
}

DirectMessage ScopedMessages::mark_read(std::string_view agent_id, std::string_view message_id) {
  const auto reader = ScopedAgents(*platform_, who_).acting_as(agent_id);
  return platform_->messages().mark_read(message_id, reader.id);
}

std::vector<DeadLetter> ScopedMessages::dead_letters(std::string_view topic, std::string_view group,
                                                     int limit, std::int64_t after_offset) {
  require_admin(who_, "read dead letters");
  return platform_->bus().dead_letters(std::string(topic), std::string(group), limit, after_offset);
}

int ScopedMessages::redrive(std::string_view topic, std::string_view group,
                            const std::vector<std::string>& ids) {
  require_admin(who_, "redrive dead letters");
  return platform_->bus().redrive(std::string(topic), std::string(group), ids);
}

// --- API keys ---

std::vector<ApiKey> ScopedApiKeys::list(std::optional<std::string> owner) {
  const auto whose = owner.value_or(who_.id);
  // Also for one's own: an agent-role key may not list its owner's keys.
  authorize(who_, Action::kRead, ref(Resource::kApiKey, "", whose));
  return platform_->identity().keys().list(whose);
}

CreatedApiKey ScopedApiKeys::create(const NewApiKey& key) {
  authorize(who_, Action::kCreate, ref(Resource::kApiKey));
  if (!key.agent_id.empty()) {
    // The agent must exist and be the creator's to act as.
    const auto agent = ScopedAgents(*platform_, who_).get(key.agent_id);
    authorize(who_, Action::kUpdate, internal::agent_ref(platform_->registry(), agent));
  }
  return platform_->identity().keys().create(who_, key);
}

ApiKey ScopedApiKeys::get(std::string_view key_id) {
  auto k = platform_->identity().keys().get(key_id);
  authorize(who_, Action::kRead, ref(Resource::kApiKey, k.id, k.owner));
  return k;
}

ApiKey ScopedApiKeys::revoke(std::string_view key_id) {
  const auto k = get(key_id);
  authorize(who_, Action::kDelete, ref(Resource::kApiKey, k.id, k.owner));
  return platform_->identity().keys().revoke(k.id);
}

// --- accounts ---

UserPage ScopedUsers::list(const UserFilter& filter) {
  require_admin(who_, "list users");
  return platform_->identity().users().list(filter);
}

User ScopedUsers::create(const NewUser& user) {
  authorize(who_, Action::kCreate, ref(Resource::kUser));
  return platform_->identity().users().create(user);
}

User ScopedUsers::get(std::string_view user_id) {
  const std::string id(user_id);
  authorize(who_, Action::kRead, ref(Resource::kUser, id, id));
  return platform_->identity().users().get(id);
}

User ScopedUsers::update(std::string_view user_id, std::optional<Role> role,
                         std::optional<bool> active) {
  auto& identity = platform_->identity();
  const auto user = get(user_id);  // 404 for what the caller may not see
  require_admin(who_, "change roles or deactivate accounts");
  if (active && !*active && user.id == who_.id) {
    throw Error(ErrorCode::kInvalidArgument, "active: you cannot deactivate yourself");
  }
  if (role) identity.set_role(user.id, *role);
  if (active) {
    if (*active) {
      identity.reactivate(user.id);
    } else {
      identity.deactivate(user.id);
    }
  }
  return identity.users().get(user.id);
}

User ScopedUsers::change_password(std::string_view current_password,
                                  std::string_view new_password) {
  if (who_.role == Role::kAgent) {
    throw Error(ErrorCode::kPermissionDenied, "an agent key has no password to change");
  }
  return platform_->identity().change_password(who_.id, current_password, new_password);
}

User ScopedUsers::reset_password(std::string_view user_id, std::string_view new_password) {
  const auto user = get(user_id);  // 404 for what the caller may not see
  require_admin(who_, "reset passwords");
  return platform_->identity().reset_password(user.id, new_password);
}

void ScopedUsers::remove(std::string_view user_id) {
  const auto user = get(user_id);
  authorize(who_, Action::kDelete, ref(Resource::kUser, user.id, user.id));
  if (user.id == who_.id)
    throw Error(ErrorCode::kInvalidArgument, "id: you cannot delete yourself");
  platform_->identity().remove_user(user.id);
}

std::vector<Session> ScopedUsers::sessions() {
  // A user's own sessions; an agent-role key is not that user.
  authorize(who_, Action::kRead, ref(Resource::kUser, who_.id, who_.id));
  return platform_->identity().sessions().list(who_.id);
}

Session ScopedUsers::revoke_session(std::string_view session_id) {
  auto& sessions = platform_->identity().sessions();
  const auto s = sessions.get(session_id);
  // Sessions are as private as the user they belong to.
  authorize(who_, Action::kUpdate, ref(Resource::kUser, s.user_id, s.user_id));
  return sessions.revoke(s.id);
}

// --- the audit log ---

AuditPage ScopedAudit::query(const AuditFilter& filter) {
  authorize(who_, Action::kRead, ref(Resource::kAuditLog, "audit"));
  return platform_->identity().audit().query(filter);
}

}  // namespace devcycle
