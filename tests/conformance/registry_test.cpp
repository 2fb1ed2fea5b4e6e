// The registry over every Database backend: each operation, and each kind of
// bad input refused with the right code, naming the field, the database
// left exactly as it was.
#include "devcycle/registry/registry.h"

#include <gtest/gtest.h>

#include <thread>

#include "devcycle/common/uuid.h"
#include "devcycle/store/database.h"
#include "support/backends.h"
#include "support/error_matchers.h"
#include "support/race.h"
#include "support/table_snapshot.h"
#include "support/temp_dir.h"

namespace devcycle {
namespace {

using namespace std::chrono_literals;

constexpr const char* kCodegenSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "model": {"type": "string", "enum": ["small", "large"]},
    "max_tokens": {"type": "integer", "minimum": 1, "maximum": 100000}
  },
  "required": ["model"]
})";

class RegistryTest : public ::testing::TestWithParam<testing::Backend> {
 protected:
  void SetUp() override {
    db_ = Database::open(GetParam().url(dir_));
    RegistryOptions options;
    options.clock = clock_;
    options.heartbeat_timeout = 30s;
    registry_ = std::make_unique<Registry>(*db_, options);
    registry_->define_type({"codegen", "Writes code", kCodegenSchema});
    registry_->define_type({"tester", "Runs tests", "{}"});
  }

  Agent make(const std::string& name, const std::string& owner = "alice",
             const std::string& type = "tester", int capacity = 1) {
    AgentSpec spec;
    spec.owner = owner;
    spec.name = name;
    spec.type = type;
    spec.capacity = capacity;
    if (type == "codegen") spec.configuration = R"({"model": "small"})";
    return registry_->create(spec);
  }

  // An agent with one deployed version offering `capabilities`.
  Agent deployed(const std::string& name, std::vector<std::string> capabilities,
                 std::vector<std::string> requirements = {}, const std::string& version = "1.0.0") {
    auto a = make(name);
    registry_->add_version(a.id,
                           {version, std::move(capabilities), std::move(requirements), "", ""});
    registry_->deploy(a.id, version, {"test", true, {}});
    return registry_->get(a.id);
  }

  // Every registry row, so that a refused call can be shown to change nothing.
  std::string snapshot() {
    return testing::table_snapshot(
        *db_, {"agent_types", "agents", "agent_labels", "agent_versions", "agent_capabilities",
               "agent_requirements", "agent_deployments"});
  }

  testing::TempDir dir_;
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();
  std::unique_ptr<Database> db_;
  std::unique_ptr<Registry> registry_;
};

TEST_P(RegistryTest, TypesAreDefinedOnceAndListed) {
  const auto t = registry_->get_type("codegen");
  EXPECT_EQ(t.description, "Writes code");
  EXPECT_NE(t.config_schema.find("\"additionalProperties\":false"), std::string::npos);
  EXPECT_EQ(registry_->list_types().size(), 2u);
  EXPECT_REFUSED(registry_->define_type({"codegen", "", "{}"}), ErrorCode::kAlreadyExists,
                 "agent_type.name", "codegen");
  EXPECT_REFUSED(registry_->define_type({"Bad Name", "", "{}"}), ErrorCode::kInvalidArgument,
                 "agent_type.name");
  EXPECT_REFUSED(registry_->define_type({"fmt", "", R"({"format": "uri"})"}),
                 ErrorCode::kInvalidArgument, "agent_type.config_schema", "format");
  EXPECT_DEVCYCLE_ERROR(registry_->get_type("nope"), ErrorCode::kNotFound, "nope");
}

