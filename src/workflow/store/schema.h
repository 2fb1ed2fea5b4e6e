// The engine's tables, as migrations of module "engine": workflow_runs,
// tasks, task_attempts, task_logs (1), artifacts (4), run_signals (5), and
// the indexes and settings added since. Applied migrations never change:
// a schema change is a new migration at the end. Internal.
#pragma once

#include <vector>

#include "devcycle/store/database.h"

namespace devcycle::internal {

std::vector<Migration> engine_migrations();

}  // namespace devcycle::internal
