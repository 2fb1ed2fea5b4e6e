// Users over every Database backend, with a counting PasswordHasher that
// proves logins do the same hashing work whether or not the account exists.
#include <gtest/gtest.h>

#include <atomic>

#include "devcycle/auth/auth.h"
#include "devcycle/common/uuid.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/race.h"
#include "support/table_snapshot.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

// Stores "plain:<password>" and counts calls; stands in for argon2id so the
// suite runs fast and can count work.
class CountingHasher final : public PasswordHasher {
 public:
  std::string hash(std::string_view password) override {
    ++hashes;
    return "plain:" + std::string(password);
  }
  bool verify(std::string_view password, std::string_view hash) override {
    ++verifications;
    return hash == "plain:" + std::string(password);
  }
  std::atomic<int> hashes{0};
  std::atomic<int> verifications{0};
};

class UserDirectoryTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    cache_ = testing::test_cache(clock_);
    UserDirectoryOptions o;
    o.hasher = hasher_;
    o.clock = clock_;
    o.throttle.max_failures_per_account = 3;
    o.throttle.max_failures_per_address = 5;
    o.throttle.window = 15min;
    users_ = std::make_unique<UserDirectory>(*db_, *cache_, o);
  }

  User alice() {
    return users_->create({"Alice@Example.com", "Alice", "tolerable mule 9", Role::kDeveloper});
  }

  std::string snapshot() { return testing::table_snapshot(*db_, {"users"}); }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::shared_ptr<CountingHasher> hasher_ = std::make_shared<CountingHasher>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<UserDirectory> users_;
};

TEST_P(UserDirectoryTest, CreateStoresLowercasedNamesAndAHashNotThePassword) {
  const auto u = alice();
  EXPECT_TRUE(is_uuid(u.id));
  EXPECT_EQ(u.email, "alice@example.com");
  EXPECT_EQ(u.username, "alice");
  EXPECT_EQ(u.role, Role::kDeveloper);
  EXPECT_TRUE(u.active);
  EXPECT_EQ(users_->get(u.id).email, "alice@example.com");
  EXPECT_EQ(users_->get_by_login("ALICE").id, u.id);
  EXPECT_EQ(users_->get_by_login("alice@example.com").id, u.id);
  const auto stored =
      db_->read([](Txn& t) { return t.query("SELECT password_hash FROM users")[0][0].as_text(); });
  EXPECT_EQ(stored, "plain:tolerable mule 9");  // what the hasher returned, nothing else
  EXPECT_DEVCYCLE_ERROR(users_->get("0190c8a0-0000-7000-8000-000000000000"), ErrorCode::kNotFound,
                        "user");
}

TEST_P(UserDirectoryTest, EmailAndUsernameAreUnique) {
  alice();
  EXPECT_REFUSED(users_->create({"alice@example.COM", "other", "tolerable mule 9", Role::kViewer}),
                 ErrorCode::kAlreadyExists, "email", "alice@example.com");
  EXPECT_REFUSED(users_->create({"other@example.com", "ALICE", "tolerable mule 9", Role::kViewer}),
                 ErrorCode::kAlreadyExists, "username", "alice");
}

TEST_P(UserDirectoryTest, BadFieldsAreRefusedNamingTheFieldAndStoreNothing) {
  alice();
  const std::pair<NewUser, std::string> cases[] = {
      {{"no-at-sign.example.com", "bob", "tolerable mule 9"}, "exactly one '@'"},
      {{"bob@localhost", "bob", "tolerable mule 9"}, "must contain a '.'"},
      {{"bob@exa mple.com", "bob", "tolerable mule 9"}, "not a valid domain"},
      {{"b ob@example.com", "bob", "tolerable mule 9"}, "not allowed"},
      {{std::string(250, 'b') + "@example.com", "bob", "tolerable mule 9"}, "254"},
      {{"bob@example.com", "b", "tolerable mule 9"}, "username: must be at least 3"},
      {{"bob@example.com", "bob smith", "tolerable mule 9"}, "username"},
      {{"bob@example.com", std::string(65, 'b'), "tolerable mule 9"},
       "username: is longer than 64"},
      {{"bob@example.com", "bob", "too short"}, "password: must be at least 12"},
      {{"bob@example.com", "bob", "password1234"}, "most common"},
      {{"bob@\xff.com", "bob", "tolerable mule 9"}, "email: is not valid UTF-8"},
  };
  for (const auto& [spec, message] : cases) {
    EXPECT_REFUSED(users_->create(spec), ErrorCode::kInvalidArgument, message);
  }
}

