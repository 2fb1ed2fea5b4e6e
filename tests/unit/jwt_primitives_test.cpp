// The pieces of HS256 verification's fast path, each checked against an
// independent implementation: HMAC-SHA256 against RFC 4231 and libsodium,
// base64url against libsodium, the flat claims reader against nlohmann's
// full parser on seeded random payloads.
#include <gtest/gtest.h>
#include <sodium.h>

#include <nlohmann/json.hpp>
#include <random>

#include "auth/base64url.h"
#include "auth/hmac_sha256.h"
#include "auth/jwt_claims.h"

namespace devcycle::internal {
namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.resize(n * 2);
  return out;
}

std::string mac_hex(std::string_view key, std::string_view message) {
  const auto m = HmacSha256(key).mac(message);
  return hex(m.data(), m.size());
}

TEST(HmacSha256Test, MatchesRfc4231) {
  // Test case 1
  EXPECT_EQ(mac_hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // Test case 2: a key shorter than the block
  EXPECT_EQ(mac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // Test case 6: a key longer than the block is hashed first
  EXPECT_EQ(
      mac_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, AgreesWithLibsodiumAndVerifiesOnlyTheRightMac) {
  ASSERT_GE(sodium_init(), 0);
  std::mt19937 rng(4231);
  for (int i = 0; i < 300; ++i) {
    std::string key(rng() % 100, '\0'), message(rng() % 700, '\0');
    for (auto& c : key) c = static_cast<char>(rng());
    for (auto& c : message) c = static_cast<char>(rng());
    unsigned char expected[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()),
                                key.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()),
                                  message.size());
    crypto_auth_hmacsha256_final(&st, expected);
    const HmacSha256 mac(key);
    ASSERT_EQ(mac_hex(key, message), hex(expected, sizeof expected)) << "case " << i;
    EXPECT_TRUE(mac.verify(message, expected));
    expected[rng() % sizeof expected] ^= static_cast<unsigned char>(1 + rng() % 255);
    EXPECT_FALSE(mac.verify(message, expected));
  }
}

std::optional<std::string> decode(std::string_view text) {
  std::string out(base64url_decoded_size(text.size()), '\0');
  const auto n = base64url_decode(text, reinterpret_cast<unsigned char*>(out.data()));
  if (n < 0) return std::nullopt;
  out.resize(static_cast<std::size_t>(n));
  return out;
}

TEST(Base64UrlTest, RoundTripsAndAgreesWithLibsodium) {
  std::mt19937 rng(4648);
  for (std::size_t n = 0; n < 200; ++n) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    std::string theirs(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                       '\0');
    sodium_bin2base64(theirs.data(), theirs.size(),
                      reinterpret_cast<const unsigned char*>(bytes.data()), n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    theirs.resize(std::strlen(theirs.c_str()));
    const auto ours = base64url_encode(bytes);
    ASSERT_EQ(ours, theirs) << n;
    ASSERT_EQ(decode(ours), bytes) << n;
  }
}

TEST(Base64UrlTest, RefusesWhatIsNotCanonicalBase64Url) {
  EXPECT_EQ(decode(""), "");
  EXPECT_EQ(decode("QQ"), "A");
  EXPECT_EQ(decode("QR"), std::nullopt) << "unused bits set: a second spelling of 'A'";
  EXPECT_EQ(decode("QUI"), "AB");
  EXPECT_EQ(decode("QUJ"), std::nullopt);
  EXPECT_EQ(decode("QQ=="), std::nullopt) << "padding";
  EXPECT_EQ(decode("Q"), std::nullopt) << "impossible length";
  EXPECT_EQ(decode("QU+D"), std::nullopt) << "standard alphabet";
  EXPECT_EQ(decode("QU/D"), std::nullopt);
  EXPECT_EQ(decode("QU D"), std::nullopt);
  EXPECT_EQ(decode(std::string_view("QU\0D", 4)), std::nullopt);
  EXPECT_EQ(decode("-_-_"), "\xfb\xff\xbf");
}

TEST(FlatClaimsTest, ReadsTheClaimsDevCycleWrites) {
  RawClaims c;
  ASSERT_TRUE(read_flat_claims(
      R"({"aud":"devcycle","exp":1800,"fam":"f","iat":900,"iss":"devcycle","jti":"j",)"
      R"("nbf":900,"role":"developer","sub":"u","typ":"access"})",
      c));
  EXPECT_EQ(c.iss, "devcycle");
  EXPECT_EQ(c.sub, "u");
  EXPECT_EQ(c.jti, "j");
  EXPECT_EQ(c.typ, "access");
  EXPECT_EQ(c.role, "developer");
  EXPECT_EQ(c.fam, "f");
  EXPECT_EQ(c.exp, 1800);
  EXPECT_EQ(c.nbf, 900);
  EXPECT_EQ(c.iat, 900);
  ASSERT_EQ(c.aud.size(), 1u);
  EXPECT_EQ(c.aud[0], "devcycle");
}

TEST(FlatClaimsTest, LeavesAnythingUnusualToTheFullParser) {
  RawClaims c;
  for (const char* text : {
           R"({"sub":"a\"b"})",                // escape
           "{\"sub\":\"\xc3\xa9\"}",           // non-ASCII
           R"({"sub":"a","sub":"b"})",         // duplicate claim
           R"({"aud":["a","b"]})",             // array
           R"({"x":{"y":1}})",                 // nested
           R"({"exp":1.5})",                   // float
           R"({"exp":1e3})",                   // exponent
           R"({"exp":01})",                    // leading zero (invalid JSON)
           R"({"exp":99999999999999999999})",  // beyond int64
           R"({"exp":18446744075709551616})",  // wraps uint64 to 2e9 if unchecked
           R"({"a":1,})",                      // trailing comma
           R"({"a":1} x)",                     // trailing text
           R"({"a":tru})",                     // bad literal
           R"([1])",                           // not an object
           R"({"a" 1})",                       // missing colon
           "",
       }) {
    EXPECT_FALSE(read_flat_claims(text, c)) << text;
  }
}

