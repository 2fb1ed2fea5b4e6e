// The parsed definitions of stored workflow versions, and which version
// each run uses. Both never change once written, so entries never go stale;
// the run map is bounded (cleared past 100,000 runs).
//
// Thread-safe. get() reads through the caller's transaction, so it is safe
// inside a write closure; it throws Error{kInternal} for a version missing
// from, or invalid in, the database.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "devcycle/store/database.h"
#include "devcycle/workflow/workflow.h"
#include "workflow/run_store.h"

namespace devcycle::internal {

class DefinitionCache {
 public:
  // The definition of a stored workflow version.
  std::shared_ptr<const WorkflowDefinition> get(Txn& t, const std::string& workflow_id);
  // The definition when already known; null otherwise (no database read).
  std::shared_ptr<const WorkflowDefinition> find(const std::string& workflow_id);
  // Remembers a version read from the catalog; returns the shared copy.
  std::shared_ptr<const WorkflowDefinition> remember(const StoredWorkflow& workflow);

  // The workflow version (id) a run uses. kNotFound for an unknown run.
  std::string workflow_of(Database& db, const std::string& run_id);
  std::string workflow_of(RunStore& store, const std::string& run_id);

 private:
  std::mutex definitions_mu_;
  std::map<std::string, std::shared_ptr<const WorkflowDefinition>> definitions_;  // by workflow id
  std::mutex runs_mu_;
  std::unordered_map<std::string, std::string> run_workflows_;
};

}  // namespace devcycle::internal
