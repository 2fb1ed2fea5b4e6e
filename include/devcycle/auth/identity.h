// Identity: the users, their credentials (access and refresh tokens, API
// keys, browser sessions) and the audit log, assembled over one database and
// cache, and the one place that turns presented credentials into a
// Principal. Platform builds it (Platform::identity()) when it has a master
// key; a server, a CLI or a binding only carries credentials to it.
//
// What a credential allows is decided at each use from the account as it
// stands now (UserDirectory::state): a deactivated account's tokens, keys
// and sessions stop at once; a role change or a password change ends every
// access token issued before it (the user's generation moved on); an API key
// acts with the lower of its own role and its owner's current role; a
// session acts with the user's current role.
//
// Presented credentials that are not genuine (malformed, unknown, forged, a
// wrong secret) are counted per client address (address_group()), across
// servers sharing the cache; beyond IdentityOptions::
// credential_failures_per_address in 15 minutes, each further one is
// answered kResourceExhausted ("retry after N s") instead of
// kUnauthenticated. Genuine credentials are never refused for their address:
// clients behind one proxy or NAT cannot lock each other out, and a 256-bit
// credential cannot be guessed anyway. A genuine credential that has ended
// (expired, revoked) is not counted. Failed logins, which can guess, are
// counted apart (LoginThrottle) and refused outright at their limit. An
// empty address is a trusted in-process caller.
//
// Thread-safety: every member may be used from any number of threads.
// Errors: authenticate*() throw Error{kUnauthenticated} with the reason,
// Error{kResourceExhausted} ("retry after N s") past the address's limit;
// the account changes throw what UserDirectory throws.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "devcycle/auth/api_keys.h"
#include "devcycle/auth/audit.h"
#include "devcycle/auth/auth.h"
#include "devcycle/auth/auth_service.h"
#include "devcycle/auth/authz.h"
#include "devcycle/auth/sessions.h"
#include "devcycle/auth/tokens.h"
#include "devcycle/cache/cache.h"
#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle {

struct IdentityOptions {
  // Password hashing cost (argon2id); never below OWASP's minimum (19 MiB).
  std::size_t argon2_memory_bytes = 64u * 1024 * 1024;
  // A hasher to use instead (tests); null: argon2id with the cost above.
  std::shared_ptr<PasswordHasher> hasher;
  LoginThrottle throttle;
  // Credentials that are not genuine, per address group, in the throttle's
  // window before they are answered 429 (see the class comment).
  int credential_failures_per_address = 50;
  std::chrono::seconds access_ttl{15 * 60};
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};
  SessionOptions sessions;  // its clock is replaced by the identity's
  std::shared_ptr<Clock> clock = SystemClock::instance();
};

// The unit of per-address accounting: an IPv4 address (also written
// IPv4-mapped, ::ffff:a.b.c.d), or an IPv6 address's /64 (one customer's
// subnet: any one host may speak from all of it); anything else as written.
std::string address_group(std::string_view client_address);

class Identity {
 public:
  // `db` and `cache` must outlive it. `master_key` seals the token signing
  // keys (as TokenService takes it). Throws what the parts' constructors
  // throw (a wrong master key: kInvalidArgument).
  Identity(Database& db, Cache& cache, std::string_view master_key, IdentityOptions options = {});
  ~Identity();
  Identity(const Identity&) = delete;
  Identity& operator=(const Identity&) = delete;

  UserDirectory& users() noexcept;
  TokenService& tokens() noexcept;
  ApiKeyStore& keys() noexcept;
  AuthService& auth() noexcept;
  SessionStore& sessions() noexcept;
  AuditLog& audit() noexcept;

  // A bearer credential: an API key (dck_...) or an access token, presented
  // from `client_address`.
  Principal authenticate(std::string_view bearer, std::string_view client_address = {});
  // A session cookie's value; `session` receives the session. `record_use`
  // as SessionStore::authenticate: false for a recheck of an open connection.
  Principal authenticate_session(std::string_view token, std::string_view client_address = {},
                                 Session* session = nullptr, bool record_use = true);
  // A refresh token for a new pair (AuthService::refresh), counted like the above.
  TokenPair refresh(std::string_view refresh_token, std::string_view client_address = {});
  // Throws Error{kResourceExhausted} when `client_address` has reached its
  // limit of failed logins: a server refuses it before it queues a login.
  void check_login_address(std::string_view client_address);

  // A session for `user`, read by a login that just succeeded — unless the
  // account changed since it was read (a password change racing the
  // login): then none, and Error{kUnauthenticated}.
  CreatedSession open_session(const User& user, std::string_view client_address,
                              std::string_view user_agent);

  // Account changes that end what the old state allowed, on every server:
  // each moves the user's generation on and ends their sessions; a
  // deactivation and a password change end their refresh tokens too.
  User set_role(std::string_view user_id, Role role);
  User deactivate(std::string_view user_id);
  User reactivate(std::string_view user_id);
  User change_password(std::string_view user_id, std::string_view current_password,
                       std::string_view new_password);
  // An admin's reset: a temporary password the user must change at the next
  // login; ends the user's sessions and tokens like a change.
  User reset_password(std::string_view user_id, std::string_view new_password);
  // Deletes the account (UserDirectory::remove) and ends its sessions and
  // tokens; its objects keep its id as a tombstone owner.
  void remove_user(std::string_view user_id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