TEST_P(UserDirectoryTest, LoginWorksWithEmailOrUsername) {
  const auto u = alice();
  EXPECT_EQ(users_->authenticate("alice", "tolerable mule 9", "10.0.0.1").id, u.id);
  EXPECT_EQ(users_->authenticate("ALICE@example.com", "tolerable mule 9", "10.0.0.1").id, u.id);
}

TEST_P(UserDirectoryTest, UnknownUserWrongPasswordAndInactiveLookTheSameAndCostTheSame) {
  const auto u = alice();
  auto attempt = [&](const std::string& login, const std::string& password) {
    const int before = hasher_->verifications.load();
    std::string message;
    try {
      users_->authenticate(login, password, "10.0.0.1");
      ADD_FAILURE() << "login succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnauthenticated);
      message = e.what();
    }
    EXPECT_EQ(hasher_->verifications.load() - before, 1) << login;  // the same work every time
    return message;
  };
  const auto unknown = attempt("nobody", "tolerable mule 9");
  const auto wrong = attempt("bob-not-here@example.com", "whatever it is");
  const auto bad_password = attempt("alice", "wrong password!");
  users_->deactivate(u.id);
  clock_->advance(16min);  // past the throttling window
  const auto inactive = attempt("alice", "tolerable mule 9");
  EXPECT_EQ(unknown, "invalid login or password");
  EXPECT_EQ(wrong, unknown);
  EXPECT_EQ(bad_password, unknown);
  EXPECT_EQ(inactive, unknown);
  users_->reactivate(u.id);
  EXPECT_EQ(users_->authenticate("alice", "tolerable mule 9", "10.0.0.9").id, u.id);
}

TEST_P(UserDirectoryTest, FailedLoginsAreThrottledPerAccountAndPerAddress) {
  alice();
  for (int i = 0; i < 3; ++i) {
    EXPECT_DEVCYCLE_ERROR(users_->authenticate("alice", "wrong password!", "10.0.0.1"),
                          ErrorCode::kUnauthenticated, "invalid login");
  }
  // The account is locked for now, even with the right password and from elsewhere.
  EXPECT_DEVCYCLE_ERROR(users_->authenticate("alice", "tolerable mule 9", "10.0.0.2"),
                        ErrorCode::kResourceExhausted, "this account");
  // Unknown accounts are throttled the same way (no enumeration through throttling).
  for (int i = 0; i < 3; ++i) {
    EXPECT_THROW(users_->authenticate("ghost", "wrong password!", "10.0.0.3"), Error);
  }
  EXPECT_DEVCYCLE_ERROR(users_->authenticate("ghost", "wrong password!", "10.0.0.4"),
                        ErrorCode::kResourceExhausted, "this account");
  // Per address: 5 failures over any accounts.
  for (int i = 0; i < 5; ++i) {
    EXPECT_THROW(users_->authenticate("spray" + std::to_string(i), "wrong password!", "10.0.0.66"),
                 Error);
  }
  EXPECT_DEVCYCLE_ERROR(users_->authenticate("someone-new", "wrong password!", "10.0.0.66"),
                        ErrorCode::kResourceExhausted, "this address");
  // The window ends with the test clock; Redis keeps its own, so there the
  // expiry is the Cache suite's business (TtlExpires, in real time).
  if (!testing::test_cache_is_redis()) {
    clock_->advance(16min);
    EXPECT_NO_THROW(users_->authenticate("alice", "tolerable mule 9", "10.0.0.66"));
  }
}

