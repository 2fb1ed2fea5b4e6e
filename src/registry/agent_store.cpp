#include "registry/agent_store.h"

#include <nlohmann/json.hpp>

#include "devcycle/common/error.h"

namespace devcycle::internal {
namespace {

constexpr std::string_view kAgentColumns =
    "a.id, a.owner, a.name, a.type, a.description, a.status, a.configuration, a.labels, "
    "a.capacity, a.current_load, a.active_version, a.last_heartbeat, a.revision, a.created_at, "
    "a.updated_at, a.shared";

Agent agent_from(const Row& r) {
  Agent a;
  a.id = r[0].as_text();
  a.owner = r[1].as_text();
  a.name = r[2].as_text();
  a.type = r[3].as_text();
  a.description = r[4].as_text();
  a.status = parse_agent_status(r[5].as_text(), "agents.status");
  a.configuration = r[6].as_text();
  a.labels = nlohmann::json::parse(r[7].as_text()).get<std::map<std::string, std::string>>();
  a.capacity = static_cast<int>(r[8].as_int());
  a.load = static_cast<int>(r[9].as_int());
  a.active_version = r[10].as_optional_text();
  a.last_heartbeat = r[11].as_optional_int();
  a.revision = r[12].as_int();
  a.created_at = r[13].as_int();
  a.updated_at = r[14].as_int();
  a.shared = r[15].as_bool();
  return a;
}

std::string labels_json(const Agent& a) { return nlohmann::json(a.labels).dump(); }

}  // namespace

std::vector<Migration> AgentStore::migrations() {
  return {{"registry", 1, "agents, types, versions, capabilities, deployments",
           R"sql(
CREATE TABLE agent_types (
  name TEXT PRIMARY KEY,
  description TEXT NOT NULL,
  config_schema TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  type TEXT NOT NULL REFERENCES agent_types (name),
  description TEXT NOT NULL,
  status TEXT NOT NULL,
  configuration TEXT NOT NULL,
  labels TEXT NOT NULL,
  capacity BIGINT NOT NULL,
  current_load BIGINT NOT NULL,
  active_version TEXT,
  last_heartbeat BIGINT,
  revision BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (owner, name)
);
CREATE INDEX agents_liveness ON agents (status, last_heartbeat);
CREATE INDEX agents_type ON agents (type);
CREATE TABLE agent_labels (
  agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (agent_id, key)
);
CREATE INDEX agent_labels_key_value ON agent_labels (key, value);
CREATE TABLE agent_versions (
  agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  version TEXT NOT NULL,
  executor TEXT NOT NULL,
  notes TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (agent_id, version)
);
CREATE TABLE agent_capabilities (
  agent_id TEXT NOT NULL,
  version TEXT NOT NULL,
  name TEXT NOT NULL,
  capability_version TEXT NOT NULL,
  PRIMARY KEY (agent_id, version, name),
  FOREIGN KEY (agent_id, version) REFERENCES agent_versions (agent_id, version) ON DELETE CASCADE
);
CREATE INDEX agent_capabilities_name ON agent_capabilities (name);
CREATE TABLE agent_requirements (
  agent_id TEXT NOT NULL,
  version TEXT NOT NULL,
  name TEXT NOT NULL,
  version_range TEXT NOT NULL,
  PRIMARY KEY (agent_id, version, name),
  FOREIGN KEY (agent_id, version) REFERENCES agent_versions (agent_id, version) ON DELETE CASCADE
);
CREATE INDEX agent_requirements_name ON agent_requirements (name);
CREATE TABLE agent_deployments (
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
  version TEXT NOT NULL,
  previous_version TEXT,
  action TEXT NOT NULL,
  actor TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX agent_deployments_agent ON agent_deployments (agent_id, at);
)sql",
           ""},
          // Agents an admin lets every owner's runs use (docs/security.md).
          {"registry", 2, "shared agents",
           "ALTER TABLE agents ADD COLUMN shared BIGINT NOT NULL DEFAULT 0", ""}};
}

void AgentStore::insert_type(const AgentType& type) {
  t_.execute(
      "INSERT INTO agent_types (name, description, config_schema, created_at) "
      "VALUES ($1, $2, $3, $4)",
      {type.name, type.description, type.config_schema, type.created_at});
}

std::optional<AgentType> AgentStore::find_type(std::string_view name) {
  auto rs = t_.query(
      "SELECT name, description, config_schema, created_at FROM agent_types WHERE name = $1",
      {name});
  if (rs.empty()) return std::nullopt;
  return AgentType{rs[0][0].as_text(), rs[0][1].as_text(), rs[0][2].as_text(), rs[0][3].as_int()};
}

std::vector<AgentType> AgentStore::types() {
  std::vector<AgentType> out;
  for (const auto& r : t_.query(
           "SELECT name, description, config_schema, created_at FROM agent_types ORDER BY name")) {
    out.push_back({r[0].as_text(), r[1].as_text(), r[2].as_text(), r[3].as_int()});
  }
  return out;
}

void AgentStore::insert_agent(const Agent& a) {
  t_.execute(
      "INSERT INTO agents (id, owner, name, type, description, status, configuration, labels, "
      "capacity, current_load, active_version, last_heartbeat, revision, created_at, updated_at, "
      "shared) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
      {a.id, a.owner, a.name, a.type, a.description, to_string(a.status), a.configuration,
       labels_json(a), a.capacity, a.load, Value(a.active_version), Value(a.last_heartbeat),
       a.revision, a.created_at, a.updated_at, a.shared ? 1 : 0});
  write_labels(a);
}

void AgentStore::update_agent(const Agent& a) {
  t_.execute(
      "UPDATE agents SET description = $2, status = $3, configuration = $4, labels = $5, "
      "capacity = $6, current_load = $7, active_version = $8, last_heartbeat = $9, revision = $10, "
      "updated_at = $11, shared = $12 WHERE id = $1",
      {a.id, a.description, to_string(a.status), a.configuration, labels_json(a), a.capacity,
       a.load, Value(a.active_version), Value(a.last_heartbeat), a.revision, a.updated_at,
       a.shared ? 1 : 0});
  t_.execute("DELETE FROM agent_labels WHERE agent_id = $1", {a.id});
  write_labels(a);
}

void AgentStore::update_liveness(const Agent& a) {
  t_.execute("UPDATE agents SET status = $2, current_load = $3, last_heartbeat = $4 WHERE id = $1",
             {a.id, to_string(a.status), a.load, Value(a.last_heartbeat)});
}

void AgentStore::write_labels(const Agent& a) {
  for (const auto& [k, v] : a.labels) {
    t_.execute("INSERT INTO agent_labels (agent_id, key, value) VALUES ($1, $2, $3)", {a.id, k, v});
  }
}

std::vector<Agent> AgentStore::agents(std::string_view sql, std::span<const Value> params) {
  std::vector<Agent> out;
  for (const auto& r : t_.query(sql, params)) out.push_back(agent_from(r));
  return out;
}

std::optional<Agent> AgentStore::find_agent(std::string_view id) {
  const Value p[] = {id};
  auto found = agents("SELECT " + std::string(kAgentColumns) + " FROM agents a WHERE a.id = $1", p);
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

std::optional<Agent> AgentStore::find_agent_by_name(std::string_view owner, std::string_view name) {
  const Value p[] = {owner, name};
  auto found = agents(
      "SELECT " + std::string(kAgentColumns) + " FROM agents a WHERE a.owner = $1 AND a.name = $2",
      p);
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

bool AgentStore::delete_agent(std::string_view id) {
  return t_.execute("DELETE FROM agents WHERE id = $1", {id}) > 0;
}

std::vector<Agent> AgentStore::list_agents(const AgentFilter& f, const std::string& after_id,
                                           int limit) {
  std::string sql = "SELECT " + std::string(kAgentColumns) + " FROM agents a WHERE a.id > $1";
  std::vector<Value> params{after_id};
  auto param = [&](Value v) {
    params.push_back(std::move(v));
    return "$" + std::to_string(params.size());
  };
  if (f.owner) sql += " AND a.owner = " + param(*f.owner);
  if (f.type) sql += " AND a.type = " + param(*f.type);
  if (f.status) sql += " AND a.status = " + param(std::string(to_string(*f.status)));
  if (f.capability) {
    sql +=
        " AND EXISTS (SELECT 1 FROM agent_capabilities c WHERE c.agent_id = a.id"
        " AND c.version = a.active_version AND c.name = " +
        param(*f.capability) + ")";
  }
  for (const auto& [k, v] : f.labels) {
    sql += " AND EXISTS (SELECT 1 FROM agent_labels l WHERE l.agent_id = a.id AND l.key = " +
           param(k) + " AND l.value = " + param(v) + ")";
  }
  sql += " ORDER BY a.id LIMIT " + param(limit);
  return agents(sql, params);
}

std::vector<Agent> AgentStore::stale_agents(Micros cutoff) {
  const Value p[] = {cutoff};
  return agents("SELECT " + std::string(kAgentColumns) +
                    " FROM agents a WHERE a.status IN ('online', 'busy')"
                    " AND (a.last_heartbeat IS NULL OR a.last_heartbeat < $1) ORDER BY a.id",
                p);
}

void AgentStore::insert_version(const AgentVersion& v) {
  const auto text = v.version.to_string();
  t_.execute(
      "INSERT INTO agent_versions (agent_id, version, executor, notes, created_at) "
      "VALUES ($1, $2, $3, $4, $5)",
      {v.agent_id, text, v.executor, v.notes, v.created_at});
  for (const auto& c : v.capabilities) {
    t_.execute(
        "INSERT INTO agent_capabilities (agent_id, version, name, capability_version) "
        "VALUES ($1, $2, $3, $4)",
        {v.agent_id, text, c.name, c.version.to_string()});
  }
  for (const auto& r : v.requirements) {
    t_.execute(
        "INSERT INTO agent_requirements (agent_id, version, name, version_range) "
        "VALUES ($1, $2, $3, $4)",
        {v.agent_id, text, r.name, r.range.to_string()});
  }
}

std::optional<AgentVersion> AgentStore::find_version(std::string_view agent_id,
                                                     std::string_view version) {
  auto rs = t_.query(
      "SELECT version, executor, notes, created_at FROM agent_versions "
      "WHERE agent_id = $1 AND version = $2",
      {agent_id, version});
  if (rs.empty()) return std::nullopt;
  AgentVersion v;
  v.agent_id = std::string(agent_id);
  v.version = Version::parse(rs[0][0].as_text(), "agent_versions.version");
  v.executor = rs[0][1].as_text();
  v.notes = rs[0][2].as_text();
  v.created_at = rs[0][3].as_int();
  for (const auto& r : t_.query("SELECT name, capability_version FROM agent_capabilities "
                                "WHERE agent_id = $1 AND version = $2 ORDER BY name",
                                {agent_id, version})) {
    v.capabilities.push_back({r[0].as_text(), Version::parse(r[1].as_text())});
  }
  for (const auto& r : t_.query("SELECT name, version_range FROM agent_requirements "
                                "WHERE agent_id = $1 AND version = $2 ORDER BY name",
                                {agent_id, version})) {
    v.requirements.push_back({r[0].as_text(), VersionRange::parse(r[1].as_text())});
  }
  return v;
}

std::vector<AgentVersion> AgentStore::versions(std::string_view agent_id) {
  std::vector<AgentVersion> out;
  for (const auto& r :
       t_.query("SELECT version FROM agent_versions WHERE agent_id = $1", {agent_id})) {
    out.push_back(*find_version(agent_id, r[0].as_text()));
  }
  std::sort(out.begin(), out.end(),
            [](const AgentVersion& a, const AgentVersion& b) { return a.version > b.version; });
  return out;
}

void AgentStore::insert_deployment(const Deployment& d) {
  t_.execute(
      "INSERT INTO agent_deployments (id, agent_id, version, previous_version, action, actor, at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
      {d.id, d.agent_id, d.version, Value(d.previous_version), d.action, d.actor, d.at});
}

std::vector<Deployment> AgentStore::deployments(std::string_view agent_id) {
  std::vector<Deployment> out;
  for (const auto& r :
       t_.query("SELECT id, agent_id, version, previous_version, action, actor, at "
                "FROM agent_deployments WHERE agent_id = $1 ORDER BY at DESC, id DESC",
                {agent_id})) {
    out.push_back({r[0].as_text(), r[1].as_text(), r[2].as_text(), r[3].as_optional_text(),
                   r[4].as_text(), r[5].as_text(), r[6].as_int()});
  }
  return out;
}

std::vector<AgentCandidate> AgentStore::providers(std::string_view capability) {
  std::vector<AgentCandidate> out;
  for (const auto& r :
       t_.query("SELECT " + std::string(kAgentColumns) +
                    ", c.name, c.capability_version FROM agents a JOIN agent_capabilities c"
                    " ON c.agent_id = a.id AND c.version = a.active_version WHERE c.name = $1"
                    " ORDER BY a.id",
                {capability})) {
    out.push_back({agent_from(r), Capability{r[16].as_text(), Version::parse(r[17].as_text())}});
  }
  return out;
}

std::vector<Agent> AgentStore::requirers(std::string_view capability) {
  const Value p[] = {capability};
  return agents("SELECT " + std::string(kAgentColumns) +
                    " FROM agents a JOIN agent_requirements q ON q.agent_id = a.id"
                    " AND q.version = a.active_version WHERE q.name = $1 ORDER BY a.id",
                p);
}

}  // namespace devcycle::internal