TEST_P(RegistryTest, CreateStoresEveryFieldAndGetReturnsIt) {
  AgentSpec spec;
  spec.owner = "alice";
  spec.name = "gen-1";
  spec.type = "codegen";
  spec.description = "Generates code ✓";
  spec.configuration = R"({ "model" : "large", "max_tokens": 4000 })";
  spec.labels = {{"team", "core"}, {"region", "eu"}};
  spec.capacity = 4;
  clock_->set(1'800'000'000'000'000);
  const auto a = registry_->create(spec);
  EXPECT_TRUE(is_uuid(a.id));
  EXPECT_EQ(a.status, AgentStatus::kOffline);
  EXPECT_EQ(a.configuration, R"({"max_tokens":4000,"model":"large"})");
  EXPECT_EQ(a.created_at, 1'800'000'000'000'000);
  EXPECT_EQ(a.revision, 1);

  const auto got = registry_->get(a.id);
  EXPECT_EQ(got.name, "gen-1");
  EXPECT_EQ(got.owner, "alice");
  EXPECT_EQ(got.type, "codegen");
  EXPECT_EQ(got.description, "Generates code ✓");
  EXPECT_EQ(got.configuration, a.configuration);
  EXPECT_EQ(got.labels, spec.labels);
  EXPECT_EQ(got.capacity, 4);
  EXPECT_FALSE(got.active_version);
  EXPECT_FALSE(got.last_heartbeat);
  EXPECT_EQ(registry_->get_by_name("alice", "gen-1").id, a.id);
  EXPECT_DEVCYCLE_ERROR(registry_->get_by_name("bob", "gen-1"), ErrorCode::kNotFound, "gen-1");
  EXPECT_DEVCYCLE_ERROR(registry_->get("0190c8a0-0000-7000-8000-000000000000"),
                        ErrorCode::kNotFound, "0190c8a0");
}

TEST_P(RegistryTest, NamesAreUniquePerOwner) {
  make("builder", "alice");
  EXPECT_NO_THROW(make("builder", "bob"));
  EXPECT_REFUSED(make("builder", "alice"), ErrorCode::kAlreadyExists, "agent.name", "alice",
                 "builder");
}

TEST_P(RegistryTest, BadAgentSpecsAreRefusedNamingTheField) {
  make("existing");
  auto spec = [] {
    AgentSpec s;
    s.owner = "alice";
    s.name = "x";
    s.type = "codegen";
    s.configuration = R"({"model": "small"})";
    return s;
  };
  auto s = spec();
  s.name = "has space";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.name", "has space");
  s = spec();
  s.name = std::string(129, 'a');
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.name",
                 "longer than 128");
  s = spec();
  s.owner = "";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.owner", "empty");
  s = spec();
  s.type = "deployer";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.type", "deployer");
  s = spec();
  s.description = std::string(4097, 'd');
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.description", "4096");
  s = spec();
  s.description = "bad \xc3\x28 utf8";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.description", "UTF-8");
  s = spec();
  s.configuration = R"({"model": "huge", "max_tokens": 0, "extra": true})";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.configuration",
                 "$.model: must be one of", "$.max_tokens: must be at least 1",
                 "$.extra: is not an allowed property");
  s = spec();
  s.configuration = "{}";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "$.model: is required");
  s = spec();
  s.configuration = "[1, 2]";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.configuration",
                 "JSON object");
  s = spec();
  s.configuration = "{\"model\": ";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.configuration",
                 "not valid JSON");
  s = spec();
  s.configuration = "{\"model\": \"sm\xffll\"}";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.configuration");
  s = spec();
  s.configuration = R"({"model": "small", "pad": ")" + std::string(70'000, 'p') + "\"}";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.configuration",
                 "65536 allowed");
  s = spec();
  for (int i = 0; i < 65; ++i) s.labels["k" + std::to_string(i)] = "v";
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.labels", "64 allowed");
  s = spec();
  s.labels = {{"Bad Key", "v"}};
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.labels key");
  s = spec();
  s.labels = {{"ok", std::string(257, 'v')}};
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.labels[\"ok\"]");
  s = spec();
  s.capacity = 0;
  EXPECT_REFUSED(registry_->create(s), ErrorCode::kInvalidArgument, "agent.capacity");
}

