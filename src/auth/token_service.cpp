#include <sodium.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "auth/address_throttle.h"
#include "auth/base64url.h"
#include "auth/hmac_sha256.h"
#include "auth/jwt_claims.h"
#include "auth/sealed_box.h"
#include "auth/sodium.h"
#include "common/json_schema_internal.h"
#include "devcycle/auth/tokens.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"

namespace devcycle {

using internal::master_key_bytes;
using internal::open_box;
using internal::random_bytes;
using internal::seal;

using nlohmann::json;

namespace {

constexpr std::size_t kMaxToken = 8 * 1024;
constexpr std::int64_t kMaxNumericDate = 100'000'000'000;  // seconds: year 5138

[[noreturn]] void unauthenticated(const std::string& why) {
  throw Error(ErrorCode::kUnauthenticated, why);
}

// Before its signature is proved, a token is no credential at all.
[[noreturn]] void forged(const std::string& why) { throw internal::ForgedCredential(why); }

std::string b64url(std::string_view bytes) { return internal::base64url_encode(bytes); }

std::optional<std::string> unb64url(std::string_view text) {
  std::string out(internal::base64url_decoded_size(text.size()), '\0');
  const auto n = internal::base64url_decode(text, reinterpret_cast<unsigned char*>(out.data()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n));
  return out;
}

struct Key {
  std::string kid;
  SigningAlgorithm algorithm;
  std::string secret;      // HS256: the HMAC key; EdDSA: the 64-byte secret key
  std::string public_key;  // EdDSA only
  bool active = false;
  Micros created_at = 0;
  std::optional<Micros> retired_at;
  // Derived once per key: the MAC with its pads absorbed (HS256), and the
  // exact header segment this service writes, so that a token carrying it
  // needs no header parsing.
  std::shared_ptr<const internal::HmacSha256> hmac;
  std::string header_segment;
};

std::string header_json(SigningAlgorithm algorithm, const std::string& kid) {
  return json{{"alg", to_string(algorithm)}, {"typ", "JWT"}, {"kid", kid}}.dump();
}

void derive(Key& k) {
  if (k.algorithm == SigningAlgorithm::kHS256)
    k.hmac = std::make_shared<internal::HmacSha256>(k.secret);
  k.header_segment = b64url(header_json(k.algorithm, k.kid));
}

std::int64_t seconds(Micros t) { return t / 1'000'000; }

}  // namespace

std::string_view to_string(SigningAlgorithm a) noexcept {
  return a == SigningAlgorithm::kHS256 ? "HS256" : "EdDSA";
}

std::string generate_master_key_hex() {
  internal::init_sodium();
  const auto bytes = random_bytes(32);
  std::string hex(65, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  hex.resize(64);
  return hex;
}

std::string load_master_key(const std::string& file, std::string_view environment_variable) {
  internal::init_sodium();
  const std::string var(environment_variable);
  if (const char* v = std::getenv(var.c_str()); v && *v) {
    std::string text(v);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    master_key_bytes(text, var);
    return text;
  }
  if (file.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "master key: set " + var + " or name a key file");
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    throw Error(ErrorCode::kInvalidArgument, "master key file " + file + ": cannot be read");
  }
  if ((st.st_mode & 077) != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "master key file " + file +
                    ": must not be readable or writable by group or others (chmod 600)");
  }
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.pop_back();
  master_key_bytes(text, "master key file " + file);
  return text;
}

struct TokenService::Impl {
  Impl(Database& d, Cache& c, std::string m, TokenOptions o, UserDirectory* u)
      : db(d), cache(c), master(std::move(m)), options(std::move(o)), users(u) {}
  Database& db;
  Cache& cache;
  std::string master;
  TokenOptions options;
  UserDirectory* users;
  using KeyPtr = std::shared_ptr<const Key>;
  mutable std::mutex mu;
  std::map<std::string, KeyPtr, std::less<>> keys;            // by kid
  std::map<std::string, KeyPtr, std::less<>> keys_by_header;  // by header segment
  Micros last_reload = 0;
  // Access tokens whose signature and claims were verified, by their exact
  // text: a server sees the same token on every request of a session, and
  // the signature check is most of the cost of one. Expiry and revocation
  // are still checked on every use; the memo is bounded and starts over
  // when full.
  std::mutex verified_mu;
  std::unordered_map<std::string, TokenClaims> verified;  // at most options.verified_memo

