#include <algorithm>
#include <cctype>
#include <chrono>

#include "auth/address_throttle.h"
#include "common/field_checks.h"
#include "common/utf8.h"
#include "devcycle/auth/auth.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle {
namespace {

constexpr std::string_view kColumns =
    "id, email, username, role, active, created_at, updated_at, password_changed_at, generation, "
    "must_change_password";

// How long a user's state is served from the cache. A change made through
// any UserDirectory on a shared cache (Redis) is seen at once; one made
// through a server with a cache of its own is seen by the others within this.
constexpr std::chrono::seconds kStateTtl{5};

std::string state_key(std::string_view user_id) { return "user-state:" + std::string(user_id); }

// "<generation> <role> <active><must change password>", e.g. "3 developer 10".
std::string encode(const UserState& s) {
  return std::to_string(s.generation) + " " + std::string(to_string(s.role)) + " " +
         (s.active ? "1" : "0") + (s.must_change_password ? "1" : "0");
}

std::optional<UserState> decode(const std::string& text) {
  const auto a = text.find(' ');
  const auto b = text.rfind(' ');
  if (a == std::string::npos || b == a || text.size() != b + 3) return std::nullopt;
  try {
    return UserState{parse_role(text.substr(a + 1, b - a - 1)), text[b + 1] == '1',
                     std::stoll(text.substr(0, a)), text[b + 2] == '1'};
  } catch (const std::exception&) {
    return std::nullopt;  // not ours: read the database
  }
}

UserState state_of(const User& u) {
  return {u.role, u.active, u.generation, u.must_change_password};
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

void check_email(std::string_view email) {
  if (email.empty()) invalid("email: must not be empty");
  if (email.size() > 254) invalid("email: longer than 254 characters");
  if (!internal::valid_utf8(email)) invalid("email: is not valid UTF-8");
  const auto at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) {
    invalid("email: must contain exactly one '@'");
  }
  const auto local = email.substr(0, at);
  const auto domain = email.substr(at + 1);
  if (local.empty() || local.size() > 64)
    invalid("email: the part before '@' must be 1 to 64 characters");
  for (unsigned char c : local) {
    if (c <= 0x20 || c >= 0x7f ||
        std::string_view("(),:;<>[\\]\"").find(static_cast<char>(c)) != std::string_view::npos) {
      invalid("email: the part before '@' has a character that is not allowed");
    }
  }
  if (domain.find('.') == std::string_view::npos) invalid("email: the domain must contain a '.'");
  std::size_t start = 0;
  while (start <= domain.size()) {
    const auto dot = domain.find('.', start);
    const auto label =
        domain.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      invalid("email: \"" + std::string(domain.substr(0, 64)) + "\" is not a valid domain");
    }
    for (unsigned char c : label) {
      if (!(std::isalnum(c) || c == '-'))
        invalid("email: \"" + std::string(domain.substr(0, 64)) + "\" is not a valid domain");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
}

void check_username(std::string_view username) {
  internal::check_name("username", username, 64, "a-z0-9", "a-z0-9._-", "[a-z0-9][a-z0-9._-]*");
  if (username.size() < 3) invalid("username: must be at least 3 characters long");
}

User user_from(const Row& r) {
  User u;
  u.id = r[0].as_text();
  u.email = r[1].as_text();
  u.username = r[2].as_text();
  u.role = parse_role(r[3].as_text(), "users.role");
  u.active = r[4].as_bool();
  u.created_at = r[5].as_int();
  u.updated_at = r[6].as_int();
  u.password_changed_at = r[7].as_optional_int();
  u.generation = r[8].as_int();
  u.must_change_password = r[9].as_bool();
  return u;
}

}  // namespace

struct UserDirectory::Impl {
  Database& db;
  Cache& cache;
  UserDirectoryOptions options;
  std::string dummy_hash;  // verified against for unknown users: equal work, no enumeration
  internal::AddressThrottle addresses{
      cache, "login-failures", options.throttle.max_failures_per_address, options.throttle.window};

  Micros now() const { return options.clock->now(); }

  std::optional<std::pair<User, std::string>> find(Txn& t, std::string_view where,
                                                   std::initializer_list<Value> params) {
    auto rs = t.query("SELECT " + std::string(kColumns) + ", password_hash FROM users WHERE " +
                          std::string(where),
                      params);
    if (rs.empty()) return std::nullopt;
    return std::make_pair(user_from(rs[0]), rs[0][10].as_text());
  }

  User must_get(std::string_view id) {
    auto found = db.read([&](Txn& t) { return find(t, "id = $1", {id}); });
    if (!found)
      throw Error(ErrorCode::kNotFound, "user \"" + std::string(id.substr(0, 64)) + "\" not found");
    return found->first;
  }

