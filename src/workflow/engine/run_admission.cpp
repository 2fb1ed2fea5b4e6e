// Starting runs: checking requests, the owner's quota, idempotency keys,
// concurrency groups (queue, cancel_newest, cancel_oldest, and releasing
// queued runs), and child runs started by a workflow task.
#include <map>
#include <set>

#include "common/field_checks.h"
#include "common/json_schema_internal.h"
#include "common/quota_lock.h"
#include "devcycle/common/json_schema.h"
#include "devcycle/common/uuid.h"
#include "workflow/catalog_view.h"
#include "workflow/engine/engine_impl.h"
#include "workflow/expression_internal.h"

namespace devcycle {

using internal::AgentLoad;
using internal::Claim;
using internal::concurrency_key;
using internal::group_name;
using internal::RunProgress;
using internal::RunStore;
using internal::TaskRow;
using internal::us;
using nlohmann::json;

namespace internal {

std::string concurrency_key(const ConcurrencyLimit& c, const json& input) {
  if (c.key.empty()) return {};
  const auto v =
      internal::render(Template::parse(c.key, "concurrency.key"), json{{"input", input}});
  std::string key = v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.dump();
  if (key.size() > 256) {
    throw Error(ErrorCode::kInvalidArgument, "concurrency.key: gave " + std::to_string(key.size()) +
                                                 " characters, more than the 256 allowed");
  }
  return key;
}

std::string group_name(const Run& r) {
  return "workflow \"" + r.workflow + "\"" +
         (r.concurrency_key && !r.concurrency_key->empty()
              ? " with concurrency key \"" + *r.concurrency_key + "\""
              : "");
}

}  // namespace internal

namespace {

// How deep child runs may nest: far beyond any real design, near enough to
// stop a workflow that starts itself.
constexpr int kMaxChildDepth = 16;

// An error about the i-th run of a batch: "runs[2].input: ..." when the
// message starts with a field, else "runs[2]: ...".
std::string in_batch(std::size_t i, std::string_view message) {
  const auto colon = message.find(':');
  const bool field = colon != std::string_view::npos && colon > 0 &&
                     message.substr(0, colon).find(' ') == std::string_view::npos;
  return "runs[" + std::to_string(i) + "]" + (field ? "." : ": ") + std::string(message);
}

// A run checked and made ready to insert, on the caller's thread.
struct PreparedStart {
  const StartRun* request = nullptr;
  std::string workflow_id;
  std::shared_ptr<const WorkflowDefinition> definition;
  Run run;
};

}  // namespace

internal::RunHooks::Child Engine::Impl::Hooks::start_child(const TaskRow& task,
                                                           const TaskDefinition& d,
                                                           const Run& parent, const json& input) {
  const std::string path = "tasks." + task.task.key + ".workflow";
  if (store.depth_of(parent.id) + 1 >= kMaxChildDepth) {
    throw Error(ErrorCode::kInvalidArgument, path + ": child runs nest at most " +
                                                 std::to_string(kMaxChildDepth) +
                                                 " deep (does the workflow start itself?)");
  }
  const auto found = internal::CatalogView(t).find_version(d.workflow, d.workflow_version);
  if (!found) {
    throw Error(ErrorCode::kNotFound,
                path + ": workflow \"" + d.workflow + "\"" +
                    (d.workflow_version ? " version " + std::to_string(*d.workflow_version) : "") +
                    " not found");
  }
  const auto& workflow_id = found->id;
  const auto def = impl.definition(t, workflow_id);
  if (!input.is_object())
    throw Error(ErrorCode::kInvalidArgument, path + ": input must be an object");
  const auto schema = JsonSchema::parse(def->input_schema, "input_schema");
  if (const auto violations = internal::validate(schema, input); !violations.empty()) {
    throw Error(ErrorCode::kInvalidArgument, path + ": the input does not match workflow \"" +
                                                 d.workflow +
                                                 "\"'s input_schema: " + describe(violations));
  }
  Run r;
  r.id = new_uuid_v7();
  r.workflow = d.workflow;
  r.workflow_version = found->version;
  r.owner = parent.owner;
  r.status = RunStatus::kRunning;
  r.input = input.dump(-1, ' ', false, json::error_handler_t::replace);
  r.labels = parent.labels;
  r.created_at = at;
  r.started_at = at;
  r.parent_run_id = parent.id;
  r.parent_task_id = task.task.id;
  if (def->timeout) r.deadline_at = at + us(*def->timeout);
  if (def->concurrency) r.concurrency_key = concurrency_key(*def->concurrency, input);
  insert_run(r, workflow_id, *def);
  Child child{r.id, std::nullopt};
  if (is_terminal(r.status)) child.finished = r;
  return child;
}

void Engine::Impl::Hooks::insert_run(Run& r, const std::string& workflow_id,
                                     const WorkflowDefinition& def, RunProgress::ClaimHook claim) {
  std::int64_t over = 0;  // active runs beyond the limit, counting this one
  std::vector<Run> victims;
  if (def.concurrency && r.concurrency_key) {
    const auto active = store.active_in_group(r.workflow, *r.concurrency_key);
    over = active + 1 - def.concurrency->limit;
    bool queue = over > 0 && def.concurrency->strategy == ConcurrencyStrategy::kQueue;
    if (over > 0 && def.concurrency->strategy == ConcurrencyStrategy::kCancelOldest) {
      // A child run never cancels its own kin — an ancestor, or a run whose
      // ending would reach one: that would end its own parent (whose
      // progress is under way further up this very transaction). It waits
      // for room instead.
      std::set<std::string> kin;
      if (!r.parent_run_id.empty()) {
        for (auto& id : store.lineage(r.parent_run_id)) kin.insert(std::move(id));
      }
      victims = store.oldest_active(r.workflow, *r.concurrency_key, over);
      for (const auto& v : victims) {
        for (const auto& id : store.lineage(v.id)) queue = queue || kin.count(id) > 0;
      }
      if (queue) victims.clear();
    }
    if (queue) {
      r.status = RunStatus::kPending;
      r.started_at.reset();
      r.deadline_at.reset();
      store.insert_run(r, workflow_id);
      events.push_back({EngineEvent::Kind::kRunQueued, r.id, "", "", 0, "pending", "", at, ""});
      return;
    }
    if (over > 0 && def.concurrency->strategy == ConcurrencyStrategy::kCancelNewest) {
      r.status = RunStatus::kCancelled;
      r.error = "concurrency limit: " + group_name(r) + " has " + std::to_string(active) +
                " active runs, its limit (strategy cancel_newest)";
      r.finished_at = at;
      store.insert_run(r, workflow_id);
      events.push_back(
          {EngineEvent::Kind::kRunFinished, r.id, "", "", 0, "cancelled", r.error, at, ""});
      return;
    }
  }
  store.insert_run(r, workflow_id);
  events.push_back({EngineEvent::Kind::kRunStarted, r.id, "", "", 0, "running", "", at, ""});
  for (auto& victim : victims) {  // cancel_oldest
    cancel_run(victim, "concurrency limit: replaced by the newer run " + r.id +
                           " (strategy cancel_oldest)");
  }
  auto p = progress(def, r);
  if (claim) p.set_claim_hook(std::move(claim));
  p.create_tasks();
}

void Engine::Impl::Hooks::release(const std::string& workflow, const std::string& key) {
  for (;;) {
    auto next = store.first_in_group(workflow, key, false);
    if (!next) return;
    const auto def = impl.definition(t, impl.workflow_of(store, next->id));
    const int limit = def->concurrency ? def->concurrency->limit : 1;
    if (store.active_in_group(workflow, key) >= limit) return;
    next->status = RunStatus::kRunning;
    if (!next->started_at) next->started_at = at;
    if (def->timeout) next->deadline_at = at + us(*def->timeout);
    store.update_run(*next);
    events.push_back({EngineEvent::Kind::kRunStarted, next->id, "", "", 0, "running", "", at, ""});
    auto p = progress(*def, *next);
    // A queued new run has no tasks yet; a queued retry has its own.
    if (store.tasks_of(next->id).empty())
      p.create_tasks();
    else
      p.advance();
  }
}

Run Engine::start(const StartRun& request) {
  return start_many(std::span<const StartRun>(&request, 1)).front();
}

std::vector<Run> Engine::start_many(std::span<const StartRun> requests) {
  if (requests.empty()) return {};
  if (requests.size() > 1000) {
    throw Error(ErrorCode::kInvalidArgument,
                "runs: " + std::to_string(requests.size()) + " runs in one call; at most 1000");
  }
  const Micros at = impl_->now();
  // Workflow versions looked up once per call, whatever the number of runs.
  std::map<std::pair<std::string, std::optional<int>>, std::pair<StoredWorkflow, JsonSchema>>
      workflows;
  std::vector<PreparedStart> prepared;
  prepared.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& request = requests[i];
    try {
      internal::check_text("owner", request.owner, 128, true);
      internal::check_text("idempotency_key", request.idempotency_key, 256);
      for (const auto& [k, v] : request.labels) {
        internal::check_name("labels key", k, 63, "a-z0-9", "a-z0-9._/-", "[a-z0-9][a-z0-9._/-]*");
        internal::check_text("labels[\"" + k + "\"]", v, 256);
      }
      if (request.input.size() > 1024 * 1024)
        throw Error(ErrorCode::kInvalidArgument, "input: larger than 1 MiB");
      auto found = workflows.find({request.workflow, request.version});
      if (found == workflows.end()) {
        auto workflow = impl_->catalog.get(request.workflow, request.version);
        auto schema = JsonSchema::parse(workflow.definition.input_schema, "input_schema");
        found = workflows
                    .emplace(std::make_pair(request.workflow, request.version),
                             std::make_pair(std::move(workflow), std::move(schema)))
                    .first;
      }
      const auto& [workflow, schema] = found->second;
      const auto input = internal::parse_json(request.input, "input");
      if (!input.is_object())
        throw Error(ErrorCode::kInvalidArgument, "input: must be a JSON object");
      if (const auto violations = internal::validate(schema, input); !violations.empty()) {
        throw Error(ErrorCode::kInvalidArgument,
                    "input: does not match the workflow's input_schema: " + describe(violations));
      }
      PreparedStart p;
      p.request = &request;
      p.workflow_id = workflow.id;
      p.definition = impl_->definitions.remember(workflow);
      Run& run = p.run;
      run.id = new_uuid_v7();
      run.workflow = workflow.name;
      run.workflow_version = workflow.version;
      run.owner = request.owner;
      run.status = RunStatus::kRunning;
      run.input = input.dump(-1, ' ', false, json::error_handler_t::replace);
      run.idempotency_key = request.idempotency_key;
      run.labels = request.labels;
      run.created_at = at;
      run.started_at = at;
      if (workflow.definition.timeout) run.deadline_at = at + us(*workflow.definition.timeout);
      if (workflow.definition.concurrency)
        run.concurrency_key = concurrency_key(*workflow.definition.concurrency, input);
      prepared.push_back(std::move(p));
    } catch (const Error& e) {
      if (requests.size() == 1) throw;
      throw Error(e.code(), in_batch(i, e.what()));
    }
  }
  std::vector<EngineEvent> events;
  std::vector<Claim> claims;
  // Roots are claimed as they are inserted, up to what the workers' queue
  // takes now; the scheduler claims the rest.
  const int room = impl_->claim_room();
  auto result = impl_->db.write([&](Txn& t) {
    RunStore store(t);
    store.defer_writes();  // the runs and their tasks inserted with one statement each
    events.clear();
    claims.clear();
    Impl::Hooks hooks(*impl_, t, store, at, events);
    AgentLoad load(store);
    std::vector<Run> runs;
    runs.reserve(prepared.size());
    std::map<std::string, std::int64_t> active;  // owner -> active runs, with this call's
    if (impl_->options.max_active_runs_per_owner > 0) {
      std::set<std::string_view> owners;  // sorted: servers lock them in one order
      for (const auto& p : prepared) owners.insert(p.request->owner);
      for (const auto owner : owners) internal::lock_quota(t, "max_active_runs_per_owner", owner);
    }
    for (std::size_t i = 0; i < prepared.size(); ++i) {
      const auto& p = prepared[i];
      const auto& request = *p.request;
      const auto check_quota = [&] {
        const int quota = impl_->options.max_active_runs_per_owner;
        if (quota <= 0) return;
        auto [it, fresh] = active.try_emplace(request.owner, 0);
        if (fresh) {
          it->second = store.active_runs_of(request.owner);
        }
        if (it->second >= quota) {
          std::string message = "quota: owner \"" + request.owner + "\" has " +
                                std::to_string(it->second) +
                                " active runs, the most allowed (max_active_runs_per_owner); "
                                "wait for one to finish";
          if (prepared.size() > 1) message = in_batch(i, message);
          throw Error(ErrorCode::kResourceExhausted, std::move(message));
        }
        ++it->second;
      };
      if (!request.idempotency_key.empty()) {
        if (auto existing = store.find_run_by_key(request.owner, request.idempotency_key)) {
          if (existing->workflow != p.run.workflow) {
            std::string message = "idempotency_key: \"" + request.idempotency_key +
                                  "\" was already used for a run of workflow \"" +
                                  existing->workflow + "\"";
            if (prepared.size() > 1) message = in_batch(i, message);
            throw Error(ErrorCode::kConflict, std::move(message));
          }
          runs.push_back(std::move(*existing));
          continue;
        }
      }
      check_quota();
      Run r = p.run;
      hooks.insert_run(r, p.workflow_id, *p.definition, [&](TaskRow& row, const TaskDefinition& d) {
        if (static_cast<int>(claims.size()) >= room) return false;
        auto c = impl_->claim_in_place(row, d, p.workflow_id, at, events, load);
        if (c) claims.push_back(std::move(*c));
        return c.has_value();
      });
      runs.push_back(std::move(r));
    }
    store.flush();
    impl_->stage(t, events);
    return runs;
  });
  impl_->post(std::move(events), std::move(claims));
  return result;
}

}  // namespace devcycle