  Micros now() const { return options.clock->now(); }

  void load_keys() {
    auto rows = db.read([](Txn& t) {
      return t.query(
          "SELECT kid, algorithm, secret, public_key, active, created_at, retired_at FROM "
          "signing_keys");
    });
    std::map<std::string, KeyPtr, std::less<>> loaded, by_header;
    for (const auto& r : rows) {
      auto k = std::make_shared<Key>();
      k->kid = r[0].as_text();
      k->algorithm =
          r[1].as_text() == "HS256" ? SigningAlgorithm::kHS256 : SigningAlgorithm::kEdDSA;
      const auto secret = open_box(master, r[2].as_blob().str());
      if (!secret) {
        throw Error(ErrorCode::kInvalidArgument,
                    "master key: it does not decrypt signing key " + k->kid +
                        " (a wrong key, or the database of another cluster)");
      }
      k->secret = *secret;
      if (!r[3].is_null()) k->public_key = r[3].as_blob().str();
      k->active = r[4].as_bool();
      k->created_at = r[5].as_int();
      k->retired_at = r[6].as_optional_int();
      derive(*k);
      by_header.emplace(k->header_segment, k);
      loaded.emplace(k->kid, std::move(k));
    }
    std::lock_guard lock(mu);
    keys = std::move(loaded);
    keys_by_header = std::move(by_header);
    last_reload = now();
  }

