#include <gtest/gtest.h>

#include "devcycle/auth/auth.h"
#include "support/error_matchers.h"

namespace devcycle {
namespace {

TEST(PasswordHasherTest, Argon2idHashesVerifyAndSalt) {
  auto hasher =
      make_argon2id_hasher({19u * 1024 * 1024, 2});  // OWASP's minimum keeps the test quick
  const auto a = hasher->hash("correct horse battery");
  const auto b = hasher->hash("correct horse battery");
  EXPECT_TRUE(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << a;
  EXPECT_NE(a, b);  // a new salt every time
  EXPECT_TRUE(hasher->verify("correct horse battery", a));
  EXPECT_FALSE(hasher->verify("correct horse batterY", a));
  EXPECT_FALSE(hasher->verify("correct horse battery", "not a hash"));
}

TEST(PasswordHasherTest, RefusesParametersBelowOwasp) {
  EXPECT_DEVCYCLE_ERROR(make_argon2id_hasher({1024 * 1024, 2}), ErrorCode::kInvalidArgument,
                        "19 MiB");
  EXPECT_DEVCYCLE_ERROR(make_argon2id_hasher({64u * 1024 * 1024, 1}), ErrorCode::kInvalidArgument,
                        "2 passes");
}

TEST(PasswordPolicyTest, LengthCountsCharactersAndAnythingLongIsTakenAsGiven) {
  EXPECT_NO_THROW(check_password_policy("tolerable mule 9"));
  EXPECT_NO_THROW(check_password_policy("ÄÖÜäöüßéèêëñ"));  // 12 characters, 24 bytes
  EXPECT_NO_THROW(check_password_policy(std::string(200, 'x') + "🔑"));
  EXPECT_NO_THROW(check_password_policy("  spaces kept  "));
  EXPECT_DEVCYCLE_ERROR(check_password_policy("short pass1"), ErrorCode::kInvalidArgument,
                        "password", "at least 12 characters");
  EXPECT_DEVCYCLE_ERROR(check_password_policy("äöüäöüäöüäö", "new_password"),
                        ErrorCode::kInvalidArgument, "new_password", "at least 12");
  EXPECT_DEVCYCLE_ERROR(check_password_policy(std::string(4097, 'x')), ErrorCode::kInvalidArgument,
                        "4096");
  EXPECT_DEVCYCLE_ERROR(check_password_policy("valid-length \xff\xfe"), ErrorCode::kInvalidArgument,
                        "UTF-8");
}

TEST(PasswordPolicyTest, CommonPasswordsAreRefusedWithoutEchoingThem) {
  for (const char* common :
       {"password1234", "Password1234", "QWERTYUIOP12", "123456789012", "iloveyou1234"}) {
    try {
      check_password_policy(common);
      ADD_FAILURE() << common << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("most common"), std::string::npos);
      EXPECT_EQ(std::string(e.what()).find(common), std::string::npos)
          << "the message repeats the password";
    }
  }
}

TEST(RoleTest, ParsesAndNames) {
  EXPECT_EQ(parse_role("developer"), Role::kDeveloper);
  EXPECT_EQ(to_string(Role::kAgent), "agent");
  EXPECT_DEVCYCLE_ERROR(parse_role("root", "user.role"), ErrorCode::kInvalidArgument, "user.role",
                        "\"root\"");
}

}  // namespace
}  // namespace devcycle
