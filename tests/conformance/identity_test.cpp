// Identity (issue #20): what a credential allows follows the account as it
// stands now, on every server, and a logout outlives a restart. Each test is
// an attack that worked before: a credential used after the account changed.
#include "devcycle/auth/identity.h"

#include <gtest/gtest.h>

#include "devcycle/common/uuid.h"
#include "devcycle/platform/platform.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/plain_hasher.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

constexpr const char* kPassword = "tolerable mule 9";

class IdentityTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    cache_ = testing::test_cache(clock_);
    identity_ = open(*cache_);
    alice_ = identity_->users().create({"alice@example.com", "alice", kPassword, Role::kAdmin});
    admin_ = identity_->users().create({"root@example.com", "root", kPassword, Role::kAdmin});
  }

  // Another server on the same database and cache (or a cache of its own).
  std::unique_ptr<Identity> open(Cache& cache, int failures_per_address = 50) {
    IdentityOptions o;
    o.hasher = testing::plain_hasher();
    o.clock = clock_;
    o.credential_failures_per_address = failures_per_address;
    return std::make_unique<Identity>(*db_, cache, key_, o);
  }

  std::string login() {
    return identity_->auth().login("alice", kPassword, "10.0.0.1").access_token;
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::string key_ = generate_master_key_hex();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<Identity> identity_;
  User alice_, admin_;
};

TEST_P(IdentityTest, ADemotedUsersAccessTokenStopsAtOnceOnEveryServer) {
  const auto token = login();
  auto other = open(*cache_);  // a second server sharing the cache
  EXPECT_EQ(other->authenticate(token).role, Role::kAdmin);
  identity_->set_role(alice_.id, Role::kViewer);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(token), ErrorCode::kUnauthenticated,
                        "role, password or activation changed");
  EXPECT_DEVCYCLE_ERROR(other->authenticate(token), ErrorCode::kUnauthenticated,
                        "role, password or activation changed");
  // A new login speaks with the new role.
  EXPECT_EQ(identity_->authenticate(login()).role, Role::kViewer);
}

// Review of #20: a PATCH that sent the role the user already had moved the
// generation on, and logged the user out everywhere.
TEST_P(IdentityTest, SettingWhatAlreadyIsLeavesTheUserLoggedIn) {
  const auto token = login();
  const auto session = identity_->open_session(identity_->users().get(alice_.id), "10.0.0.1", "t");
  identity_->set_role(alice_.id, Role::kAdmin);
  identity_->reactivate(alice_.id);
  EXPECT_EQ(identity_->authenticate(token).role, Role::kAdmin);
  EXPECT_EQ(identity_->authenticate_session(session.token).id, alice_.id);
  identity_->deactivate(alice_.id);
  identity_->deactivate(alice_.id);
  identity_->reactivate(alice_.id);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(token), ErrorCode::kUnauthenticated);
}

TEST_P(IdentityTest, ADeactivatedUsersAccessTokenStopsAtOnce) {
  const auto token = login();
  identity_->deactivate(alice_.id);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(token), ErrorCode::kUnauthenticated);
  identity_->reactivate(alice_.id);
  // Reactivation does not bring the old token back: the generation moved on twice.
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(token), ErrorCode::kUnauthenticated);
  EXPECT_NO_THROW(identity_->authenticate(login()));
}

TEST_P(IdentityTest, APasswordChangeEndsEveryAccessToken) {
  const auto token = login();
  identity_->change_password(alice_.id, kPassword, "another fine pass");
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(token), ErrorCode::kUnauthenticated);
}

TEST_P(IdentityTest, AServerWithACacheOfItsOwnSeesTheChangeWithinFiveSeconds) {
  if (testing::test_cache_is_redis()) GTEST_SKIP() << "Redis keeps its own time";
  const auto token = login();
  auto own_cache = testing::test_cache(clock_);
  auto other = open(*own_cache);
  EXPECT_NO_THROW(other->authenticate(token));  // caches alice's state
  identity_->deactivate(alice_.id);
  clock_->advance(std::chrono::seconds(6));
  EXPECT_DEVCYCLE_ERROR(other->authenticate(token), ErrorCode::kUnauthenticated, "deactivated");
}

