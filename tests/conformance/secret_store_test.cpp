// Secrets over every Database backend: sealed at rest, never listed with
// their values, redacted from text, bound to their master key.
#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "devcycle/auth/secrets.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

constexpr const char* kMaster = "8f14e45fceea167a5a36dedd4bea2543c9f0f895fb98ab9159f51fd0297e236d";
constexpr const char* kOtherMaster =
    "c9f0f895fb98ab9159f51fd0297e236d8f14e45fceea167a5a36dedd4bea2543";

class SecretStoreTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    secrets_ = std::make_unique<SecretStore>(*db_, kMaster, clock_);
  }
  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<SecretStore> secrets_;
};

TEST_P(SecretStoreTest, SealedAtRestAndRevealedOnlyOnPurpose) {
  const std::string value = "ghp_SuperSecretDeployToken123";
  const auto info = secrets_->put("DEPLOY_TOKEN", value, "u-admin");
  EXPECT_EQ(info.version, 1);
  EXPECT_EQ(secrets_->reveal("DEPLOY_TOKEN"), value);
  // Nothing in the database holds the value in clear.
  const auto rows = db_->read([](Txn& t) { return t.query("SELECT * FROM secrets"); });
  ASSERT_EQ(rows.size(), 1u);
  for (std::size_t i = 0; i < rows[0].size(); ++i) {
    const auto& v = rows[0][i];
    const std::string bytes = v.type() == Value::Type::kBlob   ? v.as_blob().str()
                              : v.type() == Value::Type::kText ? v.as_text()
                                                               : "";
    EXPECT_EQ(bytes.find(value), std::string::npos) << i;
  }
  clock_->advance(std::chrono::seconds(5));
  const auto replaced = secrets_->put("DEPLOY_TOKEN", "another value", "u-dev");
  EXPECT_EQ(replaced.version, 2);
  EXPECT_EQ(replaced.owner, "u-admin");  // a new value never transfers ownership
  EXPECT_EQ(replaced.created_at, info.created_at);
  EXPECT_GT(replaced.updated_at, info.updated_at);
  EXPECT_EQ(secrets_->reveal("DEPLOY_TOKEN"), "another value");
  secrets_->put("API_KEY", "k-123456", "u-admin");
  const auto listed = secrets_->list();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "API_KEY");
  secrets_->remove("API_KEY");
  EXPECT_DEVCYCLE_ERROR(secrets_->reveal("API_KEY"), ErrorCode::kNotFound, "secret \"API_KEY\"");
  EXPECT_DEVCYCLE_ERROR(secrets_->remove("API_KEY"), ErrorCode::kNotFound, "API_KEY");
  EXPECT_DEVCYCLE_ERROR(secrets_->info("API_KEY"), ErrorCode::kNotFound, "API_KEY");
}