// Issue #20: failures were counted per typed name (an account's email and
// username each had their own budget) and checked before they were
// counted, so concurrent guesses all passed the check.
TEST_P(UserDirectoryTest, ThrottlingCountsTheAccountWhateverNameIsTypedAndHoldsUnderConcurrency) {
  alice();
  EXPECT_THROW(users_->authenticate("alice", "wrong password!", "10.0.1.1"), Error);
  EXPECT_THROW(users_->authenticate("ALICE@example.com", "wrong password!", "10.0.1.2"), Error);
  EXPECT_THROW(users_->authenticate("alice@example.com", "wrong password!", "10.0.1.3"), Error);
  EXPECT_DEVCYCLE_ERROR(users_->authenticate("alice", "tolerable mule 9", "10.0.1.4"),
                        ErrorCode::kResourceExhausted, "this account");

  // 40 guesses at once against a budget of 3: exactly 3 are hashed.
  users_->create({"bob@example.com", "bob", "tolerable mule 9", Role::kViewer});
  const int before = hasher_->verifications.load();
  const auto outcome = testing::race(8, 5, ErrorCode::kResourceExhausted, [&](int t, int i) {
    try {
      users_->authenticate("bob", "wrong password!",
                           "10.0.2." + std::to_string(t * 5 + i));  // many addresses
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kUnauthenticated) return;  // a hashed, wrong guess
      throw;
    }
  });
  EXPECT_EQ(outcome.refused, 37);
  EXPECT_EQ(hasher_->verifications.load() - before, 3);
}

TEST_P(UserDirectoryTest, ChangePasswordChecksTheCurrentOneAndThePolicy) {
  const auto u = alice();
  EXPECT_DEVCYCLE_ERROR(users_->change_password(u.id, "wrong password!", "another fine pass"),
                        ErrorCode::kUnauthenticated, "current_password");
  EXPECT_REFUSED(users_->change_password(u.id, "tolerable mule 9", "password1234"),
                 ErrorCode::kInvalidArgument, "new_password", "most common");
  EXPECT_REFUSED(users_->change_password(u.id, "tolerable mule 9", "tolerable mule 9"),
                 ErrorCode::kInvalidArgument, "new_password: must differ");
  clock_->advance(1s);
  const auto changed = users_->change_password(u.id, "tolerable mule 9", "another fine pass");
  EXPECT_EQ(changed.password_changed_at, clock_->now());
  EXPECT_THROW(users_->authenticate("alice", "tolerable mule 9", "10.0.0.1"), Error);
  EXPECT_EQ(users_->authenticate("alice", "another fine pass", "10.0.0.1").id, u.id);
}

TEST_P(UserDirectoryTest, RolesListsAndPages) {
  const auto a = alice();
  const auto b = users_->create({"bob@example.com", "bob", "tolerable mule 9", Role::kViewer});
  const auto c = users_->create({"carol@example.com", "carol", "tolerable mule 9", Role::kViewer});
  EXPECT_EQ(users_->set_role(b.id, Role::kAdmin).role, Role::kAdmin);
  users_->deactivate(c.id);
  UserFilter f;
  f.role = Role::kAdmin;
  ASSERT_EQ(users_->list(f).users.size(), 1u);
  EXPECT_EQ(users_->list(f).users[0].id, b.id);
  f = {};
  f.active = false;
  ASSERT_EQ(users_->list(f).users.size(), 1u);
  f = {};
  f.limit = 2;
  const auto page = users_->list(f);
  ASSERT_EQ(page.users.size(), 2u);
  EXPECT_EQ(page.users[0].id, a.id);
  f.page_token = page.next_page_token;
  EXPECT_EQ(users_->list(f).users[0].id, c.id);
  EXPECT_DEVCYCLE_ERROR(users_->set_role("0190c8a0-0000-7000-8000-000000000000", Role::kAdmin),
                        ErrorCode::kNotFound, "user");
  f = {};
  f.page_token = "x";
  EXPECT_DEVCYCLE_ERROR(users_->list(f), ErrorCode::kInvalidArgument, "page_token");
}

TEST_P(UserDirectoryTest, OversizedLoginInputIsRefusedBeforeAnyHashing) {
  const int before = hasher_->verifications.load();
  EXPECT_DEVCYCLE_ERROR(users_->authenticate("alice", std::string(5000, 'p'), "10.0.0.1"),
                        ErrorCode::kInvalidArgument, "password", "4096");
  EXPECT_DEVCYCLE_ERROR(users_->authenticate(std::string(300, 'a'), "tolerable mule 9", "10.0.0.1"),
                        ErrorCode::kInvalidArgument, "login");
  EXPECT_DEVCYCLE_ERROR(users_->authenticate("alice", "tolerable mule 9", ""),
                        ErrorCode::kInvalidArgument, "client_address");
  EXPECT_EQ(hasher_->verifications.load(), before);
}

INSTANTIATE_TEST_SUITE_P(Backends, UserDirectoryTest,
                         ::testing::ValuesIn(testing::database_backends("users.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