// Seeded differential test: whenever the flat reader accepts a text, the full
// parser accepts it too and reads the same claims.
TEST(FlatClaimsTest, AgreesWithTheFullParserOnRandomPayloads) {
  std::mt19937 rng(7519);
  const std::vector<std::string> keys = {"iss", "sub", "jti", "typ", "role", "fam", "exp",
                                         "nbf", "iat", "aud", "x",   "",     "ISS", "a\\u0041"};
  const std::vector<std::string> values = {"\"devcycle\"",
                                           "\"\"",
                                           "\"a\\\"b\"",
                                           "\"\xc3\xa9\"",
                                           "0",
                                           "-0",
                                           "17",
                                           "-42",
                                           "1.5",
                                           "1e9",
                                           "01",
                                           "true",
                                           "false",
                                           "null",
                                           "[]",
                                           "[\"a\"]",
                                           "{}",
                                           "9223372036854775807",
                                           "9223372036854775808",
                                           "18446744075709551616",
                                           "-9223372036854775808",
                                           "\"\t\"",
                                           "tru",
                                           "\"x"};
  const std::vector<std::string> spaces = {"", " ", "\n", "\t", "\r\n  "};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = spaces[rng() % spaces.size()] + "{";
    const int n = static_cast<int>(rng() % 8);
    for (int j = 0; j < n; ++j) {
      if (j > 0) text += rng() % 50 == 0 ? "" : ",";
      text += spaces[rng() % spaces.size()] + "\"" + keys[rng() % keys.size()] + "\"" +
              spaces[rng() % spaces.size()] + ":" + spaces[rng() % spaces.size()] +
              values[rng() % values.size()];
    }
    text += spaces[rng() % spaces.size()] + (rng() % 50 == 0 ? "" : "}");
    if (rng() % 20 == 0) text.resize(rng() % (text.size() + 1));

    RawClaims fast;
    if (!read_flat_claims(text, fast)) continue;
    ++accepted;
    nlohmann::json document;
    ASSERT_NO_THROW(document = nlohmann::json::parse(text)) << text;
    ASSERT_TRUE(document.is_object()) << text;
    RawClaims full;
    read_claims(document, full);
    ASSERT_EQ(fast.iss, full.iss) << text;
    ASSERT_EQ(fast.sub, full.sub) << text;
    ASSERT_EQ(fast.jti, full.jti) << text;
    ASSERT_EQ(fast.typ, full.typ) << text;
    ASSERT_EQ(fast.role, full.role) << text;
    ASSERT_EQ(fast.fam, full.fam) << text;
    ASSERT_EQ(fast.exp, full.exp) << text;
    ASSERT_EQ(fast.nbf, full.nbf) << text;
    ASSERT_EQ(fast.iat, full.iat) << text;
    ASSERT_EQ(fast.aud, full.aud) << text;
  }
  EXPECT_GT(accepted, 1000) << "the generator should exercise the fast path";
}

}  // namespace
}  // namespace devcycle::internal