TEST_P(SecretStoreTest, BadInputNamesTheFieldAndNeverTheValue) {
  EXPECT_DEVCYCLE_ERROR(secrets_->put("1BAD", "value", "u"), ErrorCode::kInvalidArgument, "name");
  EXPECT_DEVCYCLE_ERROR(secrets_->put("BAD-NAME", "value", "u"), ErrorCode::kInvalidArgument,
                        "name");
  EXPECT_DEVCYCLE_ERROR(secrets_->put("OK", "", "u"), ErrorCode::kInvalidArgument, "value");
  try {
    secrets_->put("OK", std::string(70'000, 'z'), "u");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("zzzz"), std::string::npos);
  }
  EXPECT_TRUE(secrets_->list().empty());
}

TEST_P(SecretStoreTest, RedactsEveryValueFromText) {
  secrets_->put("TOKEN", "tok-abcdef", "u");
  secrets_->put("LONGER", "tok-abcdef-and-more", "u");
  secrets_->put("TINY", "ab", "u");  // too short to redact safely
  EXPECT_EQ(secrets_->redact("curl -H 'Bearer tok-abcdef' x; tok-abcdef-and-more; ab"),
            "curl -H 'Bearer [redacted:TOKEN]' x; [redacted:LONGER]; ab");
  EXPECT_EQ(secrets_->redact("nothing here"), "nothing here");
  secrets_->put("TOKEN", "rotated-value", "u");
  EXPECT_EQ(secrets_->redact("tok-abcdef rotated-value"), "tok-abcdef [redacted:TOKEN]");
}

// Issue #20: a PEM key reached the logs a line at a time, and a value an
// agent echoed into its output appeared there JSON-escaped; neither was
// redacted.
TEST_P(SecretStoreTest, RedactsMultiLineValuesLineByLineAndEscapedValuesInJson) {
  const std::string pem =
      "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"
      "-----END PRIVATE KEY-----\n";
  secrets_->put("DEPLOY_KEY", pem, "u");
  EXPECT_EQ(secrets_->redact("stderr: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
            "stderr: [redacted:DEPLOY_KEY]");
  const auto in_json = nlohmann::json({{"echo", pem}}).dump();
  const auto redacted = secrets_->redact(in_json);
  EXPECT_EQ(redacted.find("MIIEvQ"), std::string::npos) << redacted;
  EXPECT_EQ(nlohmann::json::parse(redacted)["echo"], "[redacted:DEPLOY_KEY]");
  secrets_->put("QUOTED", "tok\"with\\quotes", "u");
  EXPECT_EQ(secrets_->redact(R"({"o": "tok\"with\\quotes"})"), R"({"o": "[redacted:QUOTED]"})");
}

TEST_P(SecretStoreTest, ResolvesReferencesInTrustedText) {
  secrets_->put("TOKEN", "tok\"quoted", "u");
  EXPECT_EQ(
      secrets_->resolve_references(
          R"({"auth": "Bearer {{ secrets.TOKEN }}", "x": "{{secrets.TOKEN}}", "y": "{{ input.z }}"})",
          "u"),
      R"({"auth": "Bearer tok\"quoted", "x": "tok\"quoted", "y": "{{ input.z }}"})");
  EXPECT_DEVCYCLE_ERROR(secrets_->resolve_references(R"({"a": "{{ secrets.NOPE }}"})", "u"),
                        ErrorCode::kNotFound, "NOPE");
}

TEST_P(SecretStoreTest, AnotherMasterKeyCannotOpenThem) {
  secrets_->put("TOKEN", "tok-abcdef", "u");
  EXPECT_DEVCYCLE_ERROR(SecretStore(*db_, kOtherMaster, clock_), ErrorCode::kInvalidArgument,
                        "master key", "another master key");
}

INSTANTIATE_TEST_SUITE_P(Backends, SecretStoreTest,
                         ::testing::ValuesIn(testing::database_backends("secrets.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

// Two servers on one database putting the same secret at once: every put
// gets a version of its own, and none fails.
class SharedSecretStoreTest : public SecretStoreTest {};

TEST_P(SharedSecretStoreTest, TwoProcessesPuttingOneSecretEachGetAVersion) {
  auto db2 = Database::open(GetParam().url(dir_));
  SecretStore secrets2(*db2, kMaster, clock_);
  std::mutex mu;
  std::set<int> versions;
  std::vector<std::thread> threads;
  for (auto* store : {secrets_.get(), &secrets2}) {
    threads.emplace_back([&, store] {
      for (int i = 0; i < 50; ++i) {
        try {
          const auto info = store->put("SHARED", "value " + std::to_string(i), "u-admin");
          std::lock_guard lock(mu);
          versions.insert(info.version);
        } catch (const Error& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(versions.size(), 100u) << "two puts got the same version";
  EXPECT_EQ(secrets_->info("SHARED").version, 100);
}

INSTANTIATE_TEST_SUITE_P(Backends, SharedSecretStoreTest,
                         ::testing::ValuesIn(testing::durable_database_backends("secrets.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
