// The registry's small store: its SQL, over any Database. Every function
// runs inside the caller's transaction. Internal.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devcycle/registry/registry.h"
#include "devcycle/store/database.h"

namespace devcycle::internal {

class AgentStore {
 public:
  explicit AgentStore(Txn& txn) : t_(txn) {}

  static std::vector<Migration> migrations();

  void insert_type(const AgentType& type);
  std::optional<AgentType> find_type(std::string_view name);
  std::vector<AgentType> types();

  void insert_agent(const Agent& agent);
  // Writes every mutable column and the labels of `agent`.
  void update_agent(const Agent& agent);
  // Writes only status, load and last_heartbeat (heartbeats change no revision).
  void update_liveness(const Agent& agent);
  std::optional<Agent> find_agent(std::string_view id);
  std::optional<Agent> find_agent_by_name(std::string_view owner, std::string_view name);
  bool delete_agent(std::string_view id);
  // Up to `limit` agents matching `filter` with ids above `after_id`, by id.
  std::vector<Agent> list_agents(const AgentFilter& filter, const std::string& after_id, int limit);
  // Online or busy agents whose last heartbeat is before `cutoff`.
  std::vector<Agent> stale_agents(Micros cutoff);

  void insert_version(const AgentVersion& version);
  std::optional<AgentVersion> find_version(std::string_view agent_id, std::string_view version);
  std::vector<AgentVersion> versions(std::string_view agent_id);

  void insert_deployment(const Deployment& deployment);
  std::vector<Deployment> deployments(std::string_view agent_id);

  // Agents with an active version that offers `capability`, disabled ones included.
  std::vector<AgentCandidate> providers(std::string_view capability);
  // Agents whose active version requires `capability`.
  std::vector<Agent> requirers(std::string_view capability);

 private:
  std::vector<Agent> agents(std::string_view sql, std::span<const Value> params);
  void write_labels(const Agent& agent);

  Txn& t_;
};

}  // namespace devcycle::internal