TEST_P(RegistryTest, ListFiltersAndPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    AgentSpec s;
    s.owner = i < 3 ? "alice" : "bob";
    s.name = "a" + std::to_string(i);
    s.type = i % 2 ? "tester" : "codegen";
    s.configuration = i % 2 ? "{}" : R"({"model": "small"})";
    s.labels = {{"tier", i < 2 ? "gold" : "silver"}};
    ids.push_back(registry_->create(s).id);
  }
  registry_->heartbeat(ids[4]);
  registry_->add_version(ids[2], {"1.0.0", {"codegen@1.0.0"}, {}, "", ""});
  registry_->deploy(ids[2], "1.0.0");

  auto names = [](const AgentPage& p) {
    std::vector<std::string> out;
    for (const auto& a : p.agents) out.push_back(a.name);
    return out;
  };
  EXPECT_EQ(names(registry_->list()), (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"}));
  AgentFilter f;
  f.owner = "bob";
  EXPECT_EQ(names(registry_->list(f)), (std::vector<std::string>{"a3", "a4"}));
  f = {};
  f.type = "tester";
  EXPECT_EQ(names(registry_->list(f)), (std::vector<std::string>{"a1", "a3"}));
  f = {};
  f.status = AgentStatus::kOnline;
  EXPECT_EQ(names(registry_->list(f)), (std::vector<std::string>{"a4"}));
  f = {};
  f.capability = "codegen";
  EXPECT_EQ(names(registry_->list(f)), (std::vector<std::string>{"a2"}));
  f = {};
  f.labels = {{"tier", "gold"}};
  EXPECT_EQ(names(registry_->list(f)), (std::vector<std::string>{"a0", "a1"}));
  f.owner = "alice";
  f.type = "codegen";
  EXPECT_EQ(names(registry_->list(f)), (std::vector<std::string>{"a0"}));

  f = {};
  f.limit = 2;
  auto page = registry_->list(f);
  EXPECT_EQ(names(page), (std::vector<std::string>{"a0", "a1"}));
  ASSERT_FALSE(page.next_page_token.empty());
  f.page_token = page.next_page_token;
  page = registry_->list(f);
  EXPECT_EQ(names(page), (std::vector<std::string>{"a2", "a3"}));
  f.page_token = page.next_page_token;
  page = registry_->list(f);
  EXPECT_EQ(names(page), (std::vector<std::string>{"a4"}));
  EXPECT_TRUE(page.next_page_token.empty());

  f = {};
  f.limit = 0;
  EXPECT_DEVCYCLE_ERROR(registry_->list(f), ErrorCode::kInvalidArgument, "limit");
  f.limit = 1001;
  EXPECT_DEVCYCLE_ERROR(registry_->list(f), ErrorCode::kInvalidArgument, "limit");
  f = {};
  f.page_token = "garbage";
  EXPECT_DEVCYCLE_ERROR(registry_->list(f), ErrorCode::kInvalidArgument, "page_token");
}

TEST_P(RegistryTest, UpdateChangesOnlyWhatIsGivenAndBumpsTheRevision) {
  const auto a = make("gen", "alice", "codegen", 2);
  AgentUpdate u;
  u.description = "new words";
  u.configuration = R"({"model": "large"})";
  u.labels = std::map<std::string, std::string>{{"env", "prod"}};
  u.expected_revision = a.revision;
  clock_->advance(5s);
  const auto b = registry_->update(a.id, u);
  EXPECT_EQ(b.description, "new words");
  EXPECT_EQ(b.configuration, R"({"model":"large"})");
  EXPECT_EQ(b.labels, (std::map<std::string, std::string>{{"env", "prod"}}));
  EXPECT_EQ(b.capacity, 2);
  EXPECT_EQ(b.revision, a.revision + 1);
  EXPECT_EQ(b.updated_at, a.updated_at + 5'000'000);
  EXPECT_EQ(registry_->get(a.id).configuration, b.configuration);

  AgentFilter f;
  f.labels = {{"env", "prod"}};
  EXPECT_EQ(registry_->list(f).agents.size(), 1u);

  AgentUpdate stale;
  stale.description = "lost update";
  stale.expected_revision = a.revision;
  EXPECT_REFUSED(registry_->update(a.id, stale), ErrorCode::kConflict, "revision");

  AgentUpdate bad;
  bad.configuration = R"({"model": 7})";
  EXPECT_REFUSED(registry_->update(a.id, bad), ErrorCode::kInvalidArgument, "$.model");
  bad = {};
  bad.capacity = 10'001;
  EXPECT_REFUSED(registry_->update(a.id, bad), ErrorCode::kInvalidArgument, "agent.capacity");
  EXPECT_REFUSED(registry_->update("0190c8a0-0000-7000-8000-000000000000", u), ErrorCode::kNotFound,
                 "not found");
}

TEST_P(RegistryTest, DisablingOverridesHeartbeatsUntilEnabled) {
  const auto a = make("t");
  registry_->heartbeat(a.id);
  AgentUpdate u;
  u.disabled = true;
  EXPECT_EQ(registry_->update(a.id, u).status, AgentStatus::kDisabled);
  EXPECT_EQ(registry_->heartbeat(a.id).status, AgentStatus::kDisabled);
  u.disabled = false;
  EXPECT_EQ(registry_->update(a.id, u).status, AgentStatus::kOffline);
  EXPECT_EQ(registry_->heartbeat(a.id).status, AgentStatus::kOnline);
}

TEST_P(RegistryTest, RemoveDeletesEverythingOfTheAgent) {
  const auto keep = deployed("keep", {"lint@1.0.0"});
  const auto gone = deployed("gone", {"codegen@1.0.0"}, {"lint@^1"});
  AgentUpdate u;
  u.labels = std::map<std::string, std::string>{{"x", "y"}};
  registry_->update(gone.id, u);
  registry_->remove(gone.id);
  EXPECT_DEVCYCLE_ERROR(registry_->get(gone.id), ErrorCode::kNotFound, gone.id);
  const auto leftovers = db_->read([&](Txn& t) {
    std::int64_t n = 0;
    for (const char* table : {"agent_labels", "agent_versions", "agent_capabilities",
                              "agent_requirements", "agent_deployments"}) {
      n += t.query(std::string("SELECT COUNT(*) FROM ") + table + " WHERE agent_id = $1",
                   {gone.id})[0][0]
               .as_int();
    }
    return n;
  });
  EXPECT_EQ(leftovers, 0);
  EXPECT_EQ(registry_->get(keep.id).active_version, "1.0.0");
  EXPECT_REFUSED(registry_->remove(gone.id), ErrorCode::kNotFound, "not found");
}

TEST_P(RegistryTest, VersionsAreImmutableAndSortedByPrecedence) {
  const auto a = make("gen");
  for (const char* v : {"1.0.0", "1.10.0", "1.2.0", "2.0.0-rc.1", "2.0.0"}) {
    registry_->add_version(a.id, {v, {"codegen@" + std::string(v)}, {}, "inproc:gen", "notes"});
  }
  std::vector<std::string> order;
  for (const auto& v : registry_->versions(a.id)) order.push_back(v.version.to_string());
  EXPECT_EQ(order, (std::vector<std::string>{"2.0.0", "2.0.0-rc.1", "1.10.0", "1.2.0", "1.0.0"}));
  const auto v = registry_->get_version(a.id, "1.10.0");
  ASSERT_EQ(v.capabilities.size(), 1u);
  EXPECT_EQ(v.capabilities[0].to_string(), "codegen@1.10.0");
  EXPECT_EQ(v.executor, "inproc:gen");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.2.0", {}, {}, "", ""}), ErrorCode::kAlreadyExists,
                 "1.2.0", "immutable");
  EXPECT_DEVCYCLE_ERROR(registry_->get_version(a.id, "9.9.9"), ErrorCode::kNotFound, "9.9.9");
}