  Key new_key() const {
    Key k;
    k.kid = new_uuid_v7();
    k.algorithm = options.algorithm;
    k.active = true;
    k.created_at = now();
    if (k.algorithm == SigningAlgorithm::kHS256) {
      k.secret = random_bytes(32);
    } else {
      std::string pk(crypto_sign_PUBLICKEYBYTES, '\0'), sk(crypto_sign_SECRETKEYBYTES, '\0');
      crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                          reinterpret_cast<unsigned char*>(sk.data()));
      k.secret = sk;
      k.public_key = pk;
    }
    return k;
  }

  void insert_key(Txn& t, const Key& k) {
    t.execute(
        "INSERT INTO signing_keys (kid, algorithm, secret, public_key, active, created_at, "
        "retired_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        {k.kid, std::string(to_string(k.algorithm)), Blob::of(seal(master, k.secret)),
         k.public_key.empty() ? Value() : Value(Blob::of(k.public_key)), 1, k.created_at});
  }

  KeyPtr signer() const {
    std::lock_guard lock(mu);
    const KeyPtr* best = nullptr;
    for (const auto& [kid, k] : keys) {
      if (k->active && (!best || k->created_at > (*best)->created_at ||
                        (k->created_at == (*best)->created_at && k->kid > (*best)->kid)))
        best = &k;
    }
    if (!best) throw Error(ErrorCode::kInternal, "no active signing key");
    return *best;
  }

  std::string sign(const Key& k, std::string_view header, std::string_view payload) const {
    const std::string input = b64url(header) + "." + b64url(payload);
    std::string sig;
    if (k.algorithm == SigningAlgorithm::kHS256) {
      const auto mac = internal::HmacSha256(k.secret).mac(input);
      sig.assign(reinterpret_cast<const char*>(mac.data()), mac.size());
    } else {
      sig.resize(crypto_sign_BYTES);
      crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                           reinterpret_cast<const unsigned char*>(k.secret.data()));
    }
    return input + "." + b64url(sig);
  }

  std::string make_token(const User& user, const std::string& type, const std::string& jti,
                         const std::string& family, Micros iat, Micros exp) const {
    const KeyPtr k = signer();
    json payload = {{"iss", options.issuer},
                    {"aud", options.audience},
                    {"sub", user.id},
                    {"iat", seconds(iat)},
                    {"nbf", seconds(iat)},
                    {"exp", seconds(exp)},
                    {"jti", jti},
                    {"typ", type},
                    {"role", to_string(user.role)},
                    {"gen", user.generation}};
    if (!family.empty()) payload["fam"] = family;
    return sign(*k, header_json(k->algorithm, k->kid), payload.dump());
  }

  KeyPtr key(std::string_view kid) {
    {
      std::lock_guard lock(mu);
      if (auto it = keys.find(kid); it != keys.end()) return it->second;
      if (now() - last_reload < 1'000'000) return nullptr;
    }
    load_keys();  // another instance may have rotated
    std::lock_guard lock(mu);
    if (auto it = keys.find(kid); it != keys.end()) return it->second;
    return nullptr;
  }

  KeyPtr key_by_header(std::string_view segment) const {
    std::lock_guard lock(mu);
    const auto it = keys_by_header.find(segment);
    return it == keys_by_header.end() ? nullptr : it->second;
  }

  // The header names the key; the key decides the algorithm, and the
  // token's alg must merely agree with it.
  KeyPtr key_for_header(std::string_view segment) {
    if (auto k = key_by_header(segment)) return k;  // the exact header we write
    const auto text = unb64url(segment);
    if (!text) forged("token: a part is not base64url");
    json header;
    try {
      header = internal::parse_json(*text, "token header");
    } catch (const Error& e) {
      forged(e.what());
    }
    if (!header.is_object()) forged("token: header and payload must be JSON objects");
    const auto alg = header.find("alg");
    const auto kid = header.find("kid");
    if (alg == header.end() || !alg->is_string()) forged("token: no alg");
    if (kid == header.end() || !kid->is_string()) forged("token: no kid");
    auto k = key(kid->get<std::string>());
    if (!k) forged("token: unknown key id");
    if (alg->get<std::string>() != to_string(k->algorithm)) {
      forged("token: alg does not match its key");
    }
    return k;
  }

  TokenClaims verify(std::string_view token, std::string_view expected_type) {
    if (token.size() > kMaxToken) forged("token: larger than 8 KiB");
    const auto d1 = token.find('.');
    const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d1 == std::string_view::npos || d2 == std::string_view::npos ||
        token.find('.', d2 + 1) != std::string_view::npos) {
      forged("token: not a JWT (expected three dot-separated parts)");
    }
    const KeyPtr k = key_for_header(token.substr(0, d1));

    // The signature is checked before anything in the payload is read.
    const auto signature_text = token.substr(d2 + 1);
    unsigned char signature[internal::base64url_decoded_size(88)];
    const auto signature_size =
        signature_text.size() > 88 ? -1 : internal::base64url_decode(signature_text, signature);
    if (signature_size < 0) forged("token: a part is not base64url");
    const std::string_view input = token.substr(0, d2);
    bool valid = false;
    if (k->algorithm == SigningAlgorithm::kHS256) {
      valid = signature_size == internal::HmacSha256::kSize && k->hmac->verify(input, signature);
    } else if (signature_size == crypto_sign_BYTES) {
      valid = crypto_sign_verify_detached(
                  signature, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                  reinterpret_cast<const unsigned char*>(k->public_key.data())) == 0;
    }
    if (!valid) forged("token: bad signature");
    const Micros at = now();
    if (k->retired_at &&
        at > *k->retired_at +
                 std::chrono::duration_cast<std::chrono::microseconds>(options.refresh_ttl)
                     .count()) {
      unauthenticated("token: signed by a retired key");
    }

    const auto payload_text = token.substr(d1 + 1, d2 - d1 - 1);
    unsigned char payload_bytes[internal::base64url_decoded_size(kMaxToken)];
    const auto payload_size = internal::base64url_decode(payload_text, payload_bytes);
    if (payload_size < 0) unauthenticated("token: a part is not base64url");
    const std::string_view payload(reinterpret_cast<const char*>(payload_bytes),
                                   static_cast<std::size_t>(payload_size));
    internal::RawClaims claims;
    json document;  // owns the views in `claims` when the full parser reads them
    if (!internal::read_flat_claims(payload, claims)) {
      try {
        document = internal::parse_json(payload, "token payload");
      } catch (const Error& e) {
        unauthenticated(e.what());
      }
      if (!document.is_object()) unauthenticated("token: header and payload must be JSON objects");
      internal::read_claims(document, claims);
    }
    return check(claims, expected_type, at);
  }

  TokenClaims check(const internal::RawClaims& c, std::string_view expected_type, Micros at) const {
    auto need = [](const auto& field, const char* name) {
      if (!field) unauthenticated(std::string("token: no ") + name);
      return *field;
    };
    if (need(c.iss, "iss") != options.issuer) unauthenticated("token: wrong issuer");
    bool aud_ok = false;
    for (const auto a : c.aud) aud_ok = aud_ok || a == options.audience;
    if (!aud_ok) unauthenticated("token: wrong audience");
    const std::int64_t t = seconds(at);
    const std::int64_t leeway = options.leeway.count();
    // NumericDates far outside any real clock are refused before any
    // arithmetic on them could overflow.
    auto date = [&](const std::optional<std::int64_t>& field, const char* name) {
      const auto v = need(field, name);
      if (v < 0 || v > kMaxNumericDate)
        unauthenticated(std::string("token: ") + name + " is out of range");
      return v;
    };
    const auto exp = date(c.exp, "exp");
    if (exp + leeway <= t) unauthenticated("token: expired");
    if (date(c.nbf, "nbf") - leeway > t) unauthenticated("token: not valid yet (nbf)");
    const auto iat = date(c.iat, "iat");
    if (iat - leeway > t) unauthenticated("token: issued in the future (iat)");
    const auto type = need(c.typ, "typ");
    if (type != expected_type) {
      auto a = [](std::string_view kind) {
        return (kind == "access" ? "an " : "a ") + std::string(kind) + " token";
      };
      unauthenticated("token: " + a(type) + " where " + a(expected_type) + " is needed");
    }
    TokenClaims out;
    out.subject = need(c.sub, "sub");
    out.jti = need(c.jti, "jti");
    out.role = need(c.role, "role");
    out.type = type;
    if (c.fam) out.family = *c.fam;
    out.generation = c.gen.value_or(0);
    out.issued_at = iat * 1'000'000;
    out.expires_at = exp * 1'000'000;
    return out;
  }

  // The cache is the fast path for revocations; the database is the truth.
  // Every few seconds the live rows go (back) into the cache, so that a
  // cache that lost them (a Redis restart, another server's memory cache)
  // cannot bring a logged-out token back for longer than that.
  static constexpr Micros kRevocationReload = 5'000'000;
  std::atomic<Micros> revocations_loaded_at{0};

  void reload_revocations_if_due() {
    const Micros at = now();
    Micros last = revocations_loaded_at.load();
    if (at - last < kRevocationReload) return;
    if (!revocations_loaded_at.compare_exchange_strong(last, at)) return;  // another thread does
    try {
      const auto rows = db.read([&](Txn& t) {
        return t.query("SELECT jti, expires_at FROM revoked_access_tokens WHERE expires_at >= $1",
                       {at});
      });
      for (const auto& r : rows) remember_revoked(r[0].as_text(), r[1].as_int());
    } catch (const Error&) {
      revocations_loaded_at.store(last);  // try again at the next verification
    }
  }

  void remember_revoked(const std::string& jti, Micros until) {
    const auto left = std::max<Micros>(1000, until - now());
    cache.set("revoked-jti:" + jti, "1", std::chrono::milliseconds(left / 1000 + 1));
  }

  TokenPair pair(const User& user, const std::string& family, Txn& t) {
    if (users) {
      // The account as read before a (slow) password check may have changed
      // since: a login racing a password change or deactivation must not
      // outlive it (the change's revoke_user may already have run).
      const auto rs = t.query("SELECT generation, active FROM users WHERE id = $1", {user.id});
      if (!rs.empty() && (rs[0][0].as_int() != user.generation || !rs[0][1].as_bool())) {
        unauthenticated("the account changed while logging in; log in again");
      }
    }
    const Micros at = now();
    TokenPair p;
    p.access_expires_at =
        at + std::chrono::duration_cast<std::chrono::microseconds>(options.access_ttl).count();
    p.refresh_expires_at =
        at + std::chrono::duration_cast<std::chrono::microseconds>(options.refresh_ttl).count();
    const auto refresh_jti = new_uuid_v7();
    p.access_token = make_token(user, "access", new_uuid_v7(), "", at, p.access_expires_at);
    p.refresh_token = make_token(user, "refresh", refresh_jti, family, at, p.refresh_expires_at);
    t.execute(
        "INSERT INTO refresh_tokens (jti, family, user_id, role, expires_at, used_at, revoked_at, "
        "created_at) "
        "VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)",
        {refresh_jti, family, user.id, std::string(to_string(user.role)), p.refresh_expires_at,
         at});
    return p;
  }
};

