#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/checksum.h"
#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "devcycle/auth/secrets.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "devcycle/workflow/workflow.h"
#include "workflow/catalog_view.h"

namespace devcycle {
namespace {

constexpr std::string_view kColumns = "id, name, version, owner, definition, checksum, created_at";

// Validation is a pure function of the stored text and versions never
// change, so every catalog in the process shares the results (run starts
// would otherwise re-validate their definition each time). Bounded.
std::shared_ptr<const WorkflowDefinition> cached_definition(const std::string& text) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const WorkflowDefinition>> cache;
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(text); it != cache.end()) return it->second;
  }
  auto [def, report] = validate_definition(text);
  if (!def) return nullptr;
  auto shared = std::make_shared<const WorkflowDefinition>(std::move(*def));
  std::lock_guard lock(mu);
  if (cache.size() >= 1024) cache.clear();
  cache.emplace(text, shared);
  return shared;
}

StoredWorkflow from_row(const Row& r) {
  StoredWorkflow w;
  w.id = r[0].as_text();
  w.name = r[1].as_text();
  w.version = static_cast<int>(r[2].as_int());
  w.owner = r[3].as_text();
  w.definition_json = r[4].as_text();
  w.checksum = r[5].as_text();
  w.created_at = r[6].as_int();
  const auto def = cached_definition(w.definition_json);
  if (!def) {
    auto [_, report] = validate_definition(w.definition_json);
    throw Error(ErrorCode::kInternal, "stored workflow " + w.name + " v" +
                                          std::to_string(w.version) +
                                          " no longer validates: " + report.describe());
  }
  w.definition = *def;
  return w;
}

}  // namespace

std::vector<Migration> WorkflowCatalog::migrations() {
  return {{"workflow", 1, "workflow definitions",
           "CREATE TABLE workflows ("
           " id TEXT PRIMARY KEY,"
           " name TEXT NOT NULL,"
           " version BIGINT NOT NULL,"
           " owner TEXT NOT NULL,"
           " definition TEXT NOT NULL,"
           " checksum TEXT NOT NULL,"
           " created_at BIGINT NOT NULL,"
           " UNIQUE (name, version))",
           ""}};
}

WorkflowCatalog::WorkflowCatalog(Database& db, Registry* registry, std::shared_ptr<Clock> clock,
                                 SecretStore* secrets)
    : db_(db), registry_(registry), clock_(std::move(clock)), secrets_(secrets) {
  if (!clock_) throw Error(ErrorCode::kInvalidArgument, "WorkflowCatalog clock: must not be null");
  db_.migrate(migrations());
}

StoredWorkflow WorkflowCatalog::create(
    std::string_view definition_json, std::string_view owner,
    const std::function<void(const std::string& existing_owner)>& may_add_version) {
  internal::check_text("owner", owner, 128, true);
  auto [def, report] = validate_definition(definition_json, registry_);
  if (!def) throw Error(ErrorCode::kInvalidArgument, "workflow definition: " + report.describe());
  if (secrets_) {
    // Checked again when each task executes: a secret may change hands.
    for (const auto& task : def->tasks) {
      secrets_->check_use(SecretStore::references(task.input), owner);
    }
  }
  std::optional<int> requested;
  {
    const auto doc = internal::parse_json(definition_json, "$");
    if (const auto it = doc.find("version"); it != doc.end()) requested = it->get<int>();
  }
  StoredWorkflow w;
  w.name = def->name;
  w.owner = std::string(owner);
  w.definition_json = def->to_json();
  w.checksum = internal::fnv1a64_hex(w.definition_json);
  w.definition = std::move(*def);
  w.warnings = report.warnings();
  const auto stored = db_.write([&](Txn& t) {
    // Versions of one name are numbered one transaction at a time, also
    // across processes on PostgreSQL (SQLite has one writer): two servers
    // storing the same definition at once both get its one version.
    if (t.dialect() == Dialect::kPostgres)
      t.query("SELECT pg_advisory_xact_lock(hashtext($1))", {"workflow\n" + w.name});
    auto latest = t.query("SELECT " + std::string(kColumns) +
                              " FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1",
                          {w.name});
    if (!latest.empty() && may_add_version) may_add_version(latest[0][3].as_text());
    const int latest_version = latest.empty() ? 0 : static_cast<int>(latest[0][2].as_int());
    if (!latest.empty() && latest[0][5].as_text() == w.checksum &&
        (!requested || *requested == latest_version)) {
      return std::optional<StoredWorkflow>(from_row(latest[0]));  // unchanged: same version
    }
    if (requested && *requested != latest_version + 1) {
      throw Error(ErrorCode::kConflict, "$.version: " + std::to_string(*requested) +
                                            " cannot be created; workflow \"" + w.name +
                                            "\" is at version " + std::to_string(latest_version) +
                                            (latest_version ? " (versions are immutable)" : ""));
    }
    w.id = new_uuid_v7();
    w.version = latest_version + 1;
    w.created_at = clock_->now();
    t.execute(
        "INSERT INTO workflows (" + std::string(kColumns) + ") VALUES ($1, $2, $3, $4, $5, $6, $7)",
        {w.id, w.name, w.version, w.owner, w.definition_json, w.checksum, w.created_at});
    return std::optional<StoredWorkflow>();
  });
  if (stored) {
    auto out = *stored;
    out.warnings = w.warnings;
    return out;
  }
  return w;
}

