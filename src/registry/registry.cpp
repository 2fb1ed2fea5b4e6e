#include "devcycle/registry/registry.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "common/event_hub.h"
#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "common/quota_lock.h"
#include "devcycle/auth/secrets.h"
#include "devcycle/common/error.h"
#include "devcycle/common/json_schema.h"
#include "devcycle/common/uuid.h"
#include "registry/agent_store.h"

namespace devcycle {

using internal::AgentStore;
using internal::lock_quota;

namespace {

constexpr std::size_t kMaxDescription = 4096;
constexpr std::size_t kMaxConfiguration = 64 * 1024;
constexpr std::size_t kMaxLabels = 64;
constexpr std::size_t kMaxListItems = 100;
constexpr int kMaxCapacity = 10'000;
constexpr int kMaxLoad = 1'000'000;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

void check_agent_name(std::string_view field, std::string_view name) {
  internal::check_name(field, name, 128, "A-Za-z0-9", "A-Za-z0-9._-", "[A-Za-z0-9][A-Za-z0-9._-]*");
}

void check_labels(const std::map<std::string, std::string>& labels) {
  if (labels.size() > kMaxLabels) {
    invalid("agent.labels: " + std::to_string(labels.size()) + " labels, more than the " +
            std::to_string(kMaxLabels) + " allowed");
  }
  for (const auto& [k, v] : labels) {
    internal::check_name("agent.labels key", k, 63, "a-z0-9", "a-z0-9._/-",
                         "[a-z0-9][a-z0-9._/-]*");
    internal::check_text("agent.labels[\"" + k + "\"]", v, 256);
  }
}

void check_capacity(int capacity) {
  if (capacity < 1 || capacity > kMaxCapacity) {
    invalid("agent.capacity: " + std::to_string(capacity) + " is not between 1 and " +
            std::to_string(kMaxCapacity));
  }
}

// Checks `configuration` against the type's schema and returns it compacted.
std::string checked_configuration(const std::string& configuration, const AgentType& type) {
  if (configuration.size() > kMaxConfiguration) {
    invalid("agent.configuration: is " + std::to_string(configuration.size()) +
            " bytes, more than the " + std::to_string(kMaxConfiguration) + " allowed");
  }
  const auto doc = internal::parse_json(configuration, "agent.configuration");
  if (!doc.is_object()) invalid("agent.configuration: must be a JSON object");
  const auto schema =
      JsonSchema::parse(type.config_schema, "agent type " + type.name + " config_schema");
  const auto violations = internal::validate(schema, doc);
  if (!violations.empty()) {
    invalid("agent.configuration does not match the schema of type \"" + type.name +
            "\": " + describe(violations));
  }
  return doc.dump();
}

AgentStatus status_for_load(int load, int capacity) {
  return load >= capacity ? AgentStatus::kBusy : AgentStatus::kOnline;
}

Error not_found(std::string_view agent_id) {
  return Error(ErrorCode::kNotFound,
               "agent \"" + std::string(agent_id.substr(0, 64)) + "\" not found");
}

Agent must_find(AgentStore& store, std::string_view agent_id) {
  auto a = store.find_agent(agent_id);
  if (!a) throw not_found(agent_id);
  return std::move(*a);
}

// The stored text of a version named by the caller, or kNotFound.
AgentVersion must_find_version(AgentStore& store, const Agent& agent, std::string_view version) {
  const auto canonical = Version::parse(version, "version").to_string();
  auto v = store.find_version(agent.id, canonical);
  if (!v) {
    throw Error(ErrorCode::kNotFound, "agent \"" + agent.name + "\" has no version " + canonical);
  }
  return std::move(*v);
}

CompatibilityReport check_requirements(AgentStore& store, const Agent& agent,
                                       const AgentVersion& version) {
  CompatibilityReport report;
  for (const auto& req : version.requirements) {
    std::vector<AgentCandidate> offers;
    for (auto& p : store.providers(req.name)) {
      if (p.agent.id != agent.id && p.agent.status != AgentStatus::kDisabled)
        offers.push_back(std::move(p));
    }
    if (offers.empty()) {
      report.problems.push_back(
          {CompatibilityProblem::Kind::kUnmet, req.to_string(),
           req.to_string() + ": no deployed agent offers \"" + req.name + "\""});
      continue;
    }
    const bool met = std::any_of(offers.begin(), offers.end(), [&](const AgentCandidate& c) {
      return req.range.contains(c.capability.version);
    });
    if (!met) {
      std::string found;
      for (const auto& c : offers) {
        if (!found.empty()) found += ", ";
        found += c.capability.version.to_string() + " (" + c.agent.owner + "/" + c.agent.name + ")";
      }
      report.problems.push_back({CompatibilityProblem::Kind::kConflict, req.to_string(),
                                 req.to_string() + ": \"" + req.name + "\" is offered only at " +
                                     found + ", outside " + req.range.to_string()});
    }
  }
  return report;
}

void refuse_if_active(const Agent& agent, const std::string& version) {
  if (agent.active_version == version) {
    invalid("version: " + version + " is already the active version of agent \"" + agent.name +
            "\"");
  }
}

// Makes `version` the active one and records how it came to be (deploy or rollback).
Deployment activate(AgentStore& store, Agent& agent, const std::string& version,
                    const std::string& action, const std::string& actor, Micros now) {
  Deployment dep{new_uuid_v7(), agent.id, version, agent.active_version, action, actor, now};
  agent.active_version = version;
  agent.revision += 1;
  agent.updated_at = now;
  store.update_agent(agent);
  store.insert_deployment(dep);
  return dep;
}

}  // namespace

struct Registry::Impl {
  Database& db;
  RegistryOptions options;
  std::shared_ptr<internal::EventHub<AgentEvent>> hub =
      std::make_shared<internal::EventHub<AgentEvent>>();