std::vector<Migration> TokenService::migrations() {
  return {
      {"tokens", 1, "signing keys and refresh tokens",
       "CREATE TABLE signing_keys ("
       " kid TEXT PRIMARY KEY, algorithm TEXT NOT NULL, secret BLOB NOT NULL, public_key BLOB,"
       " active BIGINT NOT NULL, created_at BIGINT NOT NULL, retired_at BIGINT);"
       "CREATE TABLE refresh_tokens ("
       " jti TEXT PRIMARY KEY, family TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL,"
       " expires_at BIGINT NOT NULL, used_at BIGINT, revoked_at BIGINT, created_at BIGINT NOT "
       "NULL);"
       "CREATE INDEX refresh_tokens_family ON refresh_tokens (family);"
       "CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id)",
       "CREATE TABLE signing_keys ("
       " kid TEXT PRIMARY KEY, algorithm TEXT NOT NULL, secret BYTEA NOT NULL, public_key BYTEA,"
       " active BIGINT NOT NULL, created_at BIGINT NOT NULL, retired_at BIGINT);"
       "CREATE TABLE refresh_tokens ("
       " jti TEXT PRIMARY KEY, family TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL,"
       " expires_at BIGINT NOT NULL, used_at BIGINT, revoked_at BIGINT, created_at BIGINT NOT "
       "NULL);"
       "CREATE INDEX refresh_tokens_family ON refresh_tokens (family);"
       "CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id)"},
      // Logouts, kept until the token would have expired: the cache holds
      // them for the fast path, the database so that a restart (or a cache
      // that lost them) cannot bring a revoked token back.
      {"tokens", 2, "revoked access tokens",
       "CREATE TABLE revoked_access_tokens (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
       ""}};
}