TEST_P(RegistryTest, BadVersionSpecsAreRefusedNamingTheField) {
  const auto a = make("gen");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0", {}, {}, "", ""}), ErrorCode::kInvalidArgument,
                 "version", "semantic version");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0.0", {"codegen"}, {}, "", ""}),
                 ErrorCode::kInvalidArgument, "version.capabilities[0]", "name@version");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0.0", {"codegen@1.x"}, {}, "", ""}),
                 ErrorCode::kInvalidArgument, "version.capabilities[0] version");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0.0", {"a@1.0.0", "a@2.0.0"}, {}, "", ""}),
                 ErrorCode::kInvalidArgument, "version.capabilities[1]", "twice");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0.0", {}, {"lint@>=banana"}, "", ""}),
                 ErrorCode::kInvalidArgument, "version.requirements[0] range");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0.0", {}, {"lint@^1", "lint@^2"}, "", ""}),
                 ErrorCode::kInvalidArgument, "version.requirements[1]", "required twice");
  std::vector<std::string> many;
  for (int i = 0; i < 101; ++i) many.push_back("c" + std::to_string(i) + "@1.0.0");
  EXPECT_REFUSED(registry_->add_version(a.id, {"1.0.0", many, {}, "", ""}),
                 ErrorCode::kInvalidArgument, "at most 100");
  EXPECT_REFUSED(
      registry_->add_version("0190c8a0-0000-7000-8000-000000000000", {"1.0.0", {}, {}, "", ""}),
      ErrorCode::kNotFound, "not found");
}

