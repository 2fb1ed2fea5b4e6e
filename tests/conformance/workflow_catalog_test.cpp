// The workflow catalog over every Database backend.
#include <gtest/gtest.h>

#include <latch>
#include <set>
#include <thread>

#include "devcycle/registry/registry.h"
#include "devcycle/workflow/workflow.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

const char* kV1 =
    R"({"name": "ship", "tasks": [{"id": "build", "capability": "codegen", "version": "^2"}]})";
const char* kV2 =
    R"({"name": "ship", "tasks": [{"id": "build", "capability": "codegen", "version": "^2"},
                                                  {"id": "test", "capability": "test", "depends_on": ["build"]}]})";

class WorkflowCatalogTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    RegistryOptions ro;
    ro.clock = clock_;
    registry_ = std::make_unique<Registry>(*db_, ro);
    catalog_ = std::make_unique<WorkflowCatalog>(*db_, registry_.get(), clock_);
  }

  std::int64_t rows() {
    return db_->read(
        [](Txn& t) { return t.query("SELECT COUNT(*) FROM workflows")[0][0].as_int(); });
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<WorkflowCatalog> catalog_;
};

TEST_P(WorkflowCatalogTest, VersionsAreNumberedImmutableAndPinned) {
  const auto v1 = catalog_->create(kV1, "alice");
  EXPECT_EQ(v1.version, 1);
  EXPECT_EQ(v1.owner, "alice");
  EXPECT_EQ(v1.checksum.size(), 16u);
  clock_->advance(std::chrono::seconds(1));
  const auto v2 = catalog_->create(kV2, "alice");
  EXPECT_EQ(v2.version, 2);
  EXPECT_EQ(catalog_->get("ship").version, 2);
  const auto pinned = catalog_->get("ship", 1);
  EXPECT_EQ(pinned.definition.tasks.size(), 1u);
  EXPECT_EQ(pinned.definition_json, v1.definition_json);
  const auto all = catalog_->versions("ship");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].version, 2);
  EXPECT_EQ(catalog_->list().size(), 1u);
  EXPECT_EQ(catalog_->list()[0].latest_version, 2);
}

TEST_P(WorkflowCatalogTest, ApplyingTheSameDefinitionTwiceIsHarmless) {
  catalog_->create(kV1, "alice");
  // Same meaning, different spelling: still the same version.
  const auto again = catalog_->create(
      R"({ "tasks": [{"version": "^2", "capability": "codegen", "id": "build"}], "name": "ship" })",
      "alice");
  EXPECT_EQ(again.version, 1);
  EXPECT_EQ(rows(), 1);
}

TEST_P(WorkflowCatalogTest, AnExplicitVersionMustBeTheNextOne) {
  catalog_->create(kV1, "alice");
  std::string v3 = kV2;
  v3.insert(1, "\"version\": 3, ");
  EXPECT_DEVCYCLE_ERROR(catalog_->create(v3, "alice"), ErrorCode::kConflict, "$.version",
                        "at version 1");
  std::string v2 = kV2;
  v2.insert(1, "\"version\": 2, ");
  EXPECT_EQ(catalog_->create(v2, "alice").version, 2);
  EXPECT_EQ(catalog_->create(v2, "alice").version, 2);  // repeat: same version
  EXPECT_EQ(rows(), 2);
}

TEST_P(WorkflowCatalogTest, InvalidDefinitionsStoreNothingAndListEveryProblem) {
  EXPECT_DEVCYCLE_ERROR(
      catalog_->create(
          R"({"name": "x", "tasks": [{"id": "a", "capability": "c", "depends_on": ["a", "b"]}]})",
          "alice"),
      ErrorCode::kInvalidArgument, "$.tasks[0].depends_on[0]: a task cannot depend on itself",
      "$.tasks[0].depends_on[1]: unknown task \"b\"");
  EXPECT_DEVCYCLE_ERROR(catalog_->create(kV1, ""), ErrorCode::kInvalidArgument, "owner");
  EXPECT_EQ(rows(), 0);
  EXPECT_DEVCYCLE_ERROR(catalog_->get("x"), ErrorCode::kNotFound, "\"x\"");
  EXPECT_DEVCYCLE_ERROR(catalog_->versions("x"), ErrorCode::kNotFound, "\"x\"");
  catalog_->create(kV1, "alice");
  EXPECT_DEVCYCLE_ERROR(catalog_->get("ship", 7), ErrorCode::kNotFound, "version 7");
}

TEST_P(WorkflowCatalogTest, CapabilitiesNoAgentOffersAreWarnings) {
  auto created = catalog_->create(
      R"({"name": "w", "tasks": [{"id": "a", "capability": "codegen", "version": "^2"},
                                 {"id": "b", "agent": "ops/deployer"}]})",
      "alice");
  ASSERT_EQ(created.warnings.size(), 2u);
  EXPECT_EQ(created.warnings[0].path, "$.tasks[0].capability");
  EXPECT_NE(created.warnings[0].message.find("no registered agent offers codegen@^2"),
            std::string::npos);
  EXPECT_EQ(created.warnings[1].path, "$.tasks[1].agent");

  registry_->define_type({"gen", "", "{}"});
  AgentSpec spec;
  spec.owner = "ops";
  spec.name = "deployer";
  spec.type = "gen";
  const auto agent = registry_->create(spec);
  registry_->add_version(agent.id, {"1.0.0", {"codegen@2.3.0"}, {}, "", ""});
  registry_->deploy(agent.id, "1.0.0");
  auto [def, report] = validate_definition(created.definition_json, registry_.get());
  EXPECT_TRUE(report.problems.empty()) << report.describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, WorkflowCatalogTest,
                         ::testing::ValuesIn(testing::database_backends("wf.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle

namespace devcycle {
namespace {

// Two servers on one database that store the same workflow at the same
// moment (each applying its configuration at start, say): both get the same
// version, not an error and not two versions.
class SharedWorkflowCatalogTest : public WorkflowCatalogTest {};

TEST_P(SharedWorkflowCatalogTest, TwoProcessesStoringOneWorkflowAgree) {
  auto db2 = Database::open(GetParam().url(dir_));
  Registry registry2(*db2);
  WorkflowCatalog catalog2(*db2, &registry2, clock_);
  for (int round = 0; round < 10; ++round) {
    std::string definition = kV1;
    definition.replace(definition.find("ship"), 4, "ship" + std::to_string(round));
    std::latch start(4);
    std::vector<StoredWorkflow> got(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        try {
          got[i] = (i % 2 ? catalog2 : *catalog_).create(definition, "alice");
        } catch (const Error& e) {
          ADD_FAILURE() << "round " << round << ": " << e.what();
        }
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::string> ids;
    for (const auto& w : got) {
      EXPECT_EQ(w.version, 1) << round;
      ids.insert(w.id);
    }
    EXPECT_EQ(ids.size(), 1u) << "round " << round << ": one version, stored once";
  }
  EXPECT_EQ(rows(), 10);
}

INSTANTIATE_TEST_SUITE_P(Backends, SharedWorkflowCatalogTest,
                         ::testing::ValuesIn(testing::durable_database_backends("wf.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
