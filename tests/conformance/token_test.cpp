// Tokens over every Database backend, and the JWT attack suite.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "devcycle/auth/tokens.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string b64url(std::string_view s) {
  std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()),
                    s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::string part(const std::string& token, int i) {
  std::size_t start = 0;
  for (int k = 0; k < i; ++k) start = token.find('.', start) + 1;
  return token.substr(start, token.find('.', start) - start);
}

json decode(const std::string& b64) {
  std::string out(b64.size(), '\0');
  std::size_t len = 0;
  sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), b64.data(),
                    b64.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(len);
  return json::parse(out);
}

class TokenTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    cache_ = testing::test_cache(clock_);
    service_ = make_service(SigningAlgorithm::kEdDSA);
    user_.id = "0190c8a0-0000-7000-8000-0000000000aa";
    user_.email = "alice@example.com";
    user_.username = "alice";
    user_.role = Role::kDeveloper;
  }

  std::unique_ptr<TokenService> make_service(SigningAlgorithm alg,
                                             const std::string& key = kMaster) {
    TokenOptions o;
    o.clock = clock_;
    o.algorithm = alg;
    return std::make_unique<TokenService>(*db_, *cache_, key, o);
  }

  // A payload like the service's own, for hand-made tokens.
  json payload(const std::string& type = "access") const {
    const auto now = clock_->now() / 1'000'000;
    return {{"iss", "devcycle"}, {"aud", "devcycle"}, {"sub", user_.id},
            {"iat", now},        {"nbf", now},        {"exp", now + 900},
            {"jti", "j-1"},      {"typ", type},       {"role", "admin"}};
  }
  json header(const std::string& alg = "EdDSA") const {
    return {{"alg", alg}, {"typ", "JWT"}, {"kid", service_->active_key_id()}};
  }

  static constexpr const char* kMaster =
      "8f14e45fceea167a5a36dedd4bea2543c9f0f895fb98ab9159f51fd0297e236d";
  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<TokenService> service_;
  User user_;
};

TEST_P(TokenTest, IssuedTokensVerifyWithTheirClaims) {
  const auto pair = service_->issue(user_);
  const auto c = service_->verify_access(pair.access_token);
  EXPECT_EQ(c.subject, user_.id);
  EXPECT_EQ(c.role, "developer");
  EXPECT_EQ(c.type, "access");
  EXPECT_EQ(pair.access_expires_at, clock_->now() + 900'000'000);
  const auto h = decode(part(pair.access_token, 0));
  EXPECT_EQ(h["alg"], "EdDSA");
  EXPECT_EQ(h["kid"], service_->active_key_id());
}

TEST_P(TokenTest, Hs256KeysWorkToo) {
  auto hs = make_service(
      SigningAlgorithm::kHS256);  // the table already has an EdDSA key: it keeps signing
  EXPECT_EQ(decode(part(hs->issue(user_).access_token, 0))["alg"], "EdDSA");
  hs->rotate_signing_key();  // new keys now follow the service's algorithm
  const auto pair = hs->issue(user_);
  EXPECT_EQ(decode(part(pair.access_token, 0))["alg"], "HS256");
  EXPECT_EQ(hs->verify_access(pair.access_token).subject, user_.id);
}