TEST_P(RegistryTest, DeployKeepsExactlyOneActiveVersionAndAHistory) {
  const auto a = make("gen");
  registry_->add_version(a.id, {"1.0.0", {"codegen@1.0.0"}, {}, "", ""});
  registry_->add_version(a.id, {"1.1.0", {"codegen@1.1.0"}, {}, "", ""});
  registry_->add_version(a.id, {"2.0.0", {"codegen@2.0.0"}, {}, "", ""});
  clock_->advance(1s);
  registry_->deploy(a.id, "1.0.0", {"alice", false, {}});
  clock_->advance(1s);
  registry_->deploy(a.id, "1.1.0", {"alice", false, {}});
  clock_->advance(1s);
  registry_->deploy(a.id, "2.0.0", {"bob", false, {}});
  EXPECT_EQ(registry_->get(a.id).active_version, "2.0.0");

  clock_->advance(1s);
  const auto back = registry_->rollback(a.id, std::nullopt, {"carol", false, {}});
  EXPECT_EQ(back.version, "1.1.0");
  EXPECT_EQ(back.previous_version, "2.0.0");
  EXPECT_EQ(back.action, "rollback");
  EXPECT_EQ(registry_->get(a.id).active_version, "1.1.0");
  clock_->advance(1s);
  registry_->rollback(a.id, std::string("1.0.0"));
  EXPECT_EQ(registry_->get(a.id).active_version, "1.0.0");

  const auto history = registry_->deployments(a.id);
  ASSERT_EQ(history.size(), 5u);
  EXPECT_EQ(history[0].version, "1.0.0");
  EXPECT_EQ(history[4].version, "1.0.0");
  EXPECT_FALSE(history[4].previous_version);
  EXPECT_EQ(history[2].actor, "bob");

  EXPECT_REFUSED(registry_->deploy(a.id, "1.0.0"), ErrorCode::kInvalidArgument,
                 "already the active");
  EXPECT_REFUSED(registry_->deploy(a.id, "3.0.0"), ErrorCode::kNotFound, "3.0.0");
  EXPECT_REFUSED(registry_->deploy(a.id, "three"), ErrorCode::kInvalidArgument, "version");
  EXPECT_REFUSED(registry_->rollback(a.id, std::string("1.0.0")), ErrorCode::kInvalidArgument,
                 "already the active");
  const auto fresh = make("fresh");
  registry_->add_version(fresh.id, {"1.0.0", {}, {}, "", ""});
  EXPECT_REFUSED(registry_->rollback(fresh.id), ErrorCode::kInvalidArgument,
                 "no earlier deployed version");
}

