#include "devcycle/auth/api_keys.h"

#include <sodium.h>

#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "auth/address_throttle.h"
#include "auth/sodium.h"
#include "common/field_checks.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle {
namespace {

constexpr std::string_view kColumns =
    "id, prefix, name, owner, role, capabilities, agent_id, created_at, expires_at, revoked_at, "
    "last_used_at";

int rank(Role r) {
  switch (r) {
    case Role::kAdmin:
      return 3;
    case Role::kDeveloper:
      return 2;
    case Role::kViewer:
      return 1;
    case Role::kAgent:
      return 1;
  }
  return 0;
}

std::string hex(const unsigned char* p, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.resize(n * 2);
  return out;
}

std::string secret_hash(std::string_view secret) {
  unsigned char h[crypto_generichash_BYTES];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), nullptr, 0);
  return hex(h, sizeof h);
}

ApiKey from_row(const Row& r) {
  ApiKey k;
  k.id = r[0].as_text();
  k.prefix = r[1].as_text();
  k.name = r[2].as_text();
  k.owner = r[3].as_text();
  k.role = parse_role(r[4].as_text(), "api_keys.role");
  k.capabilities = nlohmann::json::parse(r[5].as_text()).get<std::vector<std::string>>();
  k.agent_id = r[6].is_null() ? "" : r[6].as_text();
  k.created_at = r[7].as_int();
  k.expires_at = r[8].as_optional_int();
  k.revoked_at = r[9].as_optional_int();
  k.last_used_at = r[10].as_optional_int();
  return k;
}

[[noreturn]] void invalid_key() { throw Error(ErrorCode::kUnauthenticated, "invalid API key"); }
// The same words for a key that never was: the caller learns nothing more.
[[noreturn]] void forged_key() { throw internal::ForgedCredential("invalid API key"); }

}  // namespace

std::vector<Migration> ApiKeyStore::migrations() {
  return {
      {"api_keys", 1, "api keys",
       "CREATE TABLE api_keys ("
       " id TEXT PRIMARY KEY, prefix TEXT NOT NULL UNIQUE, secret_hash TEXT NOT NULL, name TEXT "
       "NOT NULL,"
       " owner TEXT NOT NULL, role TEXT NOT NULL, capabilities TEXT NOT NULL, agent_id TEXT,"
       " created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, last_used_at BIGINT);"
       "CREATE INDEX api_keys_owner ON api_keys (owner, id)",
       ""}};
}

ApiKeyStore::ApiKeyStore(Database& db, std::shared_ptr<Clock> clock, UserDirectory* users)
    : db_(db), clock_(std::move(clock)), users_(users) {
  internal::init_sodium();
  if (!clock_) throw Error(ErrorCode::kInvalidArgument, "ApiKeyStore clock: must not be null");
  db_.migrate(migrations());
}

