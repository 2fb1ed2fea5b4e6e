// The authorization matrix in docs/security.md, checked cell by cell: every
// action x role x own/other's object of every resource.
#include "devcycle/authz.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support/error_matchers.h"

namespace devcycle {
namespace {

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  std::getline(ss, cell, '|');  // before the first bar
  while (std::getline(ss, cell, '|')) {
    const auto b = cell.find_first_not_of(' ');
    const auto e = cell.find_last_not_of(' ');
    out.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  return out;
}

struct Matrix {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

Matrix read_matrix() {
  std::ifstream in(DEVCYCLE_DOCS_DIR "/security.md");
  std::string line;
  bool in_table = false;
  Matrix m;
  while (std::getline(in, line)) {
    if (line.find("<!-- authorization-matrix -->") != std::string::npos) {
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    if (!line.starts_with("|")) {
      if (!m.header.empty()) break;
      continue;
    }
    if (line.starts_with("|---")) continue;
    auto c = cells(line);
    if (m.header.empty())
      m.header = c;
    else
      m.rows.push_back(c);
  }
  return m;
}

const std::map<std::string, std::pair<Resource, bool>> kResources = {
    {"agent", {Resource::kAgent, false}},
    {"agent that runs code", {Resource::kAgent, true}},
    {"agent type", {Resource::kAgentType, false}},
    {"workflow", {Resource::kWorkflow, false}},
    {"run", {Resource::kRun, false}},
    {"task", {Resource::kTask, false}},
    {"user", {Resource::kUser, false}},
    {"api key", {Resource::kApiKey, false}},
    {"secret", {Resource::kSecret, false}},
    {"audit log", {Resource::kAuditLog, false}}};
const std::map<std::string, Action> kActions = {{"read", Action::kRead},
                                                {"create", Action::kCreate},
                                                {"update", Action::kUpdate},
                                                {"delete", Action::kDelete},
                                                {"execute", Action::kExecute}};

TEST(AuthorizationMatrixTest, CodeMatchesTheDocumentedTableInEveryCell) {
  const auto m = read_matrix();
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