  Impl(Database& d, RegistryOptions o) : db(d), options(std::move(o)) {}

  Micros now() const { return options.clock->now(); }

  void emit(const std::vector<AgentEvent>& events) { hub->emit(events); }

  AgentEvent event(AgentEvent::Kind kind, const Agent& a, AgentStatus old_status,
                   std::string version = {}) const {
    return AgentEvent{kind, a.id, a.owner, a.name, old_status, a.status, std::move(version), now()};
  }
};

std::vector<Migration> Registry::migrations() { return AgentStore::migrations(); }

Registry::Registry(Database& db, RegistryOptions options) {
  if (!options.clock) invalid("RegistryOptions.clock: must not be null");
  if (options.heartbeat_timeout.count() <= 0)
    invalid("RegistryOptions.heartbeat_timeout: must be positive");
  db.migrate(migrations());
  impl_ = std::make_shared<Impl>(db, std::move(options));
}

Registry::~Registry() = default;

AgentType Registry::define_type(const AgentTypeSpec& spec) {
  internal::check_lower_name("agent_type.name", spec.name, 64);
  internal::check_text("agent_type.description", spec.description, kMaxDescription);
  const auto schema = JsonSchema::parse(spec.config_schema, "agent_type.config_schema");
  AgentType type{spec.name, spec.description, schema.to_string(), impl_->now()};
  impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    if (store.find_type(type.name)) {
      throw Error(ErrorCode::kAlreadyExists,
                  "agent_type.name: an agent type named \"" + type.name + "\" already exists");
    }
    store.insert_type(type);
  });
  return type;
}

AgentType Registry::get_type(std::string_view name) {
  auto type = impl_->db.read([&](Txn& t) { return AgentStore(t).find_type(name); });
  if (!type)
    throw Error(ErrorCode::kNotFound,
                "agent type \"" + std::string(name.substr(0, 64)) + "\" not found");
  return *type;
}

std::vector<AgentType> Registry::list_types() {
  return impl_->db.read([](Txn& t) { return AgentStore(t).types(); });
}

