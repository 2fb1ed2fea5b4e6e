#include "workflow/run_store.h"

#include "workflow/store/schema.h"

namespace devcycle::internal {

std::vector<Migration> RunStore::migrations() { return engine_migrations(); }

}  // namespace devcycle::internal
