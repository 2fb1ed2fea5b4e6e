#include <sodium.h>

#include <nlohmann/json.hpp>

#include "auth/address_throttle.h"
#include "auth/base64url.h"
#include "auth/sodium.h"
#include "devcycle/auth/sessions.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle {

namespace {

constexpr const char* kColumns =
    "id, user_id, role, created_at, last_seen_at, expires_at, client_address, user_agent, "
    "revoked_at";

Session from_row(const Row& r) {
  Session s;
  s.id = r[0].as_text();
  s.user_id = r[1].as_text();
  s.role = parse_role(r[2].as_text(), "sessions.role");
  s.created_at = r[3].as_int();
  s.last_seen_at = r[4].as_int();
  s.expires_at = r[5].as_int();
  s.client_address = r[6].as_text();
  s.user_agent = r[7].as_text();
  s.revoked_at = r[8].as_optional_int();
  return s;
}

std::string hash_hex(std::string_view data, std::string_view key = {}) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                     key.empty() ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
                     key.size());
  std::string out(64, '\0');
  sodium_bin2hex(out.data(), out.size() + 1, h, sizeof h);
  return out;
}

[[noreturn]] void invalid() { throw Error(ErrorCode::kUnauthenticated, "invalid session"); }
// The same words for a token that never was a session.
[[noreturn]] void forged() { throw internal::ForgedCredential("invalid session"); }

std::string cut_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // no half characters
  return std::string(s.substr(0, n));
}

// dcs_ + 36-character uuid + _ + 43 base64url characters.
constexpr std::size_t kTokenSize = 4 + 36 + 1 + 43;

struct Parsed {
  std::string id;
  std::string secret;
};

std::optional<Parsed> parse(std::string_view token) {
  if (token.size() != kTokenSize || !token.starts_with("dcs_") || token[40] != '_') return {};
  Parsed p{std::string(token.substr(4, 36)), std::string(token.substr(41))};
  if (!is_uuid(p.id)) return {};
  return p;
}

}  // namespace

struct SessionStore::Impl {
  Database& db;
  Cache& cache;
  SessionOptions options;

  Micros now() const { return options.clock->now(); }
  static std::string cache_key(std::string_view id) { return "session:" + std::string(id); }
  std::string csrf_of(std::string_view secret) const { return hash_hex("csrf", secret); }

  // The row and its secret hash, from the cache or the database.
  std::optional<std::pair<Session, std::string>> load(const std::string& id) {
    if (auto cached = cache.get(cache_key(id))) {
      const auto j = nlohmann::json::parse(*cached);
      Session s;
      s.id = id;
      s.user_id = j["u"];
      s.role = parse_role(j["r"].get<std::string>(), "cached session role");
      s.created_at = j["c"];
      s.last_seen_at = j["l"];
      s.expires_at = j["e"];
      s.client_address = j["a"];
      s.user_agent = j["g"];
      return std::make_pair(s, j["h"].get<std::string>());
    }
    auto rows = db.read([&](Txn& t) {
      return t.query(
          "SELECT " + std::string(kColumns) + ", secret_hash FROM sessions WHERE id = $1", {id});
    });
    if (rows.empty()) return std::nullopt;
    auto s = from_row(rows[0]);
    auto hash = rows[0][9].as_text();
    if (!s.revoked_at) remember(s, hash);
    return std::make_pair(std::move(s), std::move(hash));
  }

  void remember(const Session& s, const std::string& hash) {
    const nlohmann::json j{
        {"u", s.user_id},    {"r", to_string(s.role)}, {"c", s.created_at}, {"l", s.last_seen_at},
        {"e", s.expires_at}, {"a", s.client_address},  {"g", s.user_agent}, {"h", hash}};
    cache.set(cache_key(s.id), j.dump(),
              std::chrono::duration_cast<std::chrono::milliseconds>(options.cache_ttl));
  }
};

std::vector<Migration> SessionStore::migrations() {
  return {{"sessions", 1, "browser sessions",
           "CREATE TABLE sessions ("
           " id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, user_id TEXT NOT NULL,"
           " role TEXT NOT NULL, created_at BIGINT NOT NULL, last_seen_at BIGINT NOT NULL,"
           " expires_at BIGINT NOT NULL, client_address TEXT NOT NULL, user_agent TEXT NOT NULL,"
           " revoked_at BIGINT);"
           "CREATE INDEX sessions_user ON sessions (user_id, id)",
           ""}};
}

SessionStore::SessionStore(Database& db, Cache& cache, SessionOptions options)
    : impl_(std::make_shared<Impl>(Impl{db, cache, std::move(options)})) {
  internal::init_sodium();
  if (!impl_->options.clock) {
    throw Error(ErrorCode::kInvalidArgument, "SessionOptions clock: must not be null");
  }
  if (impl_->options.idle_timeout.count() <= 0 ||
      impl_->options.absolute_timeout < impl_->options.idle_timeout) {
    throw Error(ErrorCode::kInvalidArgument,
                "SessionOptions: idle_timeout must be positive and at most absolute_timeout");
  }
  db.migrate(migrations());
}