CreatedApiKey ApiKeyStore::create(const Principal& creator, const NewApiKey& spec) {
  internal::check_text("name", spec.name, 128, true);
  if (creator.role == Role::kAgent || creator.role == Role::kViewer) {
    throw Error(ErrorCode::kPermissionDenied,
                "a " + std::string(to_string(creator.role)) + " may not create API keys");
  }
  if (rank(spec.role) > rank(creator.role)) {
    throw Error(ErrorCode::kPermissionDenied, "role: a " + std::string(to_string(creator.role)) +
                                                  " may not create a key with the " +
                                                  std::string(to_string(spec.role)) + " role");
  }
  if (spec.capabilities.size() > 100)
    throw Error(ErrorCode::kInvalidArgument, "capabilities: at most 100");
  for (std::size_t i = 0; i < spec.capabilities.size(); ++i) {
    internal::check_lower_name("capabilities[" + std::to_string(i) + "]", spec.capabilities[i],
                               128);
  }
  if (spec.role == Role::kAgent && !is_uuid(spec.agent_id)) {
    throw Error(ErrorCode::kInvalidArgument,
                "agent_id: an agent key must name the agent it acts as");
  }
  if (spec.role != Role::kAgent && !spec.agent_id.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "agent_id: only keys with the agent role act as an agent");
  }
  const Micros now = clock_->now();
  if (spec.expires_at && *spec.expires_at <= now) {
    throw Error(ErrorCode::kInvalidArgument, "expires_at: must be in the future");
  }
  unsigned char prefix_bytes[6];
  randombytes_buf(prefix_bytes, sizeof prefix_bytes);
  unsigned char secret_bytes[32];
  randombytes_buf(secret_bytes, sizeof secret_bytes);
  std::string secret_b64(
      sodium_base64_ENCODED_LEN(sizeof secret_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
      '\0');
  sodium_bin2base64(secret_b64.data(), secret_b64.size(), secret_bytes, sizeof secret_bytes,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  secret_b64.resize(std::strlen(secret_b64.c_str()));
  sodium_memzero(secret_bytes, sizeof secret_bytes);

  CreatedApiKey out;
  auto& k = out.key;
  k.id = new_uuid_v7();
  k.prefix = "dck_" + hex(prefix_bytes, sizeof prefix_bytes);
  k.name = spec.name;
  k.owner = creator.id;
  k.role = spec.role;
  k.capabilities = spec.capabilities;
  k.agent_id = spec.agent_id;
  k.created_at = now;
  k.expires_at = spec.expires_at;
  out.secret = k.prefix + "_" + secret_b64;
  const auto hash = secret_hash(secret_b64);
  db_.write([&](Txn& t) {
    t.execute(
        "INSERT INTO api_keys (" + std::string(kColumns) +
            ", secret_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10)",
        {k.id, k.prefix, k.name, k.owner, std::string(to_string(k.role)),
         nlohmann::json(k.capabilities).dump(), k.agent_id.empty() ? Value() : Value(k.agent_id),
         k.created_at, Value(k.expires_at), hash});
  });
  return out;
}

std::vector<ApiKey> ApiKeyStore::list(std::string_view owner) {
  return db_.read([&](Txn& t) {
    std::vector<ApiKey> out;
    for (const auto& r : t.query(
             "SELECT " + std::string(kColumns) + " FROM api_keys WHERE owner = $1 ORDER BY id DESC",
             {owner})) {
      out.push_back(from_row(r));
    }
    return out;
  });
}

ApiKey ApiKeyStore::get(std::string_view id) {
  auto rs = db_.read([&](Txn& t) {
    return t.query("SELECT " + std::string(kColumns) + " FROM api_keys WHERE id = $1", {id});
  });
  if (rs.empty())
    throw Error(ErrorCode::kNotFound,
                "api_key \"" + std::string(id.substr(0, 64)) + "\" not found");
  return from_row(rs[0]);
}

ApiKey ApiKeyStore::revoke(std::string_view id) {
  db_.write([&](Txn& t) {
    if (t.execute("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                  {id, clock_->now()}) == 0) {
      throw Error(ErrorCode::kNotFound,
                  "api_key \"" + std::string(id.substr(0, 64)) + "\" not found");
    }
  });
  return get(id);
}

Principal ApiKeyStore::authenticate(std::string_view presented) {
  // dck_ + 12 hex + _ + 43 base64url characters.
  if (presented.size() != 4 + 12 + 1 + 43 || !presented.starts_with("dck_") || presented[16] != '_')
    forged_key();
  const auto prefix = presented.substr(0, 16);
  const auto secret = presented.substr(17);
  auto rs = db_.read([&](Txn& t) {
    return t.query(
        "SELECT " + std::string(kColumns) + ", secret_hash FROM api_keys WHERE prefix = $1",
        {prefix});
  });
  // Hash even when the prefix is unknown, so both paths do the same work.
  const auto presented_hash = secret_hash(secret);
  if (rs.empty()) forged_key();
  const auto& stored = rs[0][11].as_text();
  if (stored.size() != presented_hash.size() ||
      sodium_memcmp(stored.data(), presented_hash.data(), stored.size()) != 0) {
    forged_key();
  }
  const auto key = from_row(rs[0]);
  const Micros now = clock_->now();
  if (key.revoked_at || (key.expires_at && *key.expires_at <= now)) invalid_key();
  // Record use at most once a minute, so authentication stays read-mostly.
  if (!key.last_used_at || now - *key.last_used_at > 60'000'000) {
    try {
      db_.write([&](Txn& t) {
        t.execute("UPDATE api_keys SET last_used_at = $2 WHERE id = $1", {key.id, now});
      });
    } catch (const Error&) {
      // Bookkeeping only: never fail an authentication over it.
    }
  }
  // A key speaks for its owner as the owner is now: never for a deactivated
  // or deleted account, never above the owner's current role.
  Role role = key.role;
  bool must_change_password = false;
  if (users_) {
    UserState owner;
    try {
      owner = users_->state(key.owner);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kNotFound) throw;
      invalid_key();
    }
    if (!owner.active) invalid_key();
    // An agent key acts (claims, completes); an owner demoted to viewer may not.
    if (role == Role::kAgent && owner.role == Role::kViewer) invalid_key();
    if (rank(owner.role) < rank(role)) role = owner.role;
    must_change_password = owner.must_change_password;
  }
  return Principal{key.owner, role, key.capabilities, key.agent_id, must_change_password};
}

}  // namespace devcycle
