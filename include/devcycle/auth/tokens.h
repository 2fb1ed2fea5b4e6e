// Tokens: JWT access tokens and rotating refresh tokens, signed with keys
// that live in the database encrypted under a master key, so that every
// instance of a cluster verifies every other's tokens.
//
// Verification is strict: the key named by `kid` (matched exactly) pins the
// algorithm — a token's `alg` never chooses it, and `none` never verifies;
// iss, aud, exp, nbf and iat are checked with a small leeway; the token type
// is checked (a refresh token is never an access token); jku, jwk and x5u
// headers are ignored and never fetched; tokens over 8 KiB are refused.
// Every refusal is Error{kUnauthenticated} with the reason.
//
// Refresh tokens rotate: each use returns a new pair and spends the old
// token. Using a spent refresh token again revokes its whole family (all
// tokens descended from one login). Revoked access tokens are remembered in
// the Cache until they expire.
//
// Thread-safety: a TokenService may be used from any number of threads.
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

enum class SigningAlgorithm { kHS256, kEdDSA };
std::string_view to_string(SigningAlgorithm a) noexcept;

// Reads the 32-byte master key: from the environment variable (64 hex
// digits, or base64) when set, else from `file`, which must be mode 0600 or
// stricter. Throws Error{kInvalidArgument} naming the source when the key is
// missing, malformed, all zeros or a known default, or the file is readable
// by others.
std::string load_master_key(const std::string& file,
                            std::string_view environment_variable = "DEVCYCLE_MASTER_KEY");

// 32 random bytes as 64 hex digits, for `devcycle admin keygen` and tests.
std::string generate_master_key_hex();

struct TokenOptions {
  std::string issuer = "devcycle";
  std::string audience = "devcycle";
  std::chrono::seconds access_ttl{15 * 60};
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};
  std::chrono::seconds leeway{30};
  SigningAlgorithm algorithm = SigningAlgorithm::kEdDSA;  // for newly generated keys
  std::shared_ptr<Clock> clock = SystemClock::instance();
  // Access tokens whose signature and claims were verified, remembered by
  // their text (expiry and revocation are still checked at each use); the
  // memo starts over when full. 0: none, every use verifies in full (the
  // cold path benchmarks measure).
  std::size_t verified_memo = 16'384;
};

struct TokenPair {
  std::string access_token;
  std::string refresh_token;
  Micros access_expires_at = 0;
  Micros refresh_expires_at = 0;
};

struct TokenClaims {
  std::string subject;  // user id
  std::string role;
  std::string jti;
  std::string type;             // "access" or "refresh"
  std::string family;           // refresh tokens: the login they descend from
  std::int64_t generation = 0;  // the user's generation when issued (User::generation)
  Micros issued_at = 0;
  Micros expires_at = 0;
};

class TokenService {
 public:
  static std::vector<Migration> migrations();

  // `master_key` is 32 raw bytes (see load_master_key, which returns hex:
  // both forms are accepted). Creates a signing key on first start. Throws
  // Error{kInvalidArgument} when the master key cannot decrypt the stored
  // keys (a wrong key, or another cluster's database). `users`, when given,
  // is asked on refresh whether the user is still active.
  TokenService(Database& db, Cache& cache, std::string_view master_key, TokenOptions options = {},
               UserDirectory* users = nullptr);
  ~TokenService();
  TokenService(const TokenService&) = delete;
  TokenService& operator=(const TokenService&) = delete;

  // A new login: a new refresh-token family.
  TokenPair issue(const User& user);
  TokenClaims verify_access(std::string_view token);
  // Spends `refresh_token` and returns a new pair of the same family.
  TokenPair refresh(std::string_view refresh_token);
  // Logout: revokes the access token and the family of the refresh token
  // (either may be empty).
  void revoke(std::string_view access_token, std::string_view refresh_token);
  // After a password change or deactivation: every refresh token of the user.
  void revoke_user(std::string_view user_id);

  // Starts signing with a new key; older keys still verify until every token
  // they signed has expired.
  std::string rotate_signing_key();
  std::string active_key_id() const;

  // For tests and tools: signs arbitrary header and payload JSON with a
  // stored key (the header's kid and alg are used as given).
  std::string sign_raw_for_tests(std::string_view header_json, std::string_view payload_json,
                                 std::string_view kid);
  // The public key (Ed25519) or nothing (HS256) of a stored key.
  std::string public_key_for_tests(std::string_view kid) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace devcycle