TEST_P(IdentityTest, AnApiKeyFollowsItsOwner) {
  const Principal alice{alice_.id, Role::kAdmin, {}, ""};
  const auto key = identity_->keys().create(alice, {"deploy bot", Role::kAdmin, {}, "", {}}).secret;
  EXPECT_EQ(identity_->authenticate(key).role, Role::kAdmin);
  // Demoted: the key acts with the lower of its role and its owner's.
  identity_->set_role(alice_.id, Role::kDeveloper);
  EXPECT_EQ(identity_->authenticate(key).role, Role::kDeveloper);
  identity_->set_role(alice_.id, Role::kViewer);
  EXPECT_EQ(identity_->authenticate(key).role, Role::kViewer);
  // Deactivated: refused like any dead key.
  identity_->deactivate(alice_.id);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(key), ErrorCode::kUnauthenticated,
                        "invalid API key");
  // Back, and promoted again: the key never rises above its own role.
  identity_->reactivate(alice_.id);
  EXPECT_EQ(identity_->authenticate(key).role, Role::kViewer);
}

// Review of #20: an agent key's role ranks with a viewer's, so demoting its
// owner to viewer did not stop it claiming and completing tasks.
TEST_P(IdentityTest, AnAgentKeyStopsWhenItsOwnerMayNoLongerAct) {
  const Principal alice{alice_.id, Role::kAdmin, {}, ""};
  const auto key = identity_->keys()
                       .create(alice, {"worker", Role::kAgent, {"build"}, new_uuid_v7(), {}})
                       .secret;
  EXPECT_EQ(identity_->authenticate(key).role, Role::kAgent);
  identity_->set_role(alice_.id, Role::kDeveloper);
  EXPECT_EQ(identity_->authenticate(key).role, Role::kAgent);
  identity_->set_role(alice_.id, Role::kViewer);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(key), ErrorCode::kUnauthenticated,
                        "invalid API key");
}

TEST_P(IdentityTest, ASessionActsWithTheUsersCurrentRoleAndEndsWithTheAccount) {
  auto session = identity_->sessions().create(alice_, "10.0.0.1", "test");
  EXPECT_EQ(identity_->authenticate_session(session.token).role, Role::kAdmin);
  identity_->set_role(alice_.id, Role::kDeveloper);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate_session(session.token), ErrorCode::kUnauthenticated,
                        "invalid session");
  session = identity_->sessions().create(identity_->users().get(alice_.id), "10.0.0.1", "test");
  EXPECT_EQ(identity_->authenticate_session(session.token).role, Role::kDeveloper);
  identity_->deactivate(alice_.id);
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate_session(session.token), ErrorCode::kUnauthenticated,
                        "invalid session");
}

// Review of #20: a login reads the account before its (slow) password check;
// a password change committing meanwhile must not leave it a token or a
// session that the change's revocation missed.
TEST_P(IdentityTest, ALoginThatReadTheAccountBeforeAChangeGetsNothing) {
  const auto read_by_the_login = identity_->users().get(alice_.id);
  identity_->change_password(alice_.id, kPassword, "another fine pass");
  EXPECT_DEVCYCLE_ERROR(identity_->tokens().issue(read_by_the_login), ErrorCode::kUnauthenticated,
                        "changed while logging in");
  EXPECT_DEVCYCLE_ERROR(identity_->open_session(read_by_the_login, "10.0.0.1", "test"),
                        ErrorCode::kUnauthenticated, "changed while logging in");
  EXPECT_TRUE(identity_->sessions().list(alice_.id).empty());
  EXPECT_NO_THROW(identity_->tokens().issue(identity_->users().get(alice_.id)));
}

