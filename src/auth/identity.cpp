#include "devcycle/auth/identity.h"

#include "auth/address_throttle.h"
#include "devcycle/common/error.h"

namespace devcycle {

namespace {

UserDirectoryOptions directory_options(const IdentityOptions& o) {
  UserDirectoryOptions d;
  if (o.hasher) {
    d.hasher = o.hasher;
  } else {
    Argon2Options a;
    a.memory_bytes = o.argon2_memory_bytes;
    d.hasher = make_argon2id_hasher(a);
  }
  d.clock = o.clock;
  d.throttle = o.throttle;
  return d;
}

TokenOptions token_options(const IdentityOptions& o) {
  TokenOptions t;
  t.clock = o.clock;
  t.access_ttl = o.access_ttl;
  t.refresh_ttl = o.refresh_ttl;
  return t;
}

SessionOptions session_options(const IdentityOptions& o) {
  SessionOptions s = o.sessions;
  s.clock = o.clock;
  return s;
}

}  // namespace

struct Identity::Impl {
  UserDirectory users;
  TokenService tokens;
  ApiKeyStore keys;
  AuthService auth;
  SessionStore sessions;
  AuditLog audit;
  internal::AddressThrottle credential_failures;
  internal::AddressThrottle login_failures;  // the count UserDirectory::authenticate keeps

  Impl(Database& db, Cache& cache, std::string_view master_key, const IdentityOptions& o)
      : users(db, cache, directory_options(o)),
        tokens(db, cache, master_key, token_options(o), &users),
        keys(db, o.clock, &users),
        auth(users, tokens),
        sessions(db, cache, session_options(o)),
        audit(db, o.clock),
        credential_failures(cache, "credential-failures", o.credential_failures_per_address,
                            o.throttle.window),
        login_failures(cache, "login-failures", o.throttle.max_failures_per_address,
                       o.throttle.window) {}

  // Runs one authentication for `address`: a credential that proves not
  // genuine counts against the address, and past its limit is answered 429.
  template <class F>
  auto guarded(std::string_view address, F&& authenticate) {
    try {
      return authenticate();
    } catch (const internal::ForgedCredential&) {
      if (credential_failures.count(address)) credential_failures.refuse();
      throw;
    }
  }
};

Identity::Identity(Database& db, Cache& cache, std::string_view master_key,
                   IdentityOptions options) {
  if (!options.clock) throw Error(ErrorCode::kInvalidArgument, "IdentityOptions.clock: is null");
  impl_ = std::make_unique<Impl>(db, cache, master_key, options);
}

Identity::~Identity() = default;

UserDirectory& Identity::users() noexcept { return impl_->users; }
TokenService& Identity::tokens() noexcept { return impl_->tokens; }
ApiKeyStore& Identity::keys() noexcept { return impl_->keys; }
AuthService& Identity::auth() noexcept { return impl_->auth; }
SessionStore& Identity::sessions() noexcept { return impl_->sessions; }
AuditLog& Identity::audit() noexcept { return impl_->audit; }

Principal Identity::authenticate(std::string_view bearer, std::string_view client_address) {
  return impl_->guarded(client_address, [&] {
    if (bearer.starts_with("dck_")) return impl_->keys.authenticate(bearer);
    return impl_->auth.principal(bearer);
  });
}

TokenPair Identity::refresh(std::string_view refresh_token, std::string_view client_address) {
  return impl_->guarded(client_address, [&] { return impl_->auth.refresh(refresh_token); });
}

void Identity::check_login_address(std::string_view client_address) {
  impl_->login_failures.check(client_address);
}

Principal Identity::authenticate_session(std::string_view token, std::string_view client_address,
                                         Session* out, bool record_use) {
  auto session = impl_->guarded(client_address,
                                [&] { return impl_->sessions.authenticate(token, record_use); });
  UserState state;
  try {
    state = impl_->users.state(session.user_id);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kUnauthenticated, "invalid session");
  }
  if (!state.active) throw Error(ErrorCode::kUnauthenticated, "invalid session");
  // The role the user has now, not the one the session began with.
  Principal p{session.user_id, state.role, {}, "", state.must_change_password};
  if (out) *out = std::move(session);
  return p;
}

CreatedSession Identity::open_session(const User& user, std::string_view client_address,
                                      std::string_view user_agent) {
  auto created = impl_->sessions.create(user, client_address, user_agent);
  // Checked after the insert: a change that commits later ends this session
  // with the others (revoke_user); one that committed earlier shows here.
  const auto now = impl_->users.get(user.id);
  if (now.generation != user.generation || !now.active) {
    impl_->sessions.revoke(created.session.id);
    throw Error(ErrorCode::kUnauthenticated, "the account changed while logging in; log in again");
  }
  return created;
}

// A change to what already is changes nothing: the user stays logged in
// (an admin form that sends the whole user back must not log them out).
User Identity::set_role(std::string_view user_id, Role role) {
  if (auto user = impl_->users.get(user_id); user.role == role) return user;
  auto user = impl_->users.set_role(user_id, role);
  impl_->sessions.revoke_user(user.id);
  return user;
}

User Identity::deactivate(std::string_view user_id) {
  if (auto user = impl_->users.get(user_id); !user.active) return user;
  auto user = impl_->auth.deactivate(user_id);
  impl_->sessions.revoke_user(user.id);
  return user;
}

User Identity::reactivate(std::string_view user_id) {
  if (auto user = impl_->users.get(user_id); user.active) return user;
  return impl_->users.reactivate(user_id);
}

User Identity::change_password(std::string_view user_id, std::string_view current_password,
                               std::string_view new_password) {
  auto user = impl_->auth.change_password(user_id, current_password, new_password);
  impl_->sessions.revoke_user(user.id);
  return user;
}

User Identity::reset_password(std::string_view user_id, std::string_view new_password) {
  auto user = impl_->users.reset_password(user_id, new_password);
  impl_->tokens.revoke_user(user.id);
  impl_->sessions.revoke_user(user.id);
  return user;
}

void Identity::remove_user(std::string_view user_id) {
  const auto user = impl_->users.get(user_id);
  impl_->users.remove(user.id);
  impl_->tokens.revoke_user(user.id);
  impl_->sessions.revoke_user(user.id);
}

}  // namespace devcycle
