// Identities: users, their passwords, and login.
//
// Passwords are hashed with argon2id (libsodium) behind the PasswordHasher
// interface. Logins never reveal whether an account exists: an unknown user,
// a wrong password and a deactivated account all cost one password hash and
// give the same Error{kUnauthenticated}. Failed logins are throttled per
// account and per client address through the Cache's token buckets.
// Tokens, roles and API keys follow in this header as the auth issue lands.
//
// Thread-safety: every class here may be used from any number of threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/cache/cache.h"
#include "devcycle/common/clock.h"
#include "devcycle/store/database.h"

namespace devcycle {

enum class Role { kAdmin, kDeveloper, kViewer, kAgent };
std::string_view to_string(Role role) noexcept;
// Throws Error{kInvalidArgument} naming `field` for an unknown role.
Role parse_role(std::string_view text, std::string_view field = "role");

class PasswordHasher {
 public:
  virtual ~PasswordHasher() = default;
  // A self-describing hash string (algorithm, parameters, salt, hash).
  virtual std::string hash(std::string_view password) = 0;
  // True when `password` matches `hash`. Costs the same work whether it
  // matches or not.
  virtual bool verify(std::string_view password, std::string_view hash) = 0;
};

struct Argon2Options {
  // OWASP's minimum for argon2id is 19 MiB with 2 passes; these are above it.
  std::size_t memory_bytes = 64u * 1024 * 1024;
  unsigned long long passes = 3;
};

// argon2id through libsodium. Throws Error{kInvalidArgument} when the options
// are below OWASP's minimum (19 MiB, 2 passes).
std::unique_ptr<PasswordHasher> make_argon2id_hasher(const Argon2Options& options = {});

// The password policy: at least 12 characters (Unicode code points), at most
// 4096 bytes of valid UTF-8, taken exactly as given (no trimming or
// normalisation), and not one of the shipped most common passwords
// (compared case-insensitively). Throws Error{kInvalidArgument} naming
// `field` and the rule; the message never contains the password.
void check_password_policy(std::string_view password, std::string_view field = "password");

struct User {
  std::string id;        // uuid v7
  std::string email;     // lowercased
  std::string username;  // lowercased
  Role role = Role::kViewer;
  bool active = true;
  Micros created_at = 0;
  Micros updated_at = 0;
  std::optional<Micros> password_changed_at;
  // Grows with every change of role, password or activation; credentials
  // issued under an older generation no longer speak for the user.
  std::int64_t generation = 0;
  // Set when an admin reset the password: nothing but changing it is
  // allowed until the user has (Platform::as refuses).
  bool must_change_password = false;
};

// What decides, at each request, what a user's credentials still allow.
struct UserState {
  Role role = Role::kViewer;
  bool active = false;
  std::int64_t generation = 0;
  bool must_change_password = false;
};

struct NewUser {
  std::string email;     // local@domain, at most 254 bytes; stored lowercased
  std::string username;  // [a-z0-9][a-z0-9._-]{2,63}; stored lowercased
  std::string password;  // per check_password_policy
  Role role = Role::kViewer;
};

struct UserFilter {
  std::optional<Role> role;
  std::optional<bool> active;
  int limit = 50;  // 1-1000
  std::string page_token;
};

struct UserPage {
  std::vector<User> users;  // in creation order
  std::string next_page_token;
};

struct LoginThrottle {
  // Failed logins counted in fixed windows; at the limit, logins for that
  // account (known or not) or from that address are refused until the
  // window ends.
  int max_failures_per_account = 10;
  int max_failures_per_address = 50;
  std::chrono::milliseconds window{15 * 60 * 1000};
};

struct UserDirectoryOptions {
  std::shared_ptr<PasswordHasher> hasher;  // default: make_argon2id_hasher()
  std::shared_ptr<Clock> clock = SystemClock::instance();
  LoginThrottle throttle;
};

class UserDirectory {
 public:
  static std::vector<Migration> migrations();

  // Applies migrations(). `db` and `cache` must outlive the directory.
  UserDirectory(Database& db, Cache& cache, UserDirectoryOptions options = {});

  // Throws kInvalidArgument naming the field, kAlreadyExists when the email
  // or the username is taken (saying which).
  User create(const NewUser& user);
  User get(std::string_view user_id);                     // kNotFound
  User get_by_login(std::string_view email_or_username);  // kNotFound
  UserPage list(const UserFilter& filter = {});
  // The user's role, activation and generation now; served from the Cache
  // for up to 5 s (a change through any directory sharing the cache shows at
  // once). kNotFound.
  UserState state(std::string_view user_id);
  // Each of these moves the user's generation on (see User::generation).
  User set_role(std::string_view user_id, Role role);
  User deactivate(std::string_view user_id);
  User reactivate(std::string_view user_id);
  // Checks the current password like a login (kUnauthenticated when wrong),
  // then the policy for the new one.
  User change_password(std::string_view user_id, std::string_view current_password,
                       std::string_view new_password);
  // An admin's reset: the user logs in with `new_password` and must change
  // it before anything else (User::must_change_password).
  User reset_password(std::string_view user_id, std::string_view new_password);
  // Deletes the account. What it owned (runs, agents, workflows, secrets)
  // keeps its id as a tombstone owner; its credentials stop at once.
  void remove(std::string_view user_id);

  // Returns the user when `login` (email or username) and `password` match an
  // active account. Otherwise Error{kUnauthenticated, "invalid login or
  // password"} — the same for every reason — after the same hashing work.
  // Error{kResourceExhausted} (retryable) when too many failures came for
  // this account or from this address; the message says when to retry.
  User authenticate(std::string_view login, std::string_view password,
                    std::string_view client_address);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace devcycle