TEST_P(TokenTest, AttackSuite) {
  const auto good = service_->issue(user_);
  auto refused = [&](const std::string& token, const std::string& why) {
    EXPECT_DEVCYCLE_ERROR(service_->verify_access(token), ErrorCode::kUnauthenticated, why);
  };
  const std::string kid = service_->active_key_id();
  // alg=none, with and without a signature.
  const auto none_header = json{{"alg", "none"}, {"typ", "JWT"}, {"kid", kid}}.dump();
  refused(b64url(none_header) + "." + b64url(payload().dump()) + ".", "alg does not match");
  refused(b64url(none_header) + "." + b64url(payload().dump()), "three dot-separated parts");
  // HS256 "signed" with the Ed25519 public key as the HMAC secret.
  {
    const auto pub = service_->public_key_for_tests(kid);
    ASSERT_EQ(pub.size(), 32u);
    const auto input = b64url(header("HS256").dump()) + "." + b64url(payload().dump());
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(pub.data()),
                                pub.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()),
                                  input.size());
    crypto_auth_hmacsha256_final(&st, mac);
    refused(input + "." + b64url(std::string(reinterpret_cast<char*>(mac), sizeof mac)),
            "alg does not match");
  }
  // Tampered payload (role raised) and tampered signature.
  {
    auto p = decode(part(good.access_token, 1));
    p["role"] = "admin";
    refused(part(good.access_token, 0) + "." + b64url(p.dump()) + "." + part(good.access_token, 2),
            "bad signature");
    auto sig = part(good.access_token, 2);
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    refused(part(good.access_token, 0) + "." + part(good.access_token, 1) + "." + sig,
            "bad signature");
  }
  // Expired, not yet valid, issued in the future (beyond the 30 s leeway).
  {
    auto p = payload();
    p["exp"] = clock_->now() / 1'000'000 - 31;
    refused(service_->sign_raw_for_tests(header().dump(), p.dump(), kid), "expired");
    p = payload();
    p["exp"] = clock_->now() / 1'000'000 - 10;  // within the leeway: accepted
    EXPECT_NO_THROW(
        service_->verify_access(service_->sign_raw_for_tests(header().dump(), p.dump(), kid)));
    p = payload();
    p["nbf"] = clock_->now() / 1'000'000 + 120;
    refused(service_->sign_raw_for_tests(header().dump(), p.dump(), kid), "nbf");
    p = payload();
    p["iat"] = clock_->now() / 1'000'000 + 120;
    refused(service_->sign_raw_for_tests(header().dump(), p.dump(), kid), "iat");
  }
  // Wrong issuer and audience; missing claims.
  {
    auto p = payload();
    p["iss"] = "someone-else";
    refused(service_->sign_raw_for_tests(header().dump(), p.dump(), kid), "wrong issuer");
    p = payload();
    p["aud"] = json::array({"other", "another"});
    refused(service_->sign_raw_for_tests(header().dump(), p.dump(), kid), "wrong audience");
    p = payload();
    p.erase("exp");
    refused(service_->sign_raw_for_tests(header().dump(), p.dump(), kid), "no exp");
  }
  // A refresh token is never an access token, and the other way round.
  refused(good.refresh_token, "a refresh token where an access token is needed");
  EXPECT_DEVCYCLE_ERROR(service_->refresh(good.access_token), ErrorCode::kUnauthenticated,
                        "an access token where a refresh token is needed");
  // Unknown kid, and kids that look like paths or injections.
  for (const std::string& bad_kid : {std::string("no-such-key"), "../" + kid, kid + "\"",
                                     std::string("' OR 1=1 --"), kid + " "}) {
    auto h = header();
    h["kid"] = bad_kid;
    refused(b64url(h.dump()) + "." + part(good.access_token, 1) + "." + part(good.access_token, 2),
            "unknown key id");
  }
  {
    auto h = header();
    h.erase("kid");
    refused(b64url(h.dump()) + "." + part(good.access_token, 1) + "." + part(good.access_token, 2),
            "no kid");
  }
  // jku / jwk / x5u headers are ignored: they neither help nor break a token.
  {
    auto h = header();
    h["jku"] = "http://127.0.0.1:1/keys.json";
    h["jwk"] = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "AAAA"}};
    h["x5u"] = "http://127.0.0.1:1/cert.pem";
    EXPECT_NO_THROW(
        service_->verify_access(service_->sign_raw_for_tests(h.dump(), payload().dump(), kid)));
    // ... and a token signed by a key they point to is still judged by our key.
    refused(b64url(h.dump()) + "." + b64url(payload().dump()) + "." + part(good.access_token, 2),
            "bad signature");
  }
  // Oversized and malformed tokens.
  refused(std::string(9000, 'a'), "larger than 8 KiB");
  refused("a.b.c", "not base64url");
  refused("e30.e30.e30.e30", "three dot-separated parts");
  refused(b64url("[1]") + "." + b64url("{}") + ".AAAA", "must be JSON objects");
  refused(b64url("{not json") + "." + b64url("{}") + ".AAAA", "not valid JSON");
  refused("", "three dot-separated parts");
}