Agent Registry::create(const AgentSpec& spec) {
  internal::check_text("agent.owner", spec.owner, 128, true);
  check_agent_name("agent.name", spec.name);
  internal::check_lower_name("agent.type", spec.type, 64);
  internal::check_text("agent.description", spec.description, kMaxDescription);
  check_labels(spec.labels);
  check_capacity(spec.capacity);
  if (spec.configuration.size() > kMaxConfiguration) checked_configuration(spec.configuration, {});
  if (impl_->options.secrets) {
    impl_->options.secrets->check_use(SecretStore::references(spec.configuration), spec.owner);
  }

  const auto now = impl_->now();
  Agent agent;
  agent.id = new_uuid_v7();
  agent.owner = spec.owner;
  agent.name = spec.name;
  agent.type = spec.type;
  agent.description = spec.description;
  agent.labels = spec.labels;
  agent.capacity = spec.capacity;
  agent.created_at = agent.updated_at = now;
  impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    const auto type = store.find_type(spec.type);
    if (!type) invalid("agent.type: no agent type named \"" + spec.type + "\"");
    agent.configuration = checked_configuration(spec.configuration, *type);
    if (store.find_agent_by_name(spec.owner, spec.name)) {
      throw Error(ErrorCode::kAlreadyExists, "agent.name: owner \"" + spec.owner +
                                                 "\" already has an agent named \"" + spec.name +
                                                 "\"");
    }
    if (const int quota = impl_->options.max_agents_per_owner; quota > 0) {
      lock_quota(t, "max_agents_per_owner", spec.owner);
      const auto have =
          t.query("SELECT COUNT(*) FROM agents WHERE owner = $1", {spec.owner})[0][0].as_int();
      if (have >= quota) {
        throw Error(ErrorCode::kResourceExhausted,
                    "quota: owner \"" + spec.owner + "\" has " + std::to_string(have) +
                        " agents, the most allowed (max_agents_per_owner); delete one first");
      }
    }
    store.insert_agent(agent);
  });
  impl_->emit({impl_->event(AgentEvent::Kind::kCreated, agent, agent.status)});
  return agent;
}

Agent Registry::get(std::string_view agent_id) {
  return impl_->db.read([&](Txn& t) {
    AgentStore store(t);
    return must_find(store, agent_id);
  });
}

Agent Registry::get_by_name(std::string_view owner, std::string_view name) {
  auto a = impl_->db.read([&](Txn& t) { return AgentStore(t).find_agent_by_name(owner, name); });
  if (!a) {
    throw Error(ErrorCode::kNotFound, "agent \"" + std::string(name.substr(0, 128)) +
                                          "\" of owner \"" + std::string(owner.substr(0, 128)) +
                                          "\" not found");
  }
  return *a;
}

AgentPage Registry::list(const AgentFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) {
    invalid("limit: " + std::to_string(filter.limit) + " is not between 1 and 1000");
  }
  if (!filter.page_token.empty() && !is_uuid(filter.page_token)) {
    invalid("page_token: not a token from a previous page");
  }
  AgentPage page;
  page.agents = impl_->db.read([&](Txn& t) {
    return AgentStore(t).list_agents(filter, filter.page_token, filter.limit + 1);
  });
  if (static_cast<int>(page.agents.size()) > filter.limit) {
    page.agents.pop_back();
    page.next_page_token = page.agents.back().id;
  }
  return page;
}

Agent Registry::update(std::string_view agent_id, const AgentUpdate& update) {
  if (update.description)
    internal::check_text("agent.description", *update.description, kMaxDescription);
  if (update.labels) check_labels(*update.labels);
  if (update.capacity) check_capacity(*update.capacity);
  if (update.configuration && update.configuration->size() > kMaxConfiguration) {
    checked_configuration(*update.configuration, {});
  }
  if (update.configuration && impl_->options.secrets) {
    // The owner never changes, so reading it first is as good as inside.
    impl_->options.secrets->check_use(SecretStore::references(*update.configuration),
                                      get(agent_id).owner);
  }
  AgentStatus old_status{};
  auto agent = impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    Agent a = must_find(store, agent_id);
    old_status = a.status;
    if (update.expected_revision && *update.expected_revision != a.revision) {
      throw Error(ErrorCode::kConflict, "agent \"" + a.name + "\": revision is " +
                                            std::to_string(a.revision) + ", not " +
                                            std::to_string(*update.expected_revision) +
                                            " (it was changed since it was read)");
    }
    if (update.description) a.description = *update.description;
    if (update.labels) a.labels = *update.labels;
    if (update.capacity) a.capacity = *update.capacity;
    if (update.shared) a.shared = *update.shared;
    if (update.configuration) {
      a.configuration = checked_configuration(*update.configuration, *store.find_type(a.type));
    }
    if (update.disabled) {
      if (*update.disabled)
        a.status = AgentStatus::kDisabled;
      else if (a.status == AgentStatus::kDisabled)
        a.status = AgentStatus::kOffline;
    } else if (update.capacity &&
               (a.status == AgentStatus::kOnline || a.status == AgentStatus::kBusy)) {
      a.status = status_for_load(a.load, a.capacity);
    }
    a.revision += 1;
    a.updated_at = impl_->now();
    store.update_agent(a);
    return a;
  });
  std::vector<AgentEvent> events{impl_->event(AgentEvent::Kind::kUpdated, agent, old_status)};
  if (agent.status != old_status) {
    events.push_back(impl_->event(AgentEvent::Kind::kStatusChanged, agent, old_status));
  }
  impl_->emit(events);
  return agent;
}