TEST_P(RegistryTest, CompatibilityReportsEveryUnmetAndConflictingRequirement) {
  deployed("linter", {"lint@1.4.0"});
  deployed("old-tests", {"test@0.9.0"});
  const auto a = make("gen");
  registry_->add_version(
      a.id, {"1.0.0", {"codegen@1.0.0"}, {"lint@^1.2", "test@^1.0", "deploy"}, "", ""});
  const auto report = registry_->check_compatibility(a.id, "1.0.0");
  // Problems come in requirement-name order.
  ASSERT_EQ(report.problems.size(), 2u) << report.describe();
  EXPECT_EQ(report.problems[0].kind, CompatibilityProblem::Kind::kUnmet);
  EXPECT_EQ(report.problems[0].requirement, "deploy@*");
  EXPECT_EQ(report.problems[1].kind, CompatibilityProblem::Kind::kConflict);
  EXPECT_EQ(report.problems[1].requirement, "test@^1.0");
  EXPECT_NE(report.problems[1].message.find("0.9.0 (alice/old-tests)"), std::string::npos);

  EXPECT_REFUSED(registry_->deploy(a.id, "1.0.0"), ErrorCode::kInvalidArgument, "test@^1.0",
                 "deploy@*", "unmet requirements");
  deployed("tests", {"test@1.3.0"});
  deployed("deployer", {"deploy@3.0.0"});
  EXPECT_TRUE(registry_->check_compatibility(a.id, "1.0.0").compatible());
  EXPECT_NO_THROW(registry_->deploy(a.id, "1.0.0"));

  const auto deps = registry_->dependents("lint");
  ASSERT_EQ(deps.size(), 1u);
  EXPECT_EQ(deps[0].name, "gen");
}

TEST_P(RegistryTest, OwnOfferAndDisabledAgentsDoNotSatisfyRequirements) {
  const auto self = make("self");
  registry_->add_version(self.id, {"1.0.0", {"lint@1.0.0"}, {"lint@1"}, "", ""});
  EXPECT_FALSE(registry_->check_compatibility(self.id, "1.0.0").compatible());
  const auto other = deployed("other", {"lint@1.0.0"});
  EXPECT_TRUE(registry_->check_compatibility(self.id, "1.0.0").compatible());
  AgentUpdate u;
  u.disabled = true;
  registry_->update(other.id, u);
  EXPECT_FALSE(registry_->check_compatibility(self.id, "1.0.0").compatible());
}

