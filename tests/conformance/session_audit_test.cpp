// Browser sessions (expiry with an injected clock, revocation, CSRF) and the
// audit log, over every Database backend.
#include <gtest/gtest.h>

#include "devcycle/auth/audit.h"
#include "devcycle/auth/sessions.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

class SessionTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    cache_ = testing::test_cache(clock_);
    SessionOptions o;
    o.clock = clock_;
    sessions_ = std::make_unique<SessionStore>(*db_, *cache_, o);
    user_.id = "u-1";
    user_.role = Role::kDeveloper;
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<SessionStore> sessions_;
  User user_;
};

TEST_P(SessionTest, TokenIsShownOnceAndStoredHashed) {
  const auto c = sessions_->create(user_, "10.0.0.1", "Mozilla/5.0");
  EXPECT_TRUE(c.token.starts_with("dcs_" + c.session.id + "_"));
  const auto secret = c.token.substr(41);
  const auto rows = db_->read([](Txn& t) { return t.query("SELECT * FROM sessions"); });
  ASSERT_EQ(rows.size(), 1u);
  for (std::size_t i = 0; i < rows[0].size(); ++i) {
    if (rows[0][i].type() == Value::Type::kText) {
      EXPECT_EQ(rows[0][i].as_text().find(secret), std::string::npos);
      EXPECT_EQ(rows[0][i].as_text().find(c.csrf_token), std::string::npos);
    }
  }
  const auto s = sessions_->authenticate(c.token);
  EXPECT_EQ(s.user_id, "u-1");
  EXPECT_EQ(s.role, Role::kDeveloper);
  EXPECT_EQ(s.user_agent, "Mozilla/5.0");
}

TEST_P(SessionTest, AnythingButALiveTokenIsTheSameRefusal) {
  const auto c = sessions_->create(user_, "", "");
  auto wrong_secret = c.token;
  wrong_secret.back() = wrong_secret.back() == 'A' ? 'B' : 'A';
  auto unknown = c.token;
  unknown[10] = unknown[10] == '0' ? '1' : '0';
  for (const auto& bad : {std::string("dcs_"), std::string("garbage"), wrong_secret, unknown,
                          std::string(c.token.size(), 'x')}) {
    EXPECT_DEVCYCLE_ERROR(sessions_->authenticate(bad), ErrorCode::kUnauthenticated,
                          "invalid session");
  }
}

TEST_P(SessionTest, IdleAndAbsoluteExpiry) {
  const auto c = sessions_->create(user_, "", "");
  // Used every 29 minutes, it lives on ...
  for (int i = 0; i < 24; ++i) {
    clock_->advance(29min);
    ASSERT_NO_THROW(sessions_->authenticate(c.token)) << i;
  }
  // ... until the absolute limit (12 h) ends it anyway.
  clock_->advance(29min);
  EXPECT_DEVCYCLE_ERROR(sessions_->authenticate(c.token), ErrorCode::kUnauthenticated, "invalid");

  const auto idle = sessions_->create(user_, "", "");
  clock_->advance(30min);
  EXPECT_DEVCYCLE_ERROR(sessions_->authenticate(idle.token), ErrorCode::kUnauthenticated, "");
  EXPECT_TRUE(sessions_->list("u-1").empty());
}

// Review of #20: a WebSocket's recheck every few seconds recorded use, so
// an idle tab with /ws open never idled out.
TEST_P(SessionTest, ARecheckDoesNotKeepAnIdleSessionAlive) {
  const auto c = sessions_->create(user_, "", "");
  for (int i = 0; i < 10; ++i) {
    clock_->advance(2min);
    ASSERT_NO_THROW(sessions_->authenticate(c.token, /*record_use=*/false)) << i;
  }
  clock_->advance(10min);  // 30 minutes since the last use
  EXPECT_DEVCYCLE_ERROR(sessions_->authenticate(c.token, false), ErrorCode::kUnauthenticated,
                        "invalid session");
}

TEST_P(SessionTest, RevokedSessionsEndAtOnceEvenWhenCached) {
  const auto a = sessions_->create(user_, "", "");
  const auto b = sessions_->create(user_, "", "");
  ASSERT_NO_THROW(sessions_->authenticate(a.token));  // now cached
  EXPECT_EQ(sessions_->list("u-1").size(), 2u);
  EXPECT_TRUE(sessions_->revoke(a.session.id).revoked_at.has_value());
  EXPECT_DEVCYCLE_ERROR(sessions_->authenticate(a.token), ErrorCode::kUnauthenticated, "");
  EXPECT_NO_THROW(sessions_->authenticate(b.token));
  EXPECT_EQ(sessions_->revoke_user("u-1"), 1);
  EXPECT_DEVCYCLE_ERROR(sessions_->authenticate(b.token), ErrorCode::kUnauthenticated, "");
  EXPECT_TRUE(sessions_->list("u-1").empty());
  EXPECT_DEVCYCLE_ERROR(sessions_->get("nope"), ErrorCode::kNotFound, "session");
}