CreatedSession SessionStore::create(const User& user, std::string_view client_address,
                                    std::string_view user_agent) {
  unsigned char secret_bytes[32];
  randombytes_buf(secret_bytes, sizeof secret_bytes);
  const std::string secret = internal::base64url_encode(
      std::string_view(reinterpret_cast<const char*>(secret_bytes), sizeof secret_bytes));
  sodium_memzero(secret_bytes, sizeof secret_bytes);
  const Micros at = impl_->now();
  Session s;
  s.id = new_uuid_v7();
  s.user_id = user.id;
  s.role = user.role;
  s.created_at = at;
  s.last_seen_at = at;
  s.expires_at =
      at + std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.absolute_timeout)
               .count();
  s.client_address = cut_utf8(client_address, 128);
  s.user_agent = cut_utf8(user_agent, 512);
  const auto hash = hash_hex(secret);
  impl_->db.write([&](Txn& t) {
    t.execute("INSERT INTO sessions (" + std::string(kColumns) +
                  ", secret_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9)",
              {s.id, s.user_id, std::string(to_string(s.role)), s.created_at, s.last_seen_at,
               s.expires_at, s.client_address, s.user_agent, hash});
  });
  return {s, "dcs_" + s.id + "_" + secret, impl_->csrf_of(secret)};
}

Session SessionStore::authenticate(std::string_view token, bool record_use) {
  const auto parsed = parse(token);
  if (!parsed) forged();
  const auto presented = hash_hex(parsed->secret);
  auto found = impl_->load(parsed->id);
  if (!found) forged();
  auto& [s, stored] = *found;
  if (stored.size() != presented.size() ||
      sodium_memcmp(stored.data(), presented.data(), stored.size()) != 0) {
    forged();
  }
  const Micros now = impl_->now();
  const Micros idle =
      std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.idle_timeout).count();
  if (s.revoked_at || now >= s.expires_at || now - s.last_seen_at >= idle) invalid();
  // Record use at most once a minute, so authentication stays read-mostly.
  if (record_use && now - s.last_seen_at > 60'000'000) {
    const bool live = impl_->db.write([&](Txn& t) {
      return t.execute("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                       {s.id, now}) > 0;
    });
    if (!live) {
      impl_->cache.erase(Impl::cache_key(s.id));
      invalid();
    }
    s.last_seen_at = now;
    impl_->remember(s, stored);
  }
  return s;
}

bool SessionStore::check_csrf(std::string_view token, std::string_view csrf_token) const {
  const auto parsed = parse(token);
  if (!parsed) return false;
  const auto expected = impl_->csrf_of(parsed->secret);
  return csrf_token.size() == expected.size() &&
         sodium_memcmp(csrf_token.data(), expected.data(), expected.size()) == 0;
}

std::vector<Session> SessionStore::list(std::string_view user_id) {
  const Micros now = impl_->now();
  const Micros idle =
      std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.idle_timeout).count();
  auto rows = impl_->db.read([&](Txn& t) {
    return t.query("SELECT " + std::string(kColumns) +
                       " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > "
                       "$2 AND last_seen_at > $3 ORDER BY id DESC",
                   {user_id, now, now - idle});
  });
  std::vector<Session> out;
  for (const auto& r : rows) out.push_back(from_row(r));
  return out;
}

Session SessionStore::get(std::string_view session_id) {
  auto rows = impl_->db.read([&](Txn& t) {
    return t.query("SELECT " + std::string(kColumns) + " FROM sessions WHERE id = $1",
                   {session_id});
  });
  if (rows.empty()) {
    throw Error(ErrorCode::kNotFound,
                "session \"" + std::string(session_id.substr(0, 64)) + "\" not found");
  }
  return from_row(rows[0]);
}

Session SessionStore::revoke(std::string_view session_id) {
  const Micros now = impl_->now();
  impl_->db.write([&](Txn& t) {
    t.execute("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
              {session_id, now});
  });
  impl_->cache.erase(Impl::cache_key(session_id));
  return get(session_id);
}

int SessionStore::revoke_user(std::string_view user_id) {
  const Micros now = impl_->now();
  std::vector<std::string> ids;
  impl_->db.write([&](Txn& t) {
    ids.clear();
    for (const auto& r :
         t.query("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", {user_id})) {
      ids.push_back(r[0].as_text());
    }
    t.execute("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
              {user_id, now});
  });
  for (const auto& id : ids) impl_->cache.erase(Impl::cache_key(id));
  return static_cast<int>(ids.size());
}

}  // namespace devcycle
