// The login flow end to end over every Database backend.
#include "devcycle/auth/auth_service.h"

#include <gtest/gtest.h>

#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/plain_hasher.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

class AuthServiceTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    cache_ = testing::test_cache(clock_);
    UserDirectoryOptions uo;
    uo.hasher = testing::plain_hasher();
    uo.clock = clock_;
    users_ = std::make_unique<UserDirectory>(*db_, *cache_, uo);
    TokenOptions to;
    to.clock = clock_;
    tokens_ =
        std::make_unique<TokenService>(*db_, *cache_, generate_master_key_hex(), to, users_.get());
    auth_ = std::make_unique<AuthService>(*users_, *tokens_);
    alice_ = users_->create({"alice@example.com", "alice", "tolerable mule 9", Role::kDeveloper});
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<UserDirectory> users_;
  std::unique_ptr<TokenService> tokens_;
  std::unique_ptr<AuthService> auth_;
  User alice_;
};

TEST_P(AuthServiceTest, LoginGivesTokensThatSpeakForTheUser) {
  const auto pair = auth_->login("alice", "tolerable mule 9", "10.0.0.1");
  const auto p = auth_->principal(pair.access_token);
  EXPECT_EQ(p.id, alice_.id);
  EXPECT_EQ(p.role, Role::kDeveloper);
  EXPECT_DEVCYCLE_ERROR(auth_->login("alice", "wrong password!", "10.0.0.1"),
                        ErrorCode::kUnauthenticated, "invalid login or password");
}

TEST_P(AuthServiceTest, APasswordChangeEndsEverySession) {
  const auto laptop = auth_->login("alice", "tolerable mule 9", "10.0.0.1");
  const auto phone = auth_->login("alice", "tolerable mule 9", "10.0.0.2");
  auth_->change_password(alice_.id, "tolerable mule 9", "another fine pass");
  EXPECT_DEVCYCLE_ERROR(auth_->refresh(laptop.refresh_token), ErrorCode::kUnauthenticated,
                        "revoked");
  EXPECT_DEVCYCLE_ERROR(auth_->refresh(phone.refresh_token), ErrorCode::kUnauthenticated,
                        "revoked");
  EXPECT_NO_THROW(auth_->login("alice", "another fine pass", "10.0.0.1"));
}

TEST_P(AuthServiceTest, DeactivationEndsSessionsAndLogins) {
  const auto pair = auth_->login("alice", "tolerable mule 9", "10.0.0.1");
  auth_->deactivate(alice_.id);
  EXPECT_DEVCYCLE_ERROR(auth_->refresh(pair.refresh_token), ErrorCode::kUnauthenticated, "revoked");
  EXPECT_DEVCYCLE_ERROR(auth_->login("alice", "tolerable mule 9", "10.0.0.1"),
                        ErrorCode::kUnauthenticated, "invalid login or password");
}

TEST_P(AuthServiceTest, RefreshSeesRoleChangesAndLogoutEndsTheSession) {
  const auto pair = auth_->login("alice", "tolerable mule 9", "10.0.0.1");
  users_->set_role(alice_.id, Role::kAdmin);
  const auto next = auth_->refresh(pair.refresh_token);
  EXPECT_EQ(auth_->principal(next.access_token).role, Role::kAdmin);
  auth_->logout(next.access_token, next.refresh_token);
  EXPECT_DEVCYCLE_ERROR(auth_->principal(next.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
  EXPECT_DEVCYCLE_ERROR(auth_->refresh(next.refresh_token), ErrorCode::kUnauthenticated, "revoked");
}

INSTANTIATE_TEST_SUITE_P(Backends, AuthServiceTest,
                         ::testing::ValuesIn(testing::database_backends("auth.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
