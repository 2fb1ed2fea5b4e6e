// The authorization matrix in docs/security.md, checked cell by cell: every
// action x role x own/other's object of every resource.
#include "devcycle/auth/authz.h"

#include <gtest/gtest.h>

#include "support/authz_matrix.h"
#include "support/error_matchers.h"

namespace devcycle {
namespace {

const auto& kResources = testing::matrix_resources();
const auto& kActions = testing::matrix_actions();

TEST(AuthorizationMatrixTest, CodeMatchesTheDocumentedTableInEveryCell) {
  const auto m = testing::read_authz_matrix(DEVCYCLE_DOCS_DIR "/security.md");
  ASSERT_EQ(m.header.size(), 9u) << "docs/security.md lost its authorization matrix";
  ASSERT_EQ(m.rows.size(), kResources.size() * kActions.size())
      << "every resource x action has a row";
  const Principal admin{"u-admin", Role::kAdmin, {}, ""};
  const Principal dev{"u-dev", Role::kDeveloper, {}, ""};
  const Principal viewer{"u-viewer", Role::kViewer, {}, ""};
  const Principal agent{"u-dev", Role::kAgent, {"codegen"}, "a-1"};
  int checked = 0;
  for (const auto& row : m.rows) {
    ASSERT_EQ(row.size(), 9u);
    ASSERT_TRUE(kResources.count(row[0])) << row[0];
    ASSERT_TRUE(kActions.count(row[1])) << row[1];
    const auto [resource, runs_code] = kResources.at(row[0]);
    const Action action = kActions.at(row[1]);
    auto object = [&](const std::string& owner, bool in_scope) {
      const bool creating = action == Action::kCreate;
      ObjectRef o{resource, creating ? "" : "obj-1", creating ? "" : owner, runs_code, ""};
      if (resource == Resource::kUser && !creating) o.id = owner;
      if (resource == Resource::kAgent && in_scope && !creating) o.id = "a-1";
      if (resource == Resource::kTask) o.capability = in_scope ? "codegen" : "deploy";
      return o;
    };
    const std::pair<Principal, ObjectRef> cases[] = {
        {admin, object("u-x", false)},      {dev, object("u-dev", false)},
        {dev, object("u-other", false)},    {viewer, object("u-viewer", false)},
        {viewer, object("u-other", false)}, {agent, object("u-other", true)},
        {agent, object("u-other", false)}};
    for (std::size_t i = 0; i < std::size(cases); ++i) {
      EXPECT_EQ(to_string(decide(cases[i].first, action, cases[i].second)), row[2 + i])
          << row[0] << " / " << row[1] << " / " << m.header[2 + i];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 10 * 5 * 7);
}

TEST(AuthorizationTest, ErrorsSayWhatWasRefusedButNotWhoOwnsIt) {
  const Principal viewer{"u-viewer", Role::kViewer, {}, ""};
  const Principal dev{"u-dev", Role::kDeveloper, {}, ""};
  EXPECT_DEVCYCLE_ERROR(
      authorize(viewer, Action::kUpdate, {Resource::kWorkflow, "w-1", "u-secret-owner", false, ""}),
      ErrorCode::kPermissionDenied, "a viewer may not update this workflow");
  try {
    authorize(dev, Action::kRead, {Resource::kApiKey, "k-9", "u-secret-owner", false, ""});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()).find("u-secret-owner"), std::string::npos);
  }
  EXPECT_NO_THROW(
      authorize(dev, Action::kExecute, {Resource::kWorkflow, "w-1", "u-dev", false, ""}));
  EXPECT_DEVCYCLE_ERROR(authorize(dev, Action::kCreate, {Resource::kAgent, "", "", true, ""}),
                        ErrorCode::kPermissionDenied, "developer", "agent");
}

}  // namespace
}  // namespace devcycle