TokenService::TokenService(Database& db, Cache& cache, std::string_view master_key,
                           TokenOptions options, UserDirectory* users) {
  internal::init_sodium();
  if (!options.clock)
    throw Error(ErrorCode::kInvalidArgument, "TokenOptions.clock: must not be null");
  if (options.access_ttl.count() <= 0 || options.refresh_ttl.count() <= 0 ||
      options.leeway.count() < 0 || options.leeway > std::chrono::minutes(5)) {
    throw Error(ErrorCode::kInvalidArgument,
                "TokenOptions: lifetimes must be positive and the leeway at most 5 minutes");
  }
  if (options.issuer.empty() || options.audience.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "TokenOptions: issuer and audience must not be empty");
  }
  db.migrate(migrations());
  impl_ = std::make_unique<Impl>(db, cache, master_key_bytes(master_key, "master key"),
                                 std::move(options), users);
  impl_->load_keys();
  bool has_active = false;
  {
    std::lock_guard lock(impl_->mu);
    for (const auto& [kid, k] : impl_->keys) has_active = has_active || k->active;
  }
  if (!has_active) {
    const Key k = impl_->new_key();
    db.write([&](Txn& t) { impl_->insert_key(t, k); });
    impl_->load_keys();
  }
  // Revocations still in force go (back) into the cache, which verification
  // reads; those past their time go.
  const Micros at = impl_->now();
  const auto live = db.write([&](Txn& t) {
    t.execute("DELETE FROM revoked_access_tokens WHERE expires_at < $1", {at});
    return t.query("SELECT jti, expires_at FROM revoked_access_tokens");
  });
  for (const auto& r : live) impl_->remember_revoked(r[0].as_text(), r[1].as_int());
  impl_->revocations_loaded_at.store(at);
}

TokenService::~TokenService() = default;

TokenPair TokenService::issue(const User& user) {
  if (!user.active) unauthenticated("user is deactivated");
  return impl_->db.write([&](Txn& t) { return impl_->pair(user, new_uuid_v7(), t); });
}

TokenClaims TokenService::verify_access(std::string_view token) {
  std::optional<TokenClaims> memo;
  const bool memoize = impl_->options.verified_memo > 0;
  if (memoize) {
    std::lock_guard lock(impl_->verified_mu);
    if (auto it = impl_->verified.find(std::string(token)); it != impl_->verified.end()) {
      memo = it->second;
    }
  }
  const Micros leeway =
      std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.leeway).count();
  if (memo && impl_->now() > memo->expires_at + leeway) memo.reset();  // verify() says why
  TokenClaims claims = memo ? std::move(*memo) : impl_->verify(token, "access");
  impl_->reload_revocations_if_due();
  if (impl_->cache.get("revoked-jti:" + claims.jti)) unauthenticated("token: revoked");
  if (!memo && memoize) {
    std::lock_guard lock(impl_->verified_mu);
    if (impl_->verified.size() >= impl_->options.verified_memo) impl_->verified.clear();
    impl_->verified.emplace(std::string(token), claims);
  }
  return claims;
}

