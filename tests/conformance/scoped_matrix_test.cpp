// The authorization matrix of docs/security.md, driven through the
// authorizing facade (Platform::as): for every cell with an operation, the
// operation itself is performed for that principal on a fresh object and its
// outcome — done, refused (kPermissionDenied) or hidden (kNotFound) — must be
// the cell's. Cells without an operation of their own (deleting a workflow,
// executing an agent type, ...) are decide()'s alone, which
// tests/unit/authz_test.cpp checks cell by cell.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <set>
#include <thread>

#include "devcycle/auth/tokens.h"
#include "devcycle/platform/platform.h"
#include "support/authz_matrix.h"
#include "support/error_matchers.h"

namespace devcycle {
namespace {

constexpr const char* kPassword = "tolerable mule 9";

class ScopedMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PlatformOptions o;
    o.database = "sqlite::memory:";
    o.engine_workers = 0;
    o.monitor_interval = std::chrono::milliseconds(0);
    o.master_key = generate_master_key_hex();
    o.argon2_memory_bytes = 19u * 1024 * 1024;
    p_ = Platform::open(o);
    p_->registry().define_type({"worker", "", "{}"});
    auto& users = p_->identity().users();
    admin_ = users.create({"admin@example.com", "admin", kPassword, Role::kAdmin}).id;
    dev_ = users.create({"dev@example.com", "dev", kPassword, Role::kDeveloper}).id;
    viewer_ = users.create({"viewer@example.com", "viewer", kPassword, Role::kViewer}).id;
    other_ = users.create({"other@example.com", "other", kPassword, Role::kDeveloper}).id;
  }

  std::string unique(const std::string& prefix) { return prefix + std::to_string(++n_); }

  // Fresh objects of `owner`, made through the trusted (unscoped) API.
  std::string agent(const std::string& owner, bool runs_code) {
    AgentSpec spec;
    spec.owner = owner;
    spec.name = unique("agent-");
    spec.type = "worker";
    const auto a = p_->registry().create(spec);
    if (runs_code) {
      p_->registry().add_version(a.id, {"1.0.0", {"cap@1.0.0"}, {}, "process:[\"/bin/true\"]", ""});
      p_->registry().deploy(a.id, "1.0.0");
    }
    return a.id;
  }
  std::string workflow(const std::string& owner) {
    const auto name = unique("flow-");
    p_->workflows().create(
        R"({"name": ")" + name + R"(", "tasks": [{"id": "t", "capability": "cap"}]})", owner);
    return name;
  }
  devcycle::Run run(const std::string& owner) {
    StartRun r;
    r.workflow = workflow(owner);
    r.owner = owner;
    return p_->engine().start(r);
  }
  std::string task(const std::string& owner) {
    for (const auto& t : p_->engine().get(run(owner).id).tasks) return t.id;
    ADD_FAILURE() << "a run without tasks";
    return {};
  }
  std::string secret(const std::string& owner) {
    const auto name = unique("S");
    p_->secrets()->put(name, "value-" + name, owner);
    return name;
  }
  // (A viewer's key: one made before its owner was demoted.)
  std::string api_key(const std::string& owner) {
    return p_->identity()
        .keys()
        .create(Principal{owner, Role::kDeveloper, {}, ""},
                {unique("key-"), Role::kViewer, {}, "", {}})
        .key.id;
  }

  std::unique_ptr<Platform> p_;
  std::string admin_, dev_, viewer_, other_;
  int n_ = 0;
};

// What one cell's operation does, for the principal of the Scoped, on fresh
// objects of `owner`.
using Operation = std::function<void(Scoped, const std::string& owner)>;

