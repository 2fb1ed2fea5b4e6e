#include "workflow/run_store.h"

#include "workflow/store/schema.h"

namespace devcycle::internal {

std::vector<Migration> RunStore::migrations() { return engine_migrations(); }

void RunStore::purge_run(std::string_view run_id) {
  logs_.delete_of_run(run_id);
  attempts_.delete_of_run(run_id);
  artifacts_.delete_of_run(run_id);
  tasks_.delete_of_run(run_id);
  runs_.delete_run(run_id);
}

}  // namespace devcycle::internal