// HS256 verification takes a fast path for the exact header and flat payload
// the service writes; everything else goes through the full JSON parser. Both
// must refuse the same things.
TEST_P(TokenTest, Hs256AttackSuite) {
  auto hs = make_service(SigningAlgorithm::kHS256);
  const std::string kid = hs->rotate_signing_key();
  const auto good = hs->issue(user_);
  ASSERT_EQ(decode(part(good.access_token, 0))["alg"], "HS256");
  auto refused = [&](const std::string& token, const std::string& why) {
    EXPECT_DEVCYCLE_ERROR(hs->verify_access(token), ErrorCode::kUnauthenticated, why);
  };
  const auto h = json{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", kid}};
  const auto head = part(good.access_token, 0), body = part(good.access_token, 1),
             sig = part(good.access_token, 2);
  // Tampered payload, signature, and a signature spelt with unused bits set
  // (the same bytes under another spelling is still a different token).
  auto p = decode(body);
  p["role"] = "admin";
  refused(head + "." + b64url(p.dump()) + "." + sig, "bad signature");
  auto bad = sig;
  bad[3] = bad[3] == 'A' ? 'B' : 'A';
  refused(head + "." + body + "." + bad, "bad signature");
  bad = sig;
  bad.back() = static_cast<char>(bad.back() + 1);
  refused(head + "." + body + "." + bad, "not base64url");
  refused(head + "." + body + "." + sig + "AAAA", "bad signature");
  refused(head + "." + body + ".", "bad signature");
  refused(head + "." + body + "." + sig + "=", "not base64url");
  // alg in the header disagrees with the HS256 key; none.
  for (const char* alg : {"EdDSA", "none", "HS512", "hs256"}) {
    auto other = h;
    other["alg"] = alg;
    refused(b64url(other.dump()) + "." + body + "." + sig, "alg does not match");
  }
  // The same header in another key order is not the fast path's header, but
  // it names the same key and verifies when correctly signed.
  const std::string reordered = R"({"kid":")" + kid + R"(","typ":"JWT","alg":"HS256"})";
  EXPECT_NO_THROW(hs->verify_access(hs->sign_raw_for_tests(reordered, payload().dump(), kid)));
  refused(b64url(reordered) + "." + body + "." + sig, "bad signature");
  // Payloads outside the flat subset are judged by the full parser.
  {
    auto q = payload();
    q["sub"] = "user \"quoted\" \u00e9";
    q["aud"] = json::array({"other", "devcycle"});
    q["extra"] = {{"nested", {1, 2.5, nullptr}}};
    const auto c = hs->verify_access(hs->sign_raw_for_tests(h.dump(), q.dump(), kid));
    EXPECT_EQ(c.subject, "user \"quoted\" \u00e9");
  }
  for (const auto& [field, value, why] : std::vector<std::tuple<std::string, json, std::string>>{
           {"exp", 1.5e9, "no exp"},
           {"exp", "2000000000", "no exp"},
           {"iss", json::array({"devcycle"}), "no iss"},
           {"typ", "refresh", "a refresh token where an access token is needed"},
           {"aud", 5, "wrong audience"},
           {"nbf", nullptr, "no nbf"},
           {"exp", json::number_unsigned_t{18446744073709551615u}, "exp is out of range"},
           {"exp", std::numeric_limits<std::int64_t>::max(), "exp is out of range"},
           {"nbf", std::numeric_limits<std::int64_t>::min(), "nbf is out of range"},
           {"iat", -1, "iat is out of range"}}) {
    auto q = payload();
    q[field] = value;
    refused(hs->sign_raw_for_tests(h.dump(), q.dump(), kid), why);
  }
  refused(hs->sign_raw_for_tests(h.dump(), R"({"iss":"devcycle",)", kid), "not valid JSON");
  refused(hs->sign_raw_for_tests(h.dump(), "[]", kid), "must be JSON objects");
  // Revocation applies to fast-path tokens too.
  EXPECT_NO_THROW(hs->verify_access(good.access_token));
  hs->revoke(good.access_token, "");
  refused(good.access_token, "revoked");
}

TEST_P(TokenTest, RefreshRotatesAndReuseRevokesTheFamily) {
  const auto first = service_->issue(user_);
  clock_->advance(1s);
  const auto second = service_->refresh(first.refresh_token);
  EXPECT_NE(second.refresh_token, first.refresh_token);
  EXPECT_NO_THROW(service_->verify_access(second.access_token));
  const auto third = service_->refresh(second.refresh_token);
  // The spent first token comes back: theft. Everything of that login dies.
  EXPECT_DEVCYCLE_ERROR(service_->refresh(first.refresh_token), ErrorCode::kUnauthenticated,
                        "already used");
  EXPECT_DEVCYCLE_ERROR(service_->refresh(third.refresh_token), ErrorCode::kUnauthenticated,
                        "revoked");
  // Another login of the same user is untouched.
  const auto other = service_->issue(user_);
  EXPECT_NO_THROW(service_->refresh(other.refresh_token));
}

TEST_P(TokenTest, LogoutRevokesAccessAndRefresh) {
  const auto pair = service_->issue(user_);
  service_->revoke(pair.access_token, pair.refresh_token);
  EXPECT_DEVCYCLE_ERROR(service_->verify_access(pair.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
  EXPECT_DEVCYCLE_ERROR(service_->refresh(pair.refresh_token), ErrorCode::kUnauthenticated,
                        "revoked");
  // The revocation outlives nothing: after the token's expiry it is simply expired.
  clock_->advance(16min);
  EXPECT_DEVCYCLE_ERROR(service_->verify_access(pair.access_token), ErrorCode::kUnauthenticated,
                        "expired");
}

TEST_P(TokenTest, AVerifiedTokenIsStillRefusedOnceRevokedOrExpired) {
  // Verifications are remembered; revocation and expiry are not.
  const auto pair = service_->issue(user_);
  EXPECT_EQ(service_->verify_access(pair.access_token).subject, user_.id);
  EXPECT_EQ(service_->verify_access(pair.access_token).subject, user_.id);
  clock_->advance(15min);  // at the expiry, within the leeway
  EXPECT_EQ(service_->verify_access(pair.access_token).subject, user_.id);
  clock_->advance(31s);
  EXPECT_DEVCYCLE_ERROR(service_->verify_access(pair.access_token), ErrorCode::kUnauthenticated,
                        "expired");

  const auto other = service_->issue(user_);
  EXPECT_EQ(service_->verify_access(other.access_token).subject, user_.id);
  service_->revoke(other.access_token, "");
  EXPECT_DEVCYCLE_ERROR(service_->verify_access(other.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
  // A token that differs in one byte is checked afresh, not taken from memory.
  auto forged = other.access_token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_DEVCYCLE_ERROR(service_->verify_access(forged), ErrorCode::kUnauthenticated, "");
}

// Issue #32: benchmarks turn the memo off to measure the cold path; a
// service without it checks the same things on every use.
TEST_P(TokenTest, WithoutTheMemoEveryUseVerifiesInFull) {
  TokenOptions o;
  o.clock = clock_;
  o.verified_memo = 0;
  TokenService cold(*db_, *cache_, kMaster, o);
  const auto pair = cold.issue(user_);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cold.verify_access(pair.access_token).subject, user_.id);
  cold.revoke(pair.access_token, "");
  EXPECT_DEVCYCLE_ERROR(cold.verify_access(pair.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
  const auto other = cold.issue(user_);
  clock_->advance(16min);
  EXPECT_DEVCYCLE_ERROR(cold.verify_access(other.access_token), ErrorCode::kUnauthenticated,
                        "expired");
}

TEST_P(TokenTest, RevokingAUserEndsEveryRefreshToken) {
  const auto a = service_->issue(user_);
  const auto b = service_->issue(user_);
  service_->revoke_user(user_.id);
  EXPECT_THROW(service_->refresh(a.refresh_token), Error);
  EXPECT_THROW(service_->refresh(b.refresh_token), Error);
}

TEST_P(TokenTest, RotationKeepsOldKeysForVerificationUntilTheirTokensExpire) {
  const auto old_kid = service_->active_key_id();
  const auto before = service_->issue(user_);
  const auto new_kid = service_->rotate_signing_key();
  EXPECT_NE(new_kid, old_kid);
  const auto after = service_->issue(user_);
  EXPECT_EQ(decode(part(after.access_token, 0))["kid"], new_kid);
  EXPECT_NO_THROW(service_->verify_access(before.access_token));
  EXPECT_NO_THROW(service_->refresh(before.refresh_token));
  // Another instance on the same database, started later, verifies both.
  auto other = make_service(SigningAlgorithm::kEdDSA);
  EXPECT_NO_THROW(other->verify_access(after.access_token));
  clock_->advance(31 * 24h);  // past the longest token lifetime
  auto h = header();
  h["kid"] = old_kid;
  EXPECT_DEVCYCLE_ERROR(
      service_->verify_access(service_->sign_raw_for_tests(h.dump(), payload().dump(), old_kid)),
      ErrorCode::kUnauthenticated, "retired key");
}

TEST_P(TokenTest, KeysAreStoredEncryptedAndNeedTheRightMasterKey) {
  const auto secrets = db_->read([](Txn& t) { return t.query("SELECT secret FROM signing_keys"); });
  ASSERT_FALSE(secrets.empty());
  EXPECT_GE(secrets[0][0].as_blob().bytes.size(), 64u + 40u);  // nonce + MAC + Ed25519 secret key
  EXPECT_DEVCYCLE_ERROR(make_service(SigningAlgorithm::kEdDSA, generate_master_key_hex()),
                        ErrorCode::kInvalidArgument, "does not decrypt");
  EXPECT_DEVCYCLE_ERROR(make_service(SigningAlgorithm::kEdDSA, std::string(64, '0')),
                        ErrorCode::kInvalidArgument, "known default");
  EXPECT_DEVCYCLE_ERROR(make_service(SigningAlgorithm::kEdDSA, ""), ErrorCode::kInvalidArgument,
                        "32 bytes");
  EXPECT_DEVCYCLE_ERROR(make_service(SigningAlgorithm::kEdDSA, "short"),
                        ErrorCode::kInvalidArgument, "32 bytes");
}

TEST(MasterKeyTest, LoadsFromAPrivateFileOrTheEnvironment) {
  testing::TempDir dir;
  const auto path = dir.file("master.key");
  const auto key = generate_master_key_hex();
  std::ofstream(path) << key << "\n";
  ::chmod(path.c_str(), 0644);
  ::unsetenv("DEVCYCLE_TEST_MASTER_KEY");
  EXPECT_DEVCYCLE_ERROR(load_master_key(path, "DEVCYCLE_TEST_MASTER_KEY"),
                        ErrorCode::kInvalidArgument, "chmod 600");
  ::chmod(path.c_str(), 0600);
  EXPECT_EQ(load_master_key(path, "DEVCYCLE_TEST_MASTER_KEY"), key);
  ::setenv("DEVCYCLE_TEST_MASTER_KEY",
           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 1);
  EXPECT_DEVCYCLE_ERROR(load_master_key(path, "DEVCYCLE_TEST_MASTER_KEY"),
                        ErrorCode::kInvalidArgument, "DEVCYCLE_TEST_MASTER_KEY", "example value");
  ::setenv("DEVCYCLE_TEST_MASTER_KEY", key.c_str(), 1);
  EXPECT_EQ(load_master_key("", "DEVCYCLE_TEST_MASTER_KEY"), key);
  ::unsetenv("DEVCYCLE_TEST_MASTER_KEY");
  EXPECT_DEVCYCLE_ERROR(load_master_key("", "DEVCYCLE_TEST_MASTER_KEY"),
                        ErrorCode::kInvalidArgument, "set");
  EXPECT_DEVCYCLE_ERROR(load_master_key(dir.file("missing"), "DEVCYCLE_TEST_MASTER_KEY"),
                        ErrorCode::kInvalidArgument, "cannot be read");
}

INSTANTIATE_TEST_SUITE_P(Backends, TokenTest,
                         ::testing::ValuesIn(testing::database_backends("tokens.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
