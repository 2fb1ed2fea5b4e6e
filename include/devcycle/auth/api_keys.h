// API keys for agents and automation.
//
// A key looks like dck_<prefix>_<secret>. It is shown once, when created;
// the database keeps only its prefix (to find it and to show it in lists)
// and a BLAKE2b hash of the secret. A key carries a role no higher than its
// creator's, optionally a set of capabilities and the agent it acts as (for
// the agent role), and an optional expiry; it can be revoked.
//
// Thread-safety: an ApiKeyStore may be used from any number of threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/auth/auth.h"
#include "devcycle/auth/authz.h"
#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle {

struct NewApiKey {
  std::string name;                       // for people: 1-128 bytes
  Role role = Role::kViewer;              // at most the creator's role
  std::vector<std::string> capabilities;  // agent keys: what tasks it may claim
  std::string agent_id;                   // agent keys: the agent it acts as (required)
  std::optional<Micros> expires_at;       // must be in the future
};

struct ApiKey {
  std::string id;
  std::string prefix;  // "dck_3f9a0c1b7e2d": identifies the key, safe to show
  std::string name;
  std::string owner;  // the creator's user id
  Role role = Role::kViewer;
  std::vector<std::string> capabilities;
  std::string agent_id;
  Micros created_at = 0;
  std::optional<Micros> expires_at;
  std::optional<Micros> revoked_at;
  std::optional<Micros> last_used_at;
};

struct CreatedApiKey {
  ApiKey key;
  std::string secret;  // the whole key; shown once, never stored
};

class ApiKeyStore {
 public:
  static std::vector<Migration> migrations();
  // `users`, when given, is asked at each authenticate() how the key's owner
  // stands now (see authenticate); it must outlive the store.
  ApiKeyStore(Database& db, std::shared_ptr<Clock> clock = SystemClock::instance(),
              UserDirectory* users = nullptr);

  // Throws kPermissionDenied when the role exceeds the creator's (or a viewer
  // creates a key), kInvalidArgument naming the field for bad input.
  CreatedApiKey create(const Principal& creator, const NewApiKey& key);
  // Keys of `owner`, newest first (revoked and expired ones included).
  std::vector<ApiKey> list(std::string_view owner);
  ApiKey get(std::string_view id);  // kNotFound
  ApiKey revoke(std::string_view id);

  // The principal a presented key acts as. Error{kUnauthenticated, "invalid
  // API key"} for anything that is not a live key — malformed, unknown,
  // wrong secret, revoked or expired alike, and (with `users`) a key whose
  // owner is deactivated or gone. With `users` the role is the lower of the
  // key's and the owner's current role.
  Principal authenticate(std::string_view presented);

 private:
  Database& db_;
  std::shared_ptr<Clock> clock_;
  UserDirectory* users_ = nullptr;
};

}  // namespace devcycle
