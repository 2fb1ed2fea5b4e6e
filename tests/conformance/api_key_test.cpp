// API keys over every Database backend: the whole lifecycle.
#include <gtest/gtest.h>

#include "devcycle/auth/api_keys.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

class ApiKeyTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    keys_ = std::make_unique<ApiKeyStore>(*db_, clock_);
  }
  std::int64_t rows() {
    return db_->read(
        [](Txn& t) { return t.query("SELECT COUNT(*) FROM api_keys")[0][0].as_int(); });
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<ApiKeyStore> keys_;
  Principal dev_{"u-dev", Role::kDeveloper, {}, ""};
  Principal admin_{"u-admin", Role::kAdmin, {}, ""};
};

TEST_P(ApiKeyTest, ShownOnceStoredHashedAndIdentifiedByPrefix) {
  const auto created = keys_->create(dev_, {"ci pipeline", Role::kDeveloper, {}, "", std::nullopt});
  EXPECT_TRUE(created.secret.starts_with(created.key.prefix + "_"));
  EXPECT_EQ(created.secret.size(), 60u);
  EXPECT_TRUE(created.key.prefix.starts_with("dck_"));
  // The database holds the prefix and a hash, never the secret part.
  const auto secret_part = created.secret.substr(17);
  const auto stored = db_->read([](Txn& t) { return t.query("SELECT * FROM api_keys"); });
  for (const auto& row : stored) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (row[i].type() == Value::Type::kText) {
        EXPECT_EQ(row[i].as_text().find(secret_part), std::string::npos);
      }
    }
  }
  const auto p = keys_->authenticate(created.secret);
  EXPECT_EQ(p.id, "u-dev");
  EXPECT_EQ(p.role, Role::kDeveloper);
  EXPECT_TRUE(keys_->get(created.key.id).last_used_at.has_value());
  const auto listed = keys_->list("u-dev");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].prefix, created.key.prefix);
}

TEST_P(ApiKeyTest, AgentKeysCarryTheirScope) {
  const auto agent_id = "0190c8a0-0000-7000-8000-0000000000bb";
  const auto created = keys_->create(
      dev_, {"builder agent", Role::kAgent, {"codegen", "lint"}, agent_id, std::nullopt});
  const auto p = keys_->authenticate(created.secret);
  EXPECT_EQ(p.role, Role::kAgent);
  EXPECT_EQ(p.capabilities, (std::vector<std::string>{"codegen", "lint"}));
  EXPECT_EQ(p.agent_id, agent_id);
  EXPECT_EQ(decide(p, Action::kExecute, {Resource::kTask, "t", "u-x", false, "codegen"}),
            Decision::kAllow);
  EXPECT_EQ(decide(p, Action::kExecute, {Resource::kTask, "t", "u-x", false, "deploy"}),
            Decision::kNotFound);
}

TEST_P(ApiKeyTest, RevokedExpiredWrongAndMalformedKeysAllLookTheSame) {
  const auto live = keys_->create(dev_, {"live", Role::kViewer, {}, "", std::nullopt});
  const auto revoked = keys_->create(dev_, {"revoked", Role::kViewer, {}, "", std::nullopt});
  const auto expiring =
      keys_->create(dev_, {"expiring", Role::kViewer, {}, "", clock_->now() + 60'000'000});
  keys_->revoke(revoked.key.id);
  EXPECT_TRUE(keys_->get(revoked.key.id).revoked_at.has_value());
  clock_->advance(2min);
  auto wrong = live.secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  auto unknown_prefix = live.secret;
  unknown_prefix[5] = unknown_prefix[5] == '0' ? '1' : '0';
  for (const auto& bad :
       {revoked.secret, expiring.secret, wrong, unknown_prefix, std::string("dck_nope"),
        std::string(""), std::string(200, 'x'), live.secret.substr(0, 59) + "\xff"}) {
    EXPECT_DEVCYCLE_ERROR(keys_->authenticate(bad), ErrorCode::kUnauthenticated, "invalid API key");
  }
  EXPECT_NO_THROW(keys_->authenticate(live.secret));
}

TEST_P(ApiKeyTest, NoKeyOutranksItsCreatorAndBadInputStoresNothing) {
  EXPECT_DEVCYCLE_ERROR(keys_->create(dev_, {"escalate", Role::kAdmin, {}, "", std::nullopt}),
                        ErrorCode::kPermissionDenied, "role", "developer", "admin");
  EXPECT_DEVCYCLE_ERROR(
      keys_->create({"u-v", Role::kViewer, {}, ""}, {"mine", Role::kViewer, {}, "", std::nullopt}),
      ErrorCode::kPermissionDenied, "viewer");
  EXPECT_DEVCYCLE_ERROR(keys_->create(dev_, {"", Role::kViewer, {}, "", std::nullopt}),
                        ErrorCode::kInvalidArgument, "name");
  EXPECT_DEVCYCLE_ERROR(keys_->create(dev_, {"a", Role::kAgent, {"codegen"}, "", std::nullopt}),
                        ErrorCode::kInvalidArgument, "agent_id");
  EXPECT_DEVCYCLE_ERROR(
      keys_->create(dev_,
                    {"a", Role::kViewer, {}, "0190c8a0-0000-7000-8000-0000000000bb", std::nullopt}),
      ErrorCode::kInvalidArgument, "agent_id");
  EXPECT_DEVCYCLE_ERROR(keys_->create(dev_, {"a", Role::kViewer, {"Bad Cap"}, "", std::nullopt}),
                        ErrorCode::kInvalidArgument, "capabilities[0]");
  EXPECT_DEVCYCLE_ERROR(keys_->create(dev_, {"a", Role::kViewer, {}, "", clock_->now()}),
                        ErrorCode::kInvalidArgument, "expires_at");
  EXPECT_EQ(rows(), 0);
  EXPECT_NO_THROW(keys_->create(admin_, {"ops", Role::kAdmin, {}, "", std::nullopt}));
  EXPECT_DEVCYCLE_ERROR(keys_->revoke("0190c8a0-0000-7000-8000-000000000000"), ErrorCode::kNotFound,
                        "api_key");
}

INSTANTIATE_TEST_SUITE_P(Backends, ApiKeyTest,
                         ::testing::ValuesIn(testing::database_backends("keys.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
