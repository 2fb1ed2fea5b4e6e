// The workflow catalog's table (workflows) read through a caller's
// transaction, for the engine: a write closure cannot call WorkflowCatalog,
// whose methods open transactions of their own. The table and its schema
// stay the catalog's (catalog.cpp, which defines these). Internal.
//
// Not thread-safe: one per transaction, used by the thread that runs it.
// Throws what Txn throws (devcycle::Error).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "devcycle/store/database.h"

namespace devcycle::internal {

class CatalogView {
 public:
  explicit CatalogView(Txn& t) : t_(t) {}

  // The definition JSON of the stored version `workflow_id`, as stored
  // (not validated); nullopt when there is no such version.
  std::optional<std::string> definition_json(std::string_view workflow_id);
  struct Version {
    std::string id;
    int version = 0;
  };
  // Version `version` of workflow `name`, or without one its latest;
  // nullopt when there is no such version.
  std::optional<Version> find_version(std::string_view name, std::optional<int> version);

 private:
  Txn& t_;
};

}  // namespace devcycle::internal