  // Every change here is one that must end what the old state allowed
  // (a role, a password, being active): the generation moves on, and the
  // cached state is replaced once the change is committed.
  User update(std::string_view id, const std::string& set_sql, std::initializer_list<Value> extra) {
    auto user = db.write([&](Txn& t) {
      std::vector<Value> params{Value(id), Value(now())};
      params.insert(params.end(), extra.begin(), extra.end());
      if (t.execute("UPDATE users SET updated_at = $2, generation = generation + 1, " + set_sql +
                        " WHERE id = $1",
                    params) == 0) {
        throw Error(ErrorCode::kNotFound,
                    "user \"" + std::string(id.substr(0, 64)) + "\" not found");
      }
      return find(t, "id = $1", {id})->first;
    });
    publish(user);
    return user;
  }

  // Puts the committed state in the cache unless a newer generation is
  // there already: two changes committing in one order may reach the cache
  // in the other, and the older must not win.
  void publish(const User& user) {
    const auto key = state_key(user.id);
    const auto mine = encode(state_of(user));
    for (int tries = 0; tries < 8; ++tries) {
      const auto cached = cache.get(key);
      if (cached) {
        const auto s = decode(*cached);
        if (s && s->generation > user.generation) return;
      }
      if (cache.compare_and_set(key, cached, mine, kStateTtl)) return;
    }
    cache.erase(key);  // contended: let readers go to the database
  }
};

std::vector<Migration> UserDirectory::migrations() {
  return {{"auth", 1, "users",
           "CREATE TABLE users ("
           " id TEXT PRIMARY KEY,"
           " email TEXT NOT NULL UNIQUE,"
           " username TEXT NOT NULL UNIQUE,"
           " role TEXT NOT NULL,"
           " active BIGINT NOT NULL,"
           " password_hash TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " updated_at BIGINT NOT NULL,"
           " password_changed_at BIGINT)",
           ""},
          {"auth", 2, "users generation",
           "ALTER TABLE users ADD COLUMN generation BIGINT NOT NULL DEFAULT 0", ""},
          {"auth", 3, "users must change password",
           "ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0", ""}};
}

UserDirectory::UserDirectory(Database& db, Cache& cache, UserDirectoryOptions options) {
  if (!options.hasher) options.hasher = make_argon2id_hasher();
  if (!options.clock)
    throw Error(ErrorCode::kInvalidArgument, "UserDirectoryOptions.clock: must not be null");
  if (options.throttle.max_failures_per_account < 1 ||
      options.throttle.max_failures_per_address < 1 || options.throttle.window.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "UserDirectoryOptions.throttle: limits and window must be positive");
  }
  db.migrate(migrations());
  impl_ = std::make_shared<Impl>(Impl{db, cache, std::move(options), {}});
  impl_->dummy_hash = impl_->options.hasher->hash("an unused password that only costs time");
}

User UserDirectory::create(const NewUser& spec) {
  check_email(spec.email);
  check_username(lower(spec.username));
  check_password_policy(spec.password);
  User u;
  u.id = new_uuid_v7();
  u.email = lower(spec.email);
  u.username = lower(spec.username);
  u.role = spec.role;
  u.active = true;
  u.created_at = u.updated_at = impl_->now();
  u.password_changed_at = u.created_at;
  const auto hash = impl_->options.hasher->hash(spec.password);  // outside the write: it is slow
  impl_->db.write([&](Txn& t) {
    if (!t.query("SELECT 1 FROM users WHERE email = $1", {u.email}).empty()) {
      throw Error(ErrorCode::kAlreadyExists, "email: \"" + u.email + "\" is already registered");
    }
    if (!t.query("SELECT 1 FROM users WHERE username = $1", {u.username}).empty()) {
      throw Error(ErrorCode::kAlreadyExists, "username: \"" + u.username + "\" is taken");
    }
    t.execute("INSERT INTO users (" + std::string(kColumns) +
                  ", password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
              {u.id, u.email, u.username, to_string(u.role), 1, u.created_at, u.updated_at,
               Value(u.password_changed_at), u.generation, 0, hash});
  });
  return u;
}

User UserDirectory::get(std::string_view user_id) { return impl_->must_get(user_id); }

UserState UserDirectory::state(std::string_view user_id) {
  const auto key = state_key(user_id);
  if (const auto cached = impl_->cache.get(key)) {
    if (auto s = decode(*cached)) return *s;
  }
  const auto u = impl_->must_get(user_id);
  const UserState s = state_of(u);
  // Only if absent: a change committed meanwhile has set the newer state.
  impl_->cache.set_if_absent(key, encode(s), kStateTtl);
  return s;
}

User UserDirectory::get_by_login(std::string_view login) {
  const auto l = lower(login);
  auto found =
      impl_->db.read([&](Txn& t) { return impl_->find(t, "email = $1 OR username = $1", {l}); });
  if (!found) throw Error(ErrorCode::kNotFound, "user \"" + l.substr(0, 254) + "\" not found");
  return found->first;
}