TokenPair TokenService::refresh(std::string_view refresh_token) {
  const auto claims = impl_->verify(refresh_token, "refresh");
  std::optional<User> user;
  if (impl_->users) {
    try {
      user = impl_->users->get(claims.subject);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kNotFound) throw;
    }
  }
  enum class Outcome { kOk, kUnknown, kRevoked, kReused, kInactive };
  TokenPair result;
  const auto outcome = impl_->db.write([&](Txn& t) {
    auto rs = t.query(
        "SELECT family, user_id, role, used_at, revoked_at FROM refresh_tokens WHERE jti = $1",
        {claims.jti});
    if (rs.empty()) return Outcome::kUnknown;
    const auto family = rs[0][0].as_text();
    if (!rs[0][4].is_null()) return Outcome::kRevoked;
    const Micros at = impl_->now();
    if (!rs[0][3].is_null()) {
      // A spent token came back: someone holds a copy. End the whole family.
      t.execute(
          "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
          {family, at});
      return Outcome::kReused;
    }
    if (impl_->users && (!user || !user->active)) {
      t.execute(
          "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL",
          {family, at});
      return Outcome::kInactive;
    }
    t.execute("UPDATE refresh_tokens SET used_at = $2 WHERE jti = $1", {claims.jti, at});
    User u;
    if (user) {
      u = *user;
    } else {
      u.id = rs[0][1].as_text();
      u.role = parse_role(rs[0][2].as_text(), "refresh_tokens.role");
    }
    result = impl_->pair(u, family, t);
    return Outcome::kOk;
  });
  switch (outcome) {
    case Outcome::kOk:
      return result;
    case Outcome::kUnknown:
      unauthenticated("refresh token: unknown");
    case Outcome::kRevoked:
      unauthenticated("refresh token: revoked");
    case Outcome::kReused:
      unauthenticated("refresh token: already used; every token of its login is now revoked");
    case Outcome::kInactive:
      unauthenticated("refresh token: the user is deactivated or gone");
  }
  unauthenticated("refresh token: refused");
}

void TokenService::revoke(std::string_view access_token, std::string_view refresh_token) {
  if (!access_token.empty()) {
    const auto c = impl_->verify(access_token, "access");
    const Micros until =
        c.expires_at +
        std::chrono::duration_cast<std::chrono::microseconds>(impl_->options.leeway).count();
    impl_->db.write([&](Txn& t) {
      t.execute(
          "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) "
          "ON CONFLICT (jti) DO NOTHING",
          {c.jti, until});
    });
    impl_->remember_revoked(c.jti, until);
  }
  if (!refresh_token.empty()) {
    const auto c = impl_->verify(refresh_token, "refresh");
    impl_->db.write([&](Txn& t) {
      t.execute(
          "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = (SELECT family FROM "
          "refresh_tokens WHERE jti = $1) "
          "AND revoked_at IS NULL",
          {c.jti, impl_->now()});
    });
  }
}

void TokenService::revoke_user(std::string_view user_id) {
  impl_->db.write([&](Txn& t) {
    t.execute("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
              {user_id, impl_->now()});
  });
}

std::string TokenService::rotate_signing_key() {
  const Key k = impl_->new_key();
  impl_->db.write([&](Txn& t) {
    t.execute("UPDATE signing_keys SET active = 0, retired_at = $1 WHERE active = 1",
              {impl_->now()});
    impl_->insert_key(t, k);
  });
  impl_->load_keys();
  return k.kid;
}

std::string TokenService::active_key_id() const { return impl_->signer()->kid; }

std::string TokenService::sign_raw_for_tests(std::string_view header_json,
                                             std::string_view payload_json, std::string_view kid) {
  const auto k = impl_->key(kid);
  if (!k) throw Error(ErrorCode::kNotFound, "signing key " + std::string(kid) + " not found");
  return impl_->sign(*k, header_json, payload_json);
}

std::string TokenService::public_key_for_tests(std::string_view kid) const {
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->keys.find(kid);
  return it == impl_->keys.end() ? std::string() : it->second->public_key;
}

}  // namespace devcycle