TEST_P(RegistryTest, SelectPrefersOnlineAgentsWithFreeCapacity) {
  auto cap = [&](const std::string& name, const std::string& version, int capacity) {
    auto a = make(name, "alice", "tester", capacity);
    registry_->add_version(a.id, {"1.0.0", {"codegen@" + version}, {}, "", ""});
    registry_->deploy(a.id, "1.0.0");
    return a;
  };
  const auto busy = cap("busy", "2.1.0", 1);
  const auto half = cap("half", "2.0.0", 4);
  const auto idle = cap("idle", "2.0.5", 4);
  const auto old = cap("old", "1.9.0", 4);
  const auto asleep = cap("asleep", "2.2.0", 4);
  const auto off = cap("off", "2.3.0", 4);
  registry_->heartbeat(busy.id, 1);
  registry_->heartbeat(half.id, 2);
  registry_->heartbeat(idle.id, 0);
  registry_->heartbeat(old.id, 0);
  registry_->heartbeat(off.id, 0);
  AgentUpdate u;
  u.disabled = true;
  registry_->update(off.id, u);

  auto names = [](const std::vector<AgentCandidate>& cs) {
    std::vector<std::string> out;
    for (const auto& c : cs) out.push_back(c.agent.name);
    return out;
  };
  CapabilityQuery q;
  q.capability = "codegen";
  q.range = "^2.0";
  EXPECT_EQ(names(registry_->select(q)), (std::vector<std::string>{"idle", "half", "busy"}));
  q.include_offline = true;
  EXPECT_EQ(names(registry_->select(q)),
            (std::vector<std::string>{"idle", "half", "busy", "asleep"}));
  q.limit = 1;
  const auto best = registry_->select(q);
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].capability.to_string(), "codegen@2.0.5");
  q = {};
  q.capability = "codegen";
  q.range = "<2";
  EXPECT_EQ(names(registry_->select(q)), (std::vector<std::string>{"old"}));
  q.range = "^9";
  EXPECT_TRUE(registry_->select(q).empty());
  q.range = "^^";
  EXPECT_DEVCYCLE_ERROR(registry_->select(q), ErrorCode::kInvalidArgument, "range");
  q.range = "*";
  q.capability = "Not A Name";
  EXPECT_DEVCYCLE_ERROR(registry_->select(q), ErrorCode::kInvalidArgument, "capability");
}

TEST_P(RegistryTest, OnlyTheActiveVersionOffersCapabilities) {
  const auto a = make("gen");
  registry_->add_version(a.id, {"1.0.0", {"codegen@1.0.0"}, {}, "", ""});
  registry_->add_version(a.id, {"2.0.0", {"review@1.0.0"}, {}, "", ""});
  registry_->heartbeat(a.id);
  CapabilityQuery q;
  q.capability = "codegen";
  EXPECT_TRUE(registry_->select(q).empty());  // nothing deployed yet
  registry_->deploy(a.id, "1.0.0");
  EXPECT_EQ(registry_->select(q).size(), 1u);
  registry_->deploy(a.id, "2.0.0");
  EXPECT_TRUE(registry_->select(q).empty());
  q.capability = "review";
  EXPECT_EQ(registry_->select(q).size(), 1u);
}

TEST_P(RegistryTest, HeartbeatsSetStatusAndTheMonitorMarksMissedOnesOffline) {
  const auto a = make("worker", "alice", "tester", 2);
  const auto b = make("other");
  std::vector<AgentEvent> events;
  auto sub = registry_->subscribe([&](const AgentEvent& e) { events.push_back(e); });

  auto h = registry_->heartbeat(a.id, 1);
  EXPECT_EQ(h.status, AgentStatus::kOnline);
  EXPECT_EQ(h.last_heartbeat, clock_->now());
  EXPECT_EQ(h.revision, a.revision);  // liveness is not a configuration change
  EXPECT_EQ(registry_->heartbeat(a.id, 2).status, AgentStatus::kBusy);
  EXPECT_EQ(registry_->heartbeat(a.id, 2).status, AgentStatus::kBusy);  // no event: no change
  registry_->heartbeat(b.id);
  EXPECT_REFUSED(registry_->heartbeat(a.id, -1), ErrorCode::kInvalidArgument, "load");
  EXPECT_REFUSED(registry_->heartbeat("0190c8a0-0000-7000-8000-000000000000"), ErrorCode::kNotFound,
                 "not found");

  clock_->advance(20s);
  registry_->heartbeat(b.id);
  EXPECT_TRUE(registry_->sweep_offline().empty());
  clock_->advance(15s);  // a: 35 s since its beat; b: 15 s
  const auto swept = registry_->sweep_offline();
  ASSERT_EQ(swept.size(), 1u);
  EXPECT_EQ(swept[0].id, a.id);
  EXPECT_EQ(registry_->get(a.id).status, AgentStatus::kOffline);
  EXPECT_EQ(registry_->get(b.id).status, AgentStatus::kOnline);

  std::vector<std::string> seen;
  for (const auto& e : events) {
    seen.push_back(e.name + ":" + std::string(to_string(e.old_status)) + "->" +
                   std::string(to_string(e.new_status)));
    EXPECT_EQ(e.kind, AgentEvent::Kind::kStatusChanged);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"worker:offline->online", "worker:online->busy",
                                            "other:offline->online", "worker:busy->offline"}));
}