TEST_P(SessionTest, CsrfTokenIsBoundToItsSession) {
  const auto a = sessions_->create(user_, "", "");
  const auto b = sessions_->create(user_, "", "");
  EXPECT_TRUE(sessions_->check_csrf(a.token, a.csrf_token));
  EXPECT_FALSE(sessions_->check_csrf(a.token, b.csrf_token));  // another session's
  EXPECT_FALSE(sessions_->check_csrf(a.token, ""));
  EXPECT_FALSE(sessions_->check_csrf(a.token, a.csrf_token.substr(1)));
  EXPECT_FALSE(sessions_->check_csrf("garbage", a.csrf_token));
  EXPECT_NE(a.csrf_token, b.csrf_token);
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionTest,
                         ::testing::ValuesIn(testing::database_backends("sessions.db")),
                         testing::backend_name);

class AuditTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    audit_ = std::make_unique<AuditLog>(*db_, clock_);
  }
  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<AuditLog> audit_;
};

TEST_P(AuditTest, QueriesByTimeActorAndAction) {
  const Micros start = clock_->now();
  audit_->record({"", "login.failed", "user:alice", "10.0.0.9", R"({"login":"alice"})"});
  clock_->advance(1s);
  audit_->record({"u-alice", "login.succeeded", "user:u-alice", "10.0.0.9"});
  clock_->advance(1s);
  audit_->record({"u-admin", "user.role_changed", "user:u-alice", "", R"({"role":"admin"})"});
  clock_->advance(1s);
  audit_->record({"u-alice", "api_key.created", "api_key:k1", ""});

  const auto all = audit_->query();
  ASSERT_EQ(all.entries.size(), 4u);
  EXPECT_EQ(all.entries.front().action, "api_key.created");  // newest first
  EXPECT_EQ(all.entries.back().detail, R"({"login":"alice"})");

  AuditFilter by_actor;
  by_actor.actor = "u-alice";
  EXPECT_EQ(audit_->query(by_actor).entries.size(), 2u);
  AuditFilter logins;
  logins.action = "login.";
  const auto l = audit_->query(logins);
  ASSERT_EQ(l.entries.size(), 2u);
  EXPECT_EQ(l.entries[0].action, "login.succeeded");
  AuditFilter window;
  window.after = start + 1'000'000;
  window.before = start + 3'000'000;
  const auto w = audit_->query(window);
  ASSERT_EQ(w.entries.size(), 2u);
  EXPECT_EQ(w.entries[0].action, "user.role_changed");

  AuditFilter paged;
  paged.limit = 3;
  const auto p1 = audit_->query(paged);
  ASSERT_EQ(p1.entries.size(), 3u);
  paged.page_token = p1.next_page_token;
  const auto p2 = audit_->query(paged);
  ASSERT_EQ(p2.entries.size(), 1u);
  EXPECT_EQ(p2.entries[0].action, "login.failed");
  EXPECT_TRUE(p2.next_page_token.empty());
}

TEST_P(AuditTest, BadEntriesAreRefusedAndWriteNothing) {
  EXPECT_DEVCYCLE_ERROR(audit_->record({"", "Login Failed", "", ""}), ErrorCode::kInvalidArgument,
                        "action");
  EXPECT_DEVCYCLE_ERROR(audit_->record({"", "login.", "", ""}), ErrorCode::kInvalidArgument,
                        "action");
  EXPECT_DEVCYCLE_ERROR(audit_->record({"", "x", "", "", "[1]"}), ErrorCode::kInvalidArgument,
                        "detail");
  EXPECT_DEVCYCLE_ERROR(audit_->record({"", "x", "", "", std::string(5000, ' ')}),
                        ErrorCode::kInvalidArgument, "detail");
  AuditFilter f;
  f.limit = 0;
  EXPECT_DEVCYCLE_ERROR(audit_->query(f), ErrorCode::kInvalidArgument, "limit");
  EXPECT_TRUE(audit_->query().entries.empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, AuditTest,
                         ::testing::ValuesIn(testing::database_backends("audit.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