// Review of #20: revocations lived in the database but were read back only
// when a server started; a cache that lost them (another server's memory
// cache, a flushed Redis) let a logged-out token work again.
TEST_P(IdentityTest, ALogoutReachesAServerWhoseCacheNeverHeardOfIt) {
  if (testing::test_cache_is_redis()) GTEST_SKIP() << "one Redis: the other server shares it";
  const auto pair = identity_->auth().login("alice", kPassword, "10.0.0.1");
  auto own_cache = testing::test_cache(clock_);
  auto other = open(*own_cache);
  EXPECT_NO_THROW(other->authenticate(pair.access_token));
  identity_->auth().logout(pair.access_token, "");
  clock_->advance(std::chrono::seconds(6));
  EXPECT_DEVCYCLE_ERROR(other->authenticate(pair.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
}

TEST_P(IdentityTest, ALogoutOutlivesARestartOfTheServer) {
  const auto pair = identity_->auth().login("alice", kPassword, "10.0.0.1");
  identity_->auth().logout(pair.access_token, "");
  EXPECT_DEVCYCLE_ERROR(identity_->authenticate(pair.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
  // The restart: the same database, a new process with an empty cache.
  identity_.reset();
  auto fresh_cache = testing::test_cache(clock_);
  auto restarted = open(*fresh_cache);
  EXPECT_DEVCYCLE_ERROR(restarted->authenticate(pair.access_token), ErrorCode::kUnauthenticated,
                        "revoked");
}

// Issue #20: failed authentications are limited per client address. Before,
// an address could present forged tokens, guessed API keys and session
// cookies without end (each one a database read), and only logins counted.
TEST_P(IdentityTest, ForgedCredentialsFromOneAddressAreAnswered429PastTheLimit) {
  auto guarded = open(*cache_, /*failures_per_address=*/4);
  const auto token = login();
  // A character in the middle of the signature: every bit of it counts.
  auto forged_signature = token;
  auto& c = forged_signature[token.rfind('.') + 20];
  c = c == 'A' ? 'B' : 'A';
  const std::string attacker = "203.0.113.7";
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(forged_signature, attacker),
                        ErrorCode::kUnauthenticated, "bad signature");
  const std::string bad_key = "dck_0123456789ab_" + std::string(43, 'x');
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, attacker), ErrorCode::kUnauthenticated,
                        "invalid API key");
  EXPECT_DEVCYCLE_ERROR(
      guarded->authenticate_session("dcs_" + new_uuid_v7() + "_" + std::string(43, 'y'), attacker),
      ErrorCode::kUnauthenticated, "invalid session");
  EXPECT_DEVCYCLE_ERROR(guarded->refresh("not.a.token", attacker), ErrorCode::kUnauthenticated);
  // Past the limit: 429, written as IPv4 or IPv4-mapped alike.
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, attacker), ErrorCode::kResourceExhausted,
                        "retry after 900 s");
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, "::ffff:" + attacker),
                        ErrorCode::kResourceExhausted);
  // A genuine credential is never refused for its address, nor a login
  // (which has a count of its own).
  EXPECT_EQ(guarded->authenticate(token, attacker).id, alice_.id);
  EXPECT_NO_THROW(guarded->auth().login("alice", kPassword, attacker));
  EXPECT_NO_THROW(guarded->check_login_address(attacker));
  // Other addresses, and trusted in-process callers, are not affected.
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, "198.51.100.1"),
                        ErrorCode::kUnauthenticated);
  for (int i = 0; i < 6; ++i)
    EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key), ErrorCode::kUnauthenticated);
  if (!testing::test_cache_is_redis()) {  // the memory cache runs on the test's clock
    clock_->advance(std::chrono::minutes(15));
    EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, attacker), ErrorCode::kUnauthenticated);
  }
}

TEST_P(IdentityTest, AnIPv6HostIsCountedByItsSlash64) {
  auto guarded = open(*cache_, /*failures_per_address=*/3);
  const std::string bad_key = "dck_0123456789ab_" + std::string(43, 'x');
  for (int i = 1; i <= 3; ++i) {
    EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, "2001:db8:1:2::" + std::to_string(i)),
                          ErrorCode::kUnauthenticated);
  }
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, "2001:db8:1:2:ffff:1:2:3"),
                        ErrorCode::kResourceExhausted);
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad_key, "2001:db8:1:3::1"),
                        ErrorCode::kUnauthenticated);
}