UserPage UserDirectory::list(const UserFilter& f) {
  if (f.limit < 1 || f.limit > 1000)
    invalid("limit: " + std::to_string(f.limit) + " is not between 1 and 1000");
  if (!f.page_token.empty() && !is_uuid(f.page_token))
    invalid("page_token: not a token from a previous page");
  UserPage page;
  page.users = impl_->db.read([&](Txn& t) {
    std::string sql = "SELECT " + std::string(kColumns) + " FROM users WHERE id > $1";
    std::vector<Value> params{f.page_token};
    if (f.role) {
      params.emplace_back(std::string(to_string(*f.role)));
      sql += " AND role = $" + std::to_string(params.size());
    }
    if (f.active) {
      params.emplace_back(*f.active ? 1 : 0);
      sql += " AND active = $" + std::to_string(params.size());
    }
    params.emplace_back(f.limit + 1);
    sql += " ORDER BY id LIMIT $" + std::to_string(params.size());
    std::vector<User> out;
    for (const auto& r : t.query(sql, params)) out.push_back(user_from(r));
    return out;
  });
  if (static_cast<int>(page.users.size()) > f.limit) {
    page.users.pop_back();
    page.next_page_token = page.users.back().id;
  }
  return page;
}

User UserDirectory::set_role(std::string_view user_id, Role role) {
  return impl_->update(user_id, "role = $3", {std::string(to_string(role))});
}

User UserDirectory::deactivate(std::string_view user_id) {
  return impl_->update(user_id, "active = 0", {});
}
User UserDirectory::reactivate(std::string_view user_id) {
  return impl_->update(user_id, "active = 1", {});
}

User UserDirectory::change_password(std::string_view user_id, std::string_view current_password,
                                    std::string_view new_password) {
  if (current_password.size() > 4096) invalid("current_password: longer than 4096 bytes");
  auto found = impl_->db.read([&](Txn& t) { return impl_->find(t, "id = $1", {user_id}); });
  if (!found)
    throw Error(ErrorCode::kNotFound,
                "user \"" + std::string(user_id.substr(0, 64)) + "\" not found");
  if (!impl_->options.hasher->verify(current_password, found->second)) {
    throw Error(ErrorCode::kUnauthenticated, "current_password: is not right");
  }
  check_password_policy(new_password, "new_password");
  if (new_password == current_password)
    invalid("new_password: must differ from the current password");
  const auto hash = impl_->options.hasher->hash(new_password);
  return impl_->update(
      user_id, "password_hash = $3, password_changed_at = $2, must_change_password = 0", {hash});
}

User UserDirectory::reset_password(std::string_view user_id, std::string_view new_password) {
  check_password_policy(new_password, "password");
  impl_->must_get(user_id);  // kNotFound before the slow hash
  const auto hash = impl_->options.hasher->hash(new_password);
  return impl_->update(
      user_id, "password_hash = $3, password_changed_at = $2, must_change_password = 1", {hash});
}

void UserDirectory::remove(std::string_view user_id) {
  const auto user = impl_->must_get(user_id);
  impl_->db.write([&](Txn& t) { t.execute("DELETE FROM users WHERE id = $1", {user.id}); });
  // What other servers cached stops speaking for it at once (a shared cache)
  // or within the state's TTL; here, at once.
  auto gone = state_of(user);
  gone.active = false;
  gone.generation += 1;
  impl_->cache.set(state_key(user.id), encode(gone), kStateTtl);
}

User UserDirectory::authenticate(std::string_view login, std::string_view password,
                                 std::string_view client_address) {
  if (password.size() > 4096) invalid("password: longer than 4096 bytes");
  if (login.size() > 254) invalid("login: longer than 254 characters");
  internal::check_text("client_address", client_address, 64, true);
  const auto l = lower(login);
  const auto& t = impl_->options.throttle;
  // The address first, before any work: a refused address learns nothing.
  impl_->addresses.check(client_address);
  auto found =
      impl_->db.read([&](Txn& tx) { return impl_->find(tx, "email = $1 OR username = $1", {l}); });
  // Counted per account, whichever of its names was typed (an unknown one
  // by the name), and per address. Each attempt takes its place in the
  // count before any hashing, atomically in the cache: concurrent attempts
  // cannot all pass a check made before any of them counted.
  const std::string account_key =
      "login-failures:account:" + (found ? "id:" + found->first.id : "name:" + l);
  if (impl_->cache.increment(account_key, 1, t.window) > t.max_failures_per_account) {
    throw Error(ErrorCode::kResourceExhausted,
                "too many failed logins for this account; try again in " +
                    std::to_string(t.window.count() / 60000) + " minutes");
  }
  if (impl_->addresses.count(client_address)) {
    impl_->cache.increment(account_key, -1);  // refused for the address: not the account's
    throw Error(ErrorCode::kResourceExhausted,
                "too many failed logins from this address; retry after " +
                    std::to_string(std::max<long long>(1, t.window.count() / 1000)) + " s");
  }
  // Exactly one verification on every path, so that timing and work say nothing.
  const bool matches =
      impl_->options.hasher->verify(password, found ? found->second : impl_->dummy_hash);
  if (found && matches && found->first.active) {
    impl_->cache.erase(account_key);
    impl_->addresses.give_back(client_address);  // a success is no failure
    return found->first;
  }
  throw Error(ErrorCode::kUnauthenticated, "invalid login or password");
}

}  // namespace devcycle
