// Browser sessions: a cookie instead of a bearer token, with CSRF defence.
//
// A session token looks like dcs_<id>_<secret>; the database keeps the id
// and a BLAKE2b hash of the secret. A session ends after `idle_timeout`
// without use, after `absolute_timeout` in any case, or when revoked (one
// session, or all of a user's on a password change or deactivation).
// Sessions are cached in the Cache for `cache_ttl`, so that most requests
// do not read the database; revocation erases the cached copy.
//
// CSRF (double submit, bound to the session): the csrf token is a keyed
// hash of the session's secret. The browser keeps it in a cookie that
// scripts may read and sends it back in a header; a state-changing request
// with a session cookie is accepted only when that header matches the
// session (check_csrf). A cookie planted by another site cannot match,
// because it cannot know the session's secret.
//
// Thread-safety: a SessionStore may be used from any number of threads.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/auth.h"
#include "devcycle/cache/cache.h"
#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle {

struct SessionOptions {
  std::chrono::seconds idle_timeout{30 * 60};
  std::chrono::seconds absolute_timeout{12 * 3600};
  // How long a session is served from the cache before the database is
  // asked again (revocation on another instance takes at most this long).
  std::chrono::seconds cache_ttl{30};
  std::shared_ptr<Clock> clock = SystemClock::instance();
};

struct Session {
  std::string id;  // uuid v7
  std::string user_id;
  Role role = Role::kViewer;  // the user's role when the session began
  Micros created_at = 0;
  Micros last_seen_at = 0;
  Micros expires_at = 0;  // absolute
  std::string client_address;
  std::string user_agent;
  std::optional<Micros> revoked_at;
};

struct CreatedSession {
  Session session;
  std::string token;       // the cookie's value; shown once, never stored
  std::string csrf_token;  // the CSRF cookie's and header's value
};

class SessionStore {
 public:
  static std::vector<Migration> migrations();
  // Applies migrations(). `db` and `cache` must outlive the store.
  SessionStore(Database& db, Cache& cache, SessionOptions options = {});

  // After a successful login. client_address at most 128 bytes, user_agent
  // at most 512 (longer is cut).
  CreatedSession create(const User& user, std::string_view client_address,
                        std::string_view user_agent);
  // The live session a presented token belongs to; records use (at most
  // once a minute in the database). Error{kUnauthenticated, "invalid
  // session"} for anything else — malformed, unknown, wrong secret, idle,
  // expired or revoked alike. `record_use` false: a check on behalf of a
  // connection already open (a WebSocket's recheck), which must not keep an
  // idle session alive.
  Session authenticate(std::string_view token, bool record_use = true);
  // Whether `csrf_token` belongs to the session of `token` (constant time).
  bool check_csrf(std::string_view token, std::string_view csrf_token) const;

  // The user's live sessions, newest first.
  std::vector<Session> list(std::string_view user_id);
  Session get(std::string_view session_id);  // kNotFound
  // Ends one session (idempotent); returns it.
  Session revoke(std::string_view session_id);
  // Ends every session of a user (password change, deactivation); returns how many.
  int revoke_user(std::string_view user_id);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace devcycle
