#include "workflow/engine/definition_cache.h"

#include "devcycle/common/error.h"
#include "workflow/catalog_view.h"

namespace devcycle::internal {

std::shared_ptr<const WorkflowDefinition> DefinitionCache::get(Txn& t,
                                                               const std::string& workflow_id) {
  if (auto known = find(workflow_id)) return known;
  const auto text = CatalogView(t).definition_json(workflow_id);
  if (!text) throw Error(ErrorCode::kInternal, "workflow version " + workflow_id + " is missing");
  auto [def, report] = validate_definition(*text);
  if (!def)
    throw Error(ErrorCode::kInternal,
                "stored workflow " + workflow_id + " is invalid: " + report.describe());
  auto shared = std::make_shared<const WorkflowDefinition>(std::move(*def));
  std::lock_guard lock(definitions_mu_);
  definitions_.emplace(workflow_id, shared);
  return shared;
}

std::shared_ptr<const WorkflowDefinition> DefinitionCache::find(const std::string& workflow_id) {
  std::lock_guard lock(definitions_mu_);
  if (auto it = definitions_.find(workflow_id); it != definitions_.end()) return it->second;
  return nullptr;
}

std::shared_ptr<const WorkflowDefinition> DefinitionCache::remember(
    const StoredWorkflow& workflow) {
  std::lock_guard lock(definitions_mu_);
  auto& known = definitions_[workflow.id];
  if (!known) known = std::make_shared<const WorkflowDefinition>(workflow.definition);
  return known;
}

std::string DefinitionCache::workflow_of(Database& db, const std::string& run_id) {
  {
    std::lock_guard lock(runs_mu_);
    if (auto it = run_workflows_.find(run_id); it != run_workflows_.end()) return it->second;
  }
  return db.read([&](Txn& t) {
    RunStore store(t);
    return workflow_of(store, run_id);
  });
}

std::string DefinitionCache::workflow_of(RunStore& store, const std::string& run_id) {
  {
    std::lock_guard lock(runs_mu_);
    if (auto it = run_workflows_.find(run_id); it != run_workflows_.end()) return it->second;
  }
  auto id = store.workflow_id_of(run_id);
  std::lock_guard lock(runs_mu_);
  if (run_workflows_.size() >= 100'000) run_workflows_.clear();
  run_workflows_.emplace(run_id, id);
  return id;
}

}  // namespace devcycle::internal