TEST_P(RegistryTest, SubscribersHearEveryChangeUntilTheyLetGo) {
  std::vector<std::string> kinds;
  auto sub =
      registry_->subscribe([&](const AgentEvent& e) { kinds.emplace_back(to_string(e.kind)); });
  const auto a = make("gen");
  registry_->add_version(a.id, {"1.0.0", {}, {}, "", ""});
  registry_->add_version(a.id, {"1.1.0", {}, {}, "", ""});
  registry_->deploy(a.id, "1.0.0");
  registry_->deploy(a.id, "1.1.0");
  registry_->rollback(a.id);
  AgentUpdate u;
  u.description = "d";
  registry_->update(a.id, u);
  EXPECT_THROW(make("gen"), Error);  // refused: no event
  registry_->remove(a.id);
  EXPECT_EQ(kinds,
            (std::vector<std::string>{"agent.created", "agent.deployed", "agent.deployed",
                                      "agent.rolled_back", "agent.updated", "agent.deleted"}));
  sub.reset();
  make("after");
  EXPECT_EQ(kinds.size(), 6u);
}

TEST_P(RegistryTest, MonitorThreadSweepsOnItsOwn) {
  const auto a = make("w");
  registry_->heartbeat(a.id);
  clock_->advance(60s);
  AgentMonitor monitor(*registry_, 5ms);
  // Liveness, not speed: wait up to 10 s for the thread to act.
  for (int i = 0; i < 1000 && registry_->get(a.id).status != AgentStatus::kOffline; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(registry_->get(a.id).status, AgentStatus::kOffline);
}

TEST_P(RegistryTest, AgentQuotaPerOwner) {
  RegistryOptions options;
  options.clock = clock_;
  options.max_agents_per_owner = 2;
  registry_ = std::make_unique<Registry>(*db_, options);
  make("one");
  make("two");
  EXPECT_DEVCYCLE_ERROR(make("three"), ErrorCode::kResourceExhausted, "quota", "owner \"alice\"",
                        "max_agents_per_owner");
  EXPECT_NO_THROW(make("three", "bob"));
  registry_->remove(registry_->get_by_name("alice", "one").id);
  EXPECT_NO_THROW(make("three"));
}

// Two servers on one database creating agents for one owner at once: the
// quota holds across them (each has its own writer connection).
TEST_P(RegistryTest, AgentQuotaHoldsForTwoServersCreatingAtOnce) {
  if (GetParam().name == "sqlite_memory") GTEST_SKIP() << "a second open is another database";
  auto db2 = Database::open(GetParam().url(dir_));
  RegistryOptions options;
  options.clock = clock_;
  options.max_agents_per_owner = 3;
  registry_ = std::make_unique<Registry>(*db_, options);
  Registry second(*db2, options);
  const auto outcome = testing::race(6, 8, ErrorCode::kResourceExhausted, [&](int t, int i) {
    AgentSpec spec;
    spec.owner = "alice";
    spec.name = "a" + std::to_string(t) + "-" + std::to_string(i);
    spec.type = "tester";
    (t % 2 ? second : *registry_).create(spec);
  });
  EXPECT_EQ(outcome.succeeded, 3);
  EXPECT_EQ(outcome.refused, 45);
  AgentFilter alice;
  alice.owner = "alice";
  EXPECT_EQ(registry_->list(alice).agents.size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Backends, RegistryTest,
                         ::testing::ValuesIn(testing::database_backends("registry.db")),
                         testing::backend_name);

}  // namespace
}  // namespace devcycle