StoredWorkflow WorkflowCatalog::get(std::string_view name, std::optional<int> version) {
  auto rs = db_.read([&](Txn& t) {
    return version ? t.query("SELECT " + std::string(kColumns) +
                                 " FROM workflows WHERE name = $1 AND version = $2",
                             {name, *version})
                   : t.query("SELECT " + std::string(kColumns) +
                                 " FROM workflows WHERE name = $1 ORDER BY version DESC LIMIT 1",
                             {name});
  });
  if (rs.empty()) {
    throw Error(ErrorCode::kNotFound, "workflow \"" + std::string(name.substr(0, 128)) + "\"" +
                                          (version ? " version " + std::to_string(*version) : "") +
                                          " not found");
  }
  return from_row(rs[0]);
}

std::vector<StoredWorkflow> WorkflowCatalog::versions(std::string_view name) {
  auto rs = db_.read([&](Txn& t) {
    return t.query(
        "SELECT " + std::string(kColumns) + " FROM workflows WHERE name = $1 ORDER BY version DESC",
        {name});
  });
  if (rs.empty())
    throw Error(ErrorCode::kNotFound,
                "workflow \"" + std::string(name.substr(0, 128)) + "\" not found");
  std::vector<StoredWorkflow> out;
  for (const auto& r : rs) out.push_back(from_row(r));
  return out;
}

std::vector<WorkflowSummary> WorkflowCatalog::list() {
  auto rs = db_.read([](Txn& t) {
    return t.query(
        "SELECT w.name, w.version, w.owner, w.created_at FROM workflows w"
        " WHERE w.version = (SELECT MAX(version) FROM workflows v WHERE v.name = w.name)"
        " ORDER BY w.name");
  });
  std::vector<WorkflowSummary> out;
  for (const auto& r : rs) {
    out.push_back({r[0].as_text(), static_cast<int>(r[1].as_int()), r[2].as_text(), r[3].as_int()});
  }
  return out;
}

}  // namespace devcycle

namespace devcycle::internal {

std::optional<std::string> CatalogView::definition_json(std::string_view workflow_id) {
  auto rs = t_.query("SELECT definition FROM workflows WHERE id = $1", {workflow_id});
  if (rs.empty()) return std::nullopt;
  return rs[0][0].as_text();
}

std::optional<CatalogView::Version> CatalogView::find_version(std::string_view name,
                                                              std::optional<int> version) {
  auto rs = version ? t_.query("SELECT id, version FROM workflows WHERE name = $1 AND version = $2",
                               {name, *version})
                    : t_.query(
                          "SELECT id, version FROM workflows WHERE name = $1 ORDER BY version "
                          "DESC LIMIT 1",
                          {name});
  if (rs.empty()) return std::nullopt;
  return Version{rs[0][0].as_text(), static_cast<int>(rs[0][1].as_int())};
}

}  // namespace devcycle::internal
