// Reading runs, tasks, logs and artifacts, and retention (purge_finished).
#include <set>

#include "devcycle/common/uuid.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::run_not_found;
using internal::RunStore;
using internal::task_not_found;

RunDetail Engine::get(std::string_view run_id) {
  return impl_->db.read([&](Txn& t) {
    RunStore store(t);
    auto run = store.find_run(run_id);
    if (!run) throw run_not_found(run_id);
    RunDetail d{*run, {}};
    for (auto& row : store.tasks_of(run_id)) {
      row.task.attempts = store.attempts_of(row);
      d.tasks.push_back(std::move(row.task));
    }
    return d;
  });
}

int Engine::purge_finished(Micros before, int limit) {
  if (limit < 1 || limit > 10'000) {
    throw Error(ErrorCode::kInvalidArgument, "limit: must be between 1 and 10000");
  }
  std::set<std::string> digests;
  const int purged = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    digests.clear();
    const auto runs = store.finished_runs_before(before, limit);
    for (const auto& id : runs) {
      for (auto& d : store.artifact_digests_of(id)) digests.insert(std::move(d));
      store.purge_run(id);
    }
    return static_cast<int>(runs.size());
  });
  if (impl_->options.blobs && !digests.empty()) {
    const Micros recent = SystemClock::instance()->now() - 10LL * 60 * 1'000'000;
    for (const auto& d : digests) {
      const bool named = impl_->db.read([&](Txn& t) { return RunStore(t).digest_referenced(d); });
      if (named) continue;
      const auto info = impl_->options.blobs->stat(d);
      if (info && info->stored_at < recent) impl_->options.blobs->remove(d);
    }
  }
  return purged;
}

std::vector<Artifact> Engine::artifacts(std::string_view run_id) {
  return impl_->db.read([&](Txn& t) {
    RunStore store(t);
    if (!store.find_run(run_id)) throw run_not_found(run_id);
    return store.artifacts_of(run_id);
  });
}

Artifact Engine::artifact(std::string_view run_id, std::string_view artifact_id) {
  for (auto& a : artifacts(run_id)) {
    if (a.id == artifact_id) return a;
  }
  throw Error(ErrorCode::kNotFound, "artifact \"" + std::string(artifact_id.substr(0, 64)) +
                                        "\" not found in run " + std::string(run_id.substr(0, 64)));
}

TaskRun Engine::get_task(std::string_view task_id) {
  return impl_->db.read([&](Txn& t) {
    RunStore store(t);
    auto row = store.find_task(task_id);
    if (!row) throw task_not_found(task_id);
    row->task.attempts = store.attempts_of(*row);
    return std::move(row->task);
  });
}

RunPage Engine::list(const RunFilter& filter) {
  if (filter.limit < 1 || filter.limit > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "limit: " + std::to_string(filter.limit) + " is not between 1 and 1000");
  }
  if (!filter.page_token.empty() && !is_uuid(filter.page_token)) {
    throw Error(ErrorCode::kInvalidArgument, "page_token: not a token from a previous page");
  }
  RunPage page;
  // Labels are matched after the query, so scan batches until the page is
  // full (or the runs run out); the token is the last run returned.
  RunFilter batch_filter = filter;
  const int batch = std::max(filter.limit + 1, 200);
  while (static_cast<int>(page.runs.size()) <= filter.limit) {
    auto rows =
        impl_->db.read([&](Txn& t) { return RunStore(t).list_runs_scanned(batch_filter, batch); });
    for (auto& r : rows.matched) page.runs.push_back(std::move(r));
    if (rows.scanned < batch || rows.last_id.empty()) break;
    batch_filter.page_token = rows.last_id;
  }
  if (static_cast<int>(page.runs.size()) > filter.limit) {
    page.runs.resize(filter.limit);
    page.next_page_token = page.runs.back().id;
  }
  return page;
}

TaskLogPage Engine::logs(std::string_view task_id, std::optional<int> attempt, int limit,
                         std::string page_token) {
  if (limit < 1 || limit > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "limit: " + std::to_string(limit) + " is not between 1 and 1000");
  }
  if (!page_token.empty() && !is_uuid(page_token)) {
    throw Error(ErrorCode::kInvalidArgument, "page_token: not a token from a previous page");
  }
  TaskLogPage page;
  page.lines = impl_->db.read([&](Txn& t) {
    RunStore store(t);
    if (!store.find_task(task_id)) {
      throw task_not_found(task_id);
    }
    return store.logs(task_id, attempt, page_token, limit + 1);
  });
  if (static_cast<int>(page.lines.size()) > limit) {
    page.lines.resize(limit);
    page.next_page_token = page.lines.back().id;
  }
  return page;
}

}  // namespace devcycle
