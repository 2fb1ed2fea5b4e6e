// The authorization matrix as docs/security.md documents it, read from the
// page itself, so that the tests check the code against what users read.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "devcycle/auth/authz.h"

namespace devcycle::testing {

struct AuthzMatrix {
  std::vector<std::string> header;             // resource, action, then the 7 columns
  std::vector<std::vector<std::string>> rows;  // "allow", "denied" or "hidden" per column
};

inline std::vector<std::string> table_cells(const std::string& line) {
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

// `security_md`: the path of docs/security.md.
inline AuthzMatrix read_authz_matrix(const std::string& security_md) {
  std::ifstream in(security_md);
  std::string line;
  bool in_table = false;
  AuthzMatrix m;
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
    auto c = table_cells(line);
    if (m.header.empty())
      m.header = c;
    else
      m.rows.push_back(c);
  }
  return m;
}

// The table's names of resources (with whether the agent runs code) and actions.
inline const std::map<std::string, std::pair<Resource, bool>>& matrix_resources() {
  static const std::map<std::string, std::pair<Resource, bool>> kResources = {
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
  return kResources;
}

inline const std::map<std::string, Action>& matrix_actions() {
  static const std::map<std::string, Action> kActions = {{"read", Action::kRead},
                                                         {"create", Action::kCreate},
                                                         {"update", Action::kUpdate},
                                                         {"delete", Action::kDelete},
                                                         {"execute", Action::kExecute}};
  return kActions;
}

}  // namespace devcycle::testing