TEST_F(ScopedMatrixTest, EveryCellWithAnOperationBehavesAsDocumented) {
  const auto m = testing::read_authz_matrix(DEVCYCLE_DOCS_DIR "/security.md");
  ASSERT_EQ(m.header.size(), 9u) << "docs/security.md lost its authorization matrix";

  int driven = 0;
  for (const auto& row : m.rows) {
    ASSERT_EQ(row.size(), 9u);
    const bool code = testing::matrix_resources().at(row[0]).second;
    const auto action = row[1];
    for (int col = 0; col < 7; ++col) {
      // The principal of the column and the owner of the object it acts on.
      const bool agent_key = col >= 5;
      const bool in_scope = col == 5;
      std::string owner = col == 1 ? dev_ : col == 3 ? viewer_ : col == 5 ? dev_ : other_;
      Principal who;
      if (col == 0) who = {admin_, Role::kAdmin, {}, ""};
      if (col == 1 || col == 2) who = {dev_, Role::kDeveloper, {}, ""};
      if (col == 3 || col == 4) who = {viewer_, Role::kViewer, {}, ""};
      std::string key_agent;
      if (agent_key) {
        key_agent = agent(dev_, code);
        who = {dev_, Role::kAgent, {"cap"}, key_agent};
      }
      // The agent a cell on agents acts on: the key's own when in scope.
      auto agent_of = [&] { return in_scope ? key_agent : agent(owner, code); };

      std::optional<Operation> op;
      const auto r = row[0];
      if (r == "agent" || (r == "agent that runs code" && action != "create")) {
        if (action == "read") op = [&](Scoped s, auto&) { s.agents().get(agent_of()); };
        if (action == "create") {
          op = [&](Scoped s, auto&) {
            AgentSpec spec;
            spec.name = unique("new-");
            spec.type = "worker";
            s.agents().create(spec);
          };
        }
        if (action == "update") {
          op = [&](Scoped s, auto&) {
            AgentUpdate u;
            u.description = "changed";
            s.agents().update(agent_of(), u);
          };
        }
        if (action == "delete") op = [&](Scoped s, auto&) { s.agents().remove(agent_of()); };
        if (action == "execute") op = [&](Scoped s, auto&) { s.agents().heartbeat(agent_of()); };
      } else if (r == "agent type") {
        if (action == "read") op = [](Scoped s, auto&) { s.agents().get_type("worker"); };
        if (action == "create") {
          op = [&](Scoped s, auto&) { s.agents().define_type({unique("type-"), "", "{}"}); };
        }
      } else if (r == "workflow" && !agent_key) {
        if (action == "read") op = [&](Scoped s, auto& o) { s.workflows().get(workflow(o)); };
        if (action == "create") {
          op = [&](Scoped s, auto&) {
            s.workflows().create(R"({"name": ")" + unique("new-flow-") +
                                 R"(", "tasks": [{"id": "t", "capability": "cap"}]})");
          };
        }
        if (action == "update") {
          op = [&](Scoped s, auto& o) {
            s.workflows().create(R"({"name": ")" + workflow(o) +
                                 R"(", "tasks": [{"id": "u", "capability": "cap"}]})");
          };
        }
        if (action == "execute") {
          op = [&](Scoped s, auto& o) {
            StartRun sr;
            sr.workflow = workflow(o);
            s.runs().start(sr);
          };
        }
      } else if (r == "run" && !agent_key) {
        if (action == "read") op = [&](Scoped s, auto& o) { s.runs().get(run(o).id); };
        if (action == "update") op = [&](Scoped s, auto& o) { s.runs().cancel(run(o).id); };
      } else if (r == "task" && !in_scope) {
        // (A key's tasks are those of its capabilities: decide() knows the
        // capability, a TaskRun does not carry it; the remote routes' tests
        // cover a key's own tasks.)
        if (action == "read") op = [&](Scoped s, auto& o) { s.runs().task(task(o)); };
        if (action == "update") op = [&](Scoped s, auto& o) { s.runs().cancel_task(task(o)); };
      } else if (r == "user") {
        if (action == "read") op = [](Scoped s, auto& o) { s.users().get(o); };
        if (action == "create") {
          op = [&](Scoped s, auto&) {
            const auto name = unique("newuser");
            s.users().create({name + "@example.com", name, kPassword, Role::kViewer});
          };
        }
        if (action == "delete") {
          // Another's account: a fresh one, so that later cells still have `other`.
          op = [&](Scoped s, auto& o) {
            if (o != other_) return s.users().remove(o);
            const auto name = unique("doomed");
            s.users().remove(p_->identity()
                                 .users()
                                 .create({name + "@example.com", name, kPassword, Role::kViewer})
                                 .id);
          };
        }
      } else if (r == "api key") {
        if (action == "read") op = [&](Scoped s, auto& o) { s.api_keys().get(api_key(o)); };
        if (action == "create") {
          op = [&](Scoped s, auto&) {
            s.api_keys().create({unique("key-"), Role::kViewer, {}, "", {}});
          };
        }
        if (action == "delete") op = [&](Scoped s, auto& o) { s.api_keys().revoke(api_key(o)); };
      } else if (r == "secret") {
        if (action == "read") op = [&](Scoped s, auto& o) { s.secrets().info(secret(o)); };
        if (action == "create") op = [&](Scoped s, auto&) { s.secrets().put(unique("N"), "v1v1"); };
        if (action == "update") op = [&](Scoped s, auto& o) { s.secrets().put(secret(o), "v2v2"); };
        if (action == "delete") op = [&](Scoped s, auto& o) { s.secrets().remove(secret(o)); };
      } else if (r == "audit log") {
        if (action == "read") op = [](Scoped s, auto&) { s.audit().query(); };
      }
      if (!op) continue;
      std::string outcome = "allow";
      try {
        (*op)(p_->as(who), owner);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kPermissionDenied) {
          outcome = "denied";
        } else if (e.code() == ErrorCode::kNotFound) {
          outcome = "hidden";
        } else {
          outcome = std::string("error: ") + e.what();
        }
      }
      EXPECT_EQ(outcome, row[2 + col]) << row[0] << " / " << action << " / " << m.header[2 + col];
      ++driven;
    }
  }
  // Most cells are operations; the rest are decide()'s (authz_test).
  EXPECT_GE(driven, 150);
}

// Review of #20: the owner check for a new workflow version ran before the
// catalog's transaction, so two developers creating one new name at once
// could both pass it, and the second then owned version 2 of the first's
// workflow. Now every name's versions have one owner, however they race.
TEST_F(ScopedMatrixTest, DevelopersRacingToCreateOneNewWorkflowNeverShareIt) {
  auto as_dev = p_->as(Principal{dev_, Role::kDeveloper, {}, ""});
  auto as_other = p_->as(Principal{other_, Role::kDeveloper, {}, ""});
  for (int round = 0; round < 20; ++round) {
    const auto name = unique("race-");
    auto create = [&](Scoped& who, const std::string& capability) {
      try {
        who.workflows().create(R"({"name": ")" + name +
                               R"(", "tasks": [{"id": "t", "capability": ")" + capability +
                               R"("}]})");
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied) << e.what();
      }
    };
    std::thread a([&] { create(as_dev, "build"); });
    std::thread b([&] { create(as_other, "test"); });
    a.join();
    b.join();
    std::set<std::string> owners;
    for (const auto& w : p_->workflows().versions(name)) owners.insert(w.owner);
    EXPECT_EQ(owners.size(), 1u) << name;
  }
}

}  // namespace
}  // namespace devcycle