void Registry::remove(std::string_view agent_id) {
  auto agent = impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    Agent a = must_find(store, agent_id);
    store.delete_agent(a.id);
    return a;
  });
  impl_->emit({impl_->event(AgentEvent::Kind::kDeleted, agent, agent.status)});
}

AgentVersion Registry::add_version(std::string_view agent_id, const AgentVersionSpec& spec) {
  AgentVersion v;
  v.agent_id = std::string(agent_id);
  v.version = Version::parse(spec.version, "version");
  internal::check_text("version.executor", spec.executor, 1024);
  internal::check_text("version.notes", spec.notes, kMaxDescription);
  v.executor = spec.executor;
  v.notes = spec.notes;
  if (spec.capabilities.size() > kMaxListItems || spec.requirements.size() > kMaxListItems) {
    invalid("version: at most " + std::to_string(kMaxListItems) +
            " capabilities and requirements each");
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < spec.capabilities.size(); ++i) {
    const auto field = "version.capabilities[" + std::to_string(i) + "]";
    auto c = Capability::parse(spec.capabilities[i], field);
    if (!seen.insert(c.name).second) invalid(field + ": \"" + c.name + "\" is listed twice");
    v.capabilities.push_back(std::move(c));
  }
  seen.clear();
  for (std::size_t i = 0; i < spec.requirements.size(); ++i) {
    const auto field = "version.requirements[" + std::to_string(i) + "]";
    auto r = Requirement::parse(spec.requirements[i], field);
    if (!seen.insert(r.name).second) {
      invalid(field + ": \"" + r.name + "\" is required twice; combine the ranges in one");
    }
    v.requirements.push_back(std::move(r));
  }
  v.created_at = impl_->now();
  impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    const Agent a = must_find(store, agent_id);
    if (store.find_version(a.id, v.version.to_string())) {
      throw Error(ErrorCode::kAlreadyExists, "version: agent \"" + a.name +
                                                 "\" already has version " + v.version.to_string() +
                                                 " (versions are immutable)");
    }
    store.insert_version(v);
  });
  return v;
}

AgentVersion Registry::get_version(std::string_view agent_id, std::string_view version) {
  return impl_->db.read([&](Txn& t) {
    AgentStore store(t);
    return must_find_version(store, must_find(store, agent_id), version);
  });
}

std::vector<AgentVersion> Registry::versions(std::string_view agent_id) {
  return impl_->db.read([&](Txn& t) {
    AgentStore store(t);
    return store.versions(must_find(store, agent_id).id);
  });
}

Deployment Registry::deploy(std::string_view agent_id, std::string_view version,
                            const DeployOptions& options) {
  internal::check_text("actor", options.actor, 128, true);
  Agent agent;
  const auto d = impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    agent = must_find(store, agent_id);
    const auto v = must_find_version(store, agent, version);
    if (options.check) options.check(agent, v);  // before anything else is said about it
    const auto text = v.version.to_string();
    refuse_if_active(agent, text);
    if (!options.force) {
      const auto report = check_requirements(store, agent, v);
      if (!report.compatible()) {
        invalid("version " + text + " of agent \"" + agent.name + "\" has unmet requirements: " +
                report.describe() + " (deploy with force to override)");
      }
    }
    return activate(store, agent, text, "deploy", options.actor, impl_->now());
  });
  impl_->emit({impl_->event(AgentEvent::Kind::kDeployed, agent, agent.status, d.version)});
  return d;
}

Deployment Registry::rollback(std::string_view agent_id, std::optional<std::string> to_version,
                              const DeployOptions& options) {
  internal::check_text("actor", options.actor, 128, true);
  Agent agent;
  const auto d = impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    agent = must_find(store, agent_id);
    std::string target;
    if (to_version) {
      target = must_find_version(store, agent, *to_version).version.to_string();
    } else {
      const auto history = store.deployments(agent.id);
      if (history.empty() || !history.front().previous_version) {
        invalid("agent \"" + agent.name + "\" has no earlier deployed version to roll back to");
      }
      target = *history.front().previous_version;
    }
    if (options.check) options.check(agent, must_find_version(store, agent, target));
    refuse_if_active(agent, target);
    return activate(store, agent, target, "rollback", options.actor, impl_->now());
  });
  impl_->emit({impl_->event(AgentEvent::Kind::kRolledBack, agent, agent.status, d.version)});
  return d;
}