TEST(AddressGroupTest, IPv4AsItIsIPv6ByItsSlash64) {
  EXPECT_EQ(address_group("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(address_group("::ffff:192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(address_group("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(address_group("::1"), "::/64");
  EXPECT_EQ(address_group("not an address"), "not an address");
  EXPECT_EQ(address_group(""), "");
}

TEST_P(IdentityTest, CredentialsThatEndedInNormalUseAreNotCountedAgainstTheAddress) {
  auto guarded = open(*cache_, /*failures_per_address=*/2);
  const std::string office = "192.0.2.10";
  const auto expiring = login();
  clock_->advance(std::chrono::minutes(16));
  auto pair = guarded->auth().login("alice", kPassword, office);
  guarded->auth().logout(pair.access_token, pair.refresh_token);
  for (int i = 0; i < 5; ++i) {
    EXPECT_DEVCYCLE_ERROR(guarded->authenticate(pair.access_token, office),
                          ErrorCode::kUnauthenticated, "revoked");
    EXPECT_DEVCYCLE_ERROR(guarded->authenticate(expiring, office), ErrorCode::kUnauthenticated,
                          "expired");
  }
  // Only what is not genuine counts: two forged keys, and the third is 429.
  const std::string bad = "dck_0123456789ab_" + std::string(43, 'x');
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad, office), ErrorCode::kUnauthenticated);
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad, office), ErrorCode::kUnauthenticated);
  EXPECT_DEVCYCLE_ERROR(guarded->authenticate(bad, office), ErrorCode::kResourceExhausted);
}

// At their limit, failed logins refuse the address outright (a login can
// guess), and a server asks before it queues one.
TEST_P(IdentityTest, AnAddressAtItsLimitOfFailedLoginsIsRefusedBeforeItQueues) {
  const std::string guesser = "203.0.113.50";
  for (int i = 0; i < 50; ++i) {
    EXPECT_DEVCYCLE_ERROR(identity_->auth().login("user-" + std::to_string(i), "wrong", guesser),
                          ErrorCode::kUnauthenticated);
  }
  EXPECT_DEVCYCLE_ERROR(identity_->check_login_address(guesser), ErrorCode::kResourceExhausted,
                        "retry after 900 s");
  EXPECT_DEVCYCLE_ERROR(identity_->auth().login("alice", kPassword, guesser),
                        ErrorCode::kResourceExhausted, "from this address");
  EXPECT_NO_THROW(identity_->check_login_address("203.0.113.51"));
}

TEST_P(IdentityTest, PlatformAssemblesTheIdentityFromItsOptions) {
  PlatformOptions o;
  o.database = "sqlite::memory:";
  o.engine_workers = 0;
  o.monitor_interval = std::chrono::milliseconds(0);
  auto without = Platform::open(o);
  EXPECT_DEVCYCLE_ERROR(without->identity(), ErrorCode::kInvalidArgument, "master_key");
  o.master_key = key_;
  o.argon2_memory_bytes = 19u * 1024 * 1024;
  auto with = Platform::open(o);
  auto& id = with->identity();
  EXPECT_EQ(&id, &with->identity());
  const auto bob = id.users().create({"bob@example.com", "bob", kPassword, Role::kDeveloper});
  EXPECT_EQ(id.authenticate(id.auth().login("bob", kPassword, "10.0.0.9").access_token).id, bob.id);
  // A password an admin reset: the principal says so, and the facade
  // refuses it until the user changes it.
  id.reset_password(bob.id, "temporary passphrase 7");
  const auto reset =
      id.authenticate(id.auth().login("bob", "temporary passphrase 7", "10.0.0.9").access_token);
  EXPECT_TRUE(reset.must_change_password);
  EXPECT_DEVCYCLE_ERROR(with->as(reset), ErrorCode::kPermissionDenied, "password");
  id.change_password(bob.id, "temporary passphrase 7", kPassword);
  EXPECT_NO_THROW(
      with->as(id.authenticate(id.auth().login("bob", kPassword, "10.0.0.9").access_token)));
  // The setting reaches the identity: a second bad key from one address is 429.
  o.credential_failures_per_address = 1;
  auto strict = Platform::open(o);
  const std::string bad = "dck_0123456789ab_" + std::string(43, 'x');
  EXPECT_DEVCYCLE_ERROR(strict->identity().authenticate(bad, "203.0.113.9"),
                        ErrorCode::kUnauthenticated);
  EXPECT_DEVCYCLE_ERROR(strict->identity().authenticate(bad, "203.0.113.9"),
                        ErrorCode::kResourceExhausted);
}

INSTANTIATE_TEST_SUITE_P(Backends, IdentityTest,
                         ::testing::ValuesIn(testing::database_backends("identity.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