std::vector<Deployment> Registry::deployments(std::string_view agent_id) {
  return impl_->db.read([&](Txn& t) {
    AgentStore store(t);
    return store.deployments(must_find(store, agent_id).id);
  });
}

std::vector<AgentCandidate> Registry::select(const CapabilityQuery& query) {
  internal::check_lower_name("capability", query.capability, 128);
  const auto range = VersionRange::parse(query.range, "range");
  if (query.limit < 1 || query.limit > 1000) {
    invalid("limit: " + std::to_string(query.limit) + " is not between 1 and 1000");
  }
  auto all = impl_->db.read([&](Txn& t) { return AgentStore(t).providers(query.capability); });
  std::vector<AgentCandidate> out;
  for (auto& c : all) {
    const auto s = c.agent.status;
    if (s == AgentStatus::kDisabled || (s == AgentStatus::kOffline && !query.include_offline))
      continue;
    if (range.contains(c.capability.version)) out.push_back(std::move(c));
  }
  auto rank = [](const Agent& a) {
    switch (a.status) {
      case AgentStatus::kOnline:
        return 0;
      case AgentStatus::kBusy:
        return 1;
      default:
        return 2;
    }
  };
  std::stable_sort(out.begin(), out.end(), [&](const AgentCandidate& x, const AgentCandidate& y) {
    if (rank(x.agent) != rank(y.agent)) return rank(x.agent) < rank(y.agent);
    // Least loaded relative to capacity first: x.load/x.cap < y.load/y.cap.
    const auto lx = static_cast<std::int64_t>(x.agent.load) * y.agent.capacity;
    const auto ly = static_cast<std::int64_t>(y.agent.load) * x.agent.capacity;
    if (lx != ly) return lx < ly;
    return x.capability.version > y.capability.version;  // then the newest offer
  });
  if (static_cast<int>(out.size()) > query.limit) out.resize(query.limit);
  return out;
}

CompatibilityReport Registry::check_compatibility(std::string_view agent_id,
                                                  std::string_view version) {
  return impl_->db.read([&](Txn& t) {
    AgentStore store(t);
    const Agent a = must_find(store, agent_id);
    return check_requirements(store, a, must_find_version(store, a, version));
  });
}

std::vector<Agent> Registry::dependents(std::string_view capability) {
  internal::check_lower_name("capability", capability, 128);
  return impl_->db.read([&](Txn& t) { return AgentStore(t).requirers(capability); });
}

Agent Registry::heartbeat(std::string_view agent_id, int load) {
  if (load < 0 || load > kMaxLoad) {
    invalid("load: " + std::to_string(load) + " is not between 0 and " + std::to_string(kMaxLoad));
  }
  AgentStatus old_status{};
  auto agent = impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    Agent a = must_find(store, agent_id);
    old_status = a.status;
    a.load = load;
    a.last_heartbeat = impl_->now();
    if (a.status != AgentStatus::kDisabled) a.status = status_for_load(load, a.capacity);
    store.update_liveness(a);
    return a;
  });
  if (agent.status != old_status) {
    impl_->emit({impl_->event(AgentEvent::Kind::kStatusChanged, agent, old_status)});
  }
  return agent;
}

std::vector<Agent> Registry::sweep_offline() {
  const auto cutoff = impl_->now() - impl_->options.heartbeat_timeout.count();
  std::vector<AgentEvent> events;
  auto changed = impl_->db.write([&](Txn& t) {
    AgentStore store(t);
    auto stale = store.stale_agents(cutoff);
    for (auto& a : stale) {
      const auto old_status = a.status;
      a.status = AgentStatus::kOffline;
      a.load = 0;
      store.update_liveness(a);
      events.push_back(impl_->event(AgentEvent::Kind::kStatusChanged, a, old_status));
    }
    return stale;
  });
  impl_->emit(events);
  return changed;
}

Subscription Registry::subscribe(std::function<void(const AgentEvent&)> handler) {
  return impl_->hub->subscribe(std::move(handler));
}

}  // namespace devcycle
