#include "workflow/run_progress.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/json_schema_internal.h"
#include "devcycle/common/error.h"
#include "devcycle/common/uuid.h"
#include "devcycle/workflow/expression.h"
#include "workflow/expression_internal.h"

namespace devcycle::internal {

using nlohmann::json;

namespace {

bool done_ok(TaskStatus s) { return s == TaskStatus::kSucceeded || s == TaskStatus::kSkipped; }
bool failed(TaskStatus s) {
  return s == TaskStatus::kFailed || s == TaskStatus::kTimedOut || s == TaskStatus::kCancelled;
}

json render_input(const TaskDefinition& d, const json& ctx, const std::string& field) {
  std::function<json(const json&, const std::string&)> walk = [&](const json& v,
                                                                  const std::string& path) -> json {
    if (v.is_string()) return render(Template::parse(v.get<std::string>(), path), ctx);
    if (v.is_object()) {
      json out = json::object();
      for (const auto& [k, child] : v.items()) out[k] = walk(child, json_path_child(path, k));
      return out;
    }
    if (v.is_array()) {
      json out = json::array();
      for (std::size_t i = 0; i < v.size(); ++i)
        out.push_back(walk(v[i], path + "[" + std::to_string(i) + "]"));
      return out;
    }
    return v;
  };
  return walk(json::parse(d.input), field);
}

// The NAMEs of "secrets.NAME" in a definition's input text.
std::set<std::string> secret_names(const std::string& text) {
  std::set<std::string> names;
  for (auto at = text.find("secrets."); at != std::string::npos;
       at = text.find("secrets.", at + 8)) {
    auto end = at + 8;
    while (end < text.size() &&
           (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_'))
      ++end;
    if (end > at + 8) names.insert(text.substr(at + 8, end - at - 8));
  }
  return names;
}

}  // namespace

std::string child_error(const Run& child) {
  return "child run " + child.id + " " + std::string(to_string(child.status)) +
         (child.error.empty() ? "" : ": " + child.error);
}

RunProgress::RunProgress(RunStore& store, const WorkflowDefinition& def, Run& run, Micros now,
                         std::vector<EngineEvent>& events, RunHooks& hooks)
    : store_(store), def_(def), run_(run), now_(now), events_(events), hooks_(hooks) {}

const TaskDefinition& RunProgress::definition_of(const WorkflowDefinition& def,
                                                 const std::string& id) {
  for (const auto& t : def.tasks) {
    if (t.id == id) return t;
  }
  throw Error(ErrorCode::kInternal, "workflow " + def.name + " has no task \"" + id + "\"");
}

void RunProgress::event(EngineEvent::Kind kind, const TaskRow& row) {
  events_.push_back({kind, run_.id, row.task.id, row.task.key, row.task.attempt,
                     std::string(to_string(row.task.status)), row.task.error, now_, "",
                     row.task.available_at.value_or(now_), row.task.priority});
}

void RunProgress::set_terminal(TaskRow& row, TaskStatus status, const std::string& error) {
  row.task.status = status;
  row.task.finished_at = now_;
  if (!error.empty()) row.task.error = error;
  row.task.lease_expires_at.reset();
  row.start_deadline.reset();
  save(row);
  switch (status) {
    case TaskStatus::kSucceeded:
      event(EngineEvent::Kind::kTaskSucceeded, row);
      break;
    case TaskStatus::kSkipped:
      event(EngineEvent::Kind::kTaskSkipped, row);
      break;
    case TaskStatus::kCancelled:
      event(EngineEvent::Kind::kTaskCancelled, row);
      break;
    default:
      event(EngineEvent::Kind::kTaskFailed, row);
      break;
  }
}

void RunProgress::load() { rows_ = store_.tasks_of(run_.id); }

void RunProgress::save(const TaskRow& row) {
  if (!unsaved_.count(row.task.id)) store_.update_task(row);
}

void RunProgress::insert_unsaved() {
  if (unsaved_.empty()) return;
  std::vector<TaskRow> batch;
  batch.reserve(unsaved_.size());
  for (const auto& row : rows_) {
    if (unsaved_.count(row.task.id)) batch.push_back(row);
  }
  store_.insert_tasks(batch);
  unsaved_.clear();
}

void RunProgress::create_tasks() {
  for (const auto& d : def_.tasks) {
    TaskRow row;
    row.task.id = new_uuid_v7();
    row.task.run_id = run_.id;
    row.task.key = d.id;
    row.task.definition_id = d.id;
    row.task.status = TaskStatus::kPending;
    row.task.priority = d.priority;
    row.task.max_attempts = d.retry.max_attempts;
    row.created_at = now_;
    unsaved_.insert(row.task.id);
    rows_.push_back(std::move(row));  // as a read would return it: no need to read
  }
  if (!is_terminal(run_.status)) advance_rows();
  insert_unsaved();
}

json RunProgress::context() const {
  json tasks = json::object();
  for (const auto& r : rows_) {
    if (r.task.index) continue;
    if (r.task.status == TaskStatus::kSucceeded) {
      tasks[r.task.key] = {
          {"output", r.task.output.empty() ? json(nullptr) : json::parse(r.task.output)}};
    } else if (r.task.status == TaskStatus::kSkipped) {
      tasks[r.task.key] = {{"output", nullptr}};
    }
  }
  return {
      {"input", json::parse(run_.input)},
      {"run", {{"id", run_.id}, {"workflow", run_.workflow}, {"version", run_.workflow_version}}},
      {"tasks", std::move(tasks)}};
}

void RunProgress::ready_one(TaskRow& row, const TaskDefinition& d, const json& ctx) {
  const std::string path = "tasks." + row.task.key;
  try {
    if (!d.when.empty() && !truthy(evaluate(Expression::parse(d.when, path + ".when"), ctx))) {
      set_terminal(row, TaskStatus::kSkipped);
      return;
    }
    if (d.input.find("secrets.") != std::string::npos) {
      // Secrets render as markers bound to this task; the values go in when it executes.
      json with_secrets = ctx;
      auto& markers = with_secrets["secrets"] = json::object();
      auto* secrets = hooks_.secrets();
      for (const auto& name : secret_names(d.input)) {
        if (!secrets) {
          throw Error(ErrorCode::kInvalidArgument, path + ".input: reads secret \"" + name +
                                                       "\", but this engine has no secrets");
        }
        markers[name] = secrets->marker(row.task.id, name);
      }
      row.task.input = render_input(d, with_secrets, path + ".input")
                           .dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      row.task.input = render_input(d, ctx, path + ".input")
                           .dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (d.sleep || !d.until.empty() || !d.signal.empty() || !d.workflow.empty()) {
      wait(row, d, ctx);
      return;
    }
  } catch (const Error& e) {
    // A deterministic error: retrying cannot help.
    set_terminal(row, TaskStatus::kFailed, e.what());
    return;
  }
  row.task.status = TaskStatus::kReady;
  row.task.ready_at = now_;
  row.task.available_at = now_;
  if (d.timeouts.schedule_to_start) {
    row.start_deadline =
        now_ + std::chrono::duration_cast<std::chrono::microseconds>(*d.timeouts.schedule_to_start)
                   .count();
  }
  event(EngineEvent::Kind::kTaskReady, row);
  if (claim_hook_) claim_hook_(row, d);
  save(row);
}

void RunProgress::wait(TaskRow& row, const TaskDefinition& d, const json& ctx) {
  const std::string path = "tasks." + row.task.key;
  const auto us = [](std::chrono::milliseconds m) {
    return std::chrono::duration_cast<std::chrono::microseconds>(m).count();
  };
  row.task.ready_at = now_;
  row.task.started_at = now_;
  if (!d.signal.empty()) {
    // A signal sent before anything waited for it is taken at once.
    if (auto payload = store_.take_signal(run_.id, d.signal, row.task.id)) {
      row.task.output = *payload;
      set_terminal(row, TaskStatus::kSucceeded);
      return;
    }
    if (d.timeouts.start_to_close) row.close_deadline = now_ + us(*d.timeouts.start_to_close);
  } else if (!d.workflow.empty()) {
    auto child = hooks_.start_child(row, d, run_, json::parse(row.task.input));
    row.task.child_run_id = child.run_id;
    row.task.available_at.reset();
    if (child.finished) {
      if (child.finished->status == RunStatus::kSucceeded) {
        row.task.output = child.finished->output;
        set_terminal(row, TaskStatus::kSucceeded);
      } else {
        set_terminal(row,
                     child.finished->status == RunStatus::kTimedOut ? TaskStatus::kTimedOut
                                                                    : TaskStatus::kFailed,
                     child_error(*child.finished));
      }
      return;
    }
    if (d.timeouts.start_to_close) row.close_deadline = now_ + us(*d.timeouts.start_to_close);
  } else if (d.sleep) {
    row.task.available_at = now_ + us(*d.sleep);
  } else {
    const auto when = render(Template::parse(d.until, path + ".until"), ctx);
    const auto at = when.is_string() ? parse_rfc3339(when.get<std::string>()) : std::nullopt;
    if (!at) {
      throw Error(ErrorCode::kInvalidArgument,
                  path + ".until: gave " + when.dump().substr(0, 100) + ", not an RFC 3339 time");
    }
    row.task.available_at = std::max(*at, now_);
  }
  row.task.status = TaskStatus::kWaiting;
  event(EngineEvent::Kind::kTaskWaiting, row);
  save(row);
}

bool RunProgress::make_ready(TaskRow& row) {
  const auto& d = definition_of(def_, row.task.definition_id);
  // Building the context parses every upstream output: only when it is used.
  const bool uses_context = !d.when.empty() || !d.for_each.empty() || !d.until.empty() ||
                            !d.workflow.empty() || d.input.find("{{") != std::string::npos;
  const json ctx = uses_context ? context() : json::object();
  if (d.for_each.empty()) {
    ready_one(row, d, ctx);
    return true;
  }
  json list;
  try {
    list = evaluate(Expression::parse(d.for_each, "tasks." + d.id + ".for_each"), ctx);
    if (!list.is_array()) {
      throw Error(ErrorCode::kInvalidArgument, "tasks." + d.id + ".for_each: gave " +
                                                   list.dump().substr(0, 200) + ", not a list");
    }
    if (list.size() > 10'000) {
      throw Error(ErrorCode::kInvalidArgument, "tasks." + d.id + ".for_each: gave " +
                                                   std::to_string(list.size()) +
                                                   " elements, more than the 10000 allowed");
    }
  } catch (const Error& e) {
    set_terminal(row, TaskStatus::kFailed, e.what());
    return true;
  }
  // The definition-level row becomes the group; each element is a task.
  row.task.status = TaskStatus::kRunning;
  row.task.started_at = now_;
  save(row);
  const bool element_needs_context = !d.when.empty() || d.input.find("{{") != std::string::npos;
  // `row` points into rows_: build the elements aside and append them last.
  const int max_attempts = row.task.max_attempts;
  std::vector<TaskRow> children;
  for (std::size_t i = 0; i < list.size(); ++i) {
    TaskRow child;
    child.task.id = new_uuid_v7();
    child.task.run_id = run_.id;
    child.task.key = d.id + "[" + std::to_string(i) + "]";
    child.task.definition_id = d.id;
    child.task.index = static_cast<int>(i);
    child.task.status = TaskStatus::kPending;
    child.task.priority = d.priority;
    child.task.max_attempts = max_attempts;
    child.item = list[i].dump();
    child.created_at = now_;
    unsaved_.insert(child.task.id);
    if (element_needs_context) {
      json child_ctx = ctx;
      child_ctx["item"] = list[i];
      child_ctx["index"] = i;
      ready_one(child, d, child_ctx);
    } else {
      ready_one(child, d, json::object());  // a copy of the context per element is quadratic
    }
    children.push_back(std::move(child));
  }
  // A group made by create_tasks is still unsaved: its elements are
  // inserted with it when create_tasks ends.
  const bool group_saved = !unsaved_.count(row.task.id);
  rows_.insert(rows_.end(), std::make_move_iterator(children.begin()),
               std::make_move_iterator(children.end()));  // `row` may dangle from here
  if (group_saved) insert_unsaved();
  return true;
}

void RunProgress::advance() {
  // A queued run has nothing to advance until its group has room.
  if (is_terminal(run_.status) || run_.status == RunStatus::kPending) return;
  load();
  advance_rows();
}

void RunProgress::advance_rows() {
  for (bool changed = true; changed;) {
    changed = false;
    // Fan-out groups finish when all their elements have.
    for (auto& row : rows_) {
      if (row.task.index || row.task.status != TaskStatus::kRunning || row.task.lease_expires_at)
        continue;
      const auto& d = definition_of(def_, row.task.definition_id);
      if (d.for_each.empty()) continue;
      json outputs = json::array();
      bool all_done = true;
      std::string child_error;
      std::vector<const TaskRow*> children;
      for (const auto& c : rows_) {
        if (c.task.index && c.task.definition_id == d.id) children.push_back(&c);
      }
      std::sort(children.begin(), children.end(),
                [](auto* a, auto* b) { return *a->task.index < *b->task.index; });
      for (const auto* c : children) {
        if (!is_terminal(c->task.status))
          all_done = false;
        else if (failed(c->task.status) && child_error.empty())
          child_error = c->task.key + ": " + c->task.error;
        outputs.push_back(c->task.status == TaskStatus::kSucceeded && !c->task.output.empty()
                              ? json::parse(c->task.output)
                              : json(nullptr));
      }
      if (!all_done) continue;
      if (!child_error.empty()) {
        set_terminal(row, TaskStatus::kFailed, child_error);
      } else {
        row.task.output = outputs.dump(-1, ' ', false, json::error_handler_t::replace);
        set_terminal(row, TaskStatus::kSucceeded);
      }
      changed = true;
    }
    // A task that failed for good fails the run.
    for (const auto& row : rows_) {
      if (!row.task.index && failed(row.task.status)) {
        finish_run(RunStatus::kFailed, "task " + row.task.key + " " +
                                           std::string(to_string(row.task.status)) +
                                           (row.task.error.empty() ? "" : ": " + row.task.error));
        return;
      }
    }
    // Tasks whose dependencies are all done become ready (not while paused).
    for (auto& row : rows_) {
      if (run_.status == RunStatus::kPaused) break;
      if (row.task.index || row.task.status != TaskStatus::kPending) continue;
      const auto& d = definition_of(def_, row.task.definition_id);
      bool ready = true;
      for (const auto& dep : d.depends_on) {
        const auto it = std::find_if(rows_.begin(), rows_.end(), [&](const TaskRow& r) {
          return !r.task.index && r.task.key == dep;
        });
        ready = ready && it != rows_.end() && done_ok(it->task.status);
      }
      if (ready) {
        make_ready(row);
        changed = true;
        break;  // rows_ may have grown: start the pass again
      }
    }
  }
  const bool all_done = std::all_of(rows_.begin(), rows_.end(),
                                    [](const TaskRow& r) { return is_terminal(r.task.status); });
  if (!all_done) return;
  // The run's output: what the tasks that nothing depends on produced.
  std::set<std::string> needed;
  for (const auto& d : def_.tasks) needed.insert(d.depends_on.begin(), d.depends_on.end());
  json output = json::object();
  for (const auto& row : rows_) {
    if (row.task.index || needed.count(row.task.key)) continue;
    output[row.task.key] = row.task.output.empty() ? json(nullptr) : json::parse(row.task.output);
  }
  run_.output = output.dump(-1, ' ', false, json::error_handler_t::replace);
  run_.status = RunStatus::kSucceeded;
  run_.finished_at = now_;
  const auto finished = store_.finish_run(run_);
  events_.push_back(
      {EngineEvent::Kind::kRunFinished, run_.id, "", "", 0, "succeeded", "", now_, ""});
  hooks_.run_finished(run_, finished);
}

std::optional<std::vector<std::string>> RunProgress::keys_after_success(
    const WorkflowDefinition& def, const std::string& done_key) {
  std::vector<std::string> keys;
  for (const auto& d : def.tasks) {
    if (std::find(d.depends_on.begin(), d.depends_on.end(), done_key) == d.depends_on.end())
      continue;
    if (!d.when.empty() || !d.for_each.empty() || !d.workflow.empty() ||
        d.input.find("{{") != std::string::npos)
      return std::nullopt;  // needs the context (or the owner) of the whole run
    // The dependent and its other dependencies; `done_key` itself just
    // succeeded in this transaction, so it is not read again (a chain reads
    // one row).
    keys.push_back(d.id);
    for (const auto& dep : d.depends_on) {
      if (dep != done_key) keys.push_back(dep);
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

bool RunProgress::advance_after_success(const std::string& done_key) {
  if (is_terminal(run_.status)) return true;
  const auto keys = keys_after_success(def_, done_key);
  if (!keys) return false;
  if (keys->empty()) {
    // A leaf: the run finishes only when nothing else is open. Its rows tell,
    // and finish it when so (advance_rows writes only what finishing
    // changes, so the run's own row need not be read).
    rows_ = store_.tasks_of(run_.id);
    if (std::any_of(rows_.begin(), rows_.end(),
                    [](const TaskRow& r) { return !is_terminal(r.task.status); }))
      return true;
    advance_rows();
    return true;
  }
  rows_ = store_.tasks_by_keys(run_.id, *keys);
  auto find = [&](const std::string& key) -> TaskRow* {
    for (auto& r : rows_) {
      if (!r.task.index && r.task.key == key) return &r;
    }
    return nullptr;
  };
  for (const auto& d : def_.tasks) {
    if (std::find(d.depends_on.begin(), d.depends_on.end(), done_key) == d.depends_on.end())
      continue;
    TaskRow* row = find(d.id);
    if (!row || row->task.status != TaskStatus::kPending) continue;
    bool ready = true;
    for (const auto& dep : d.depends_on) {
      if (dep == done_key) continue;
      const TaskRow* r = find(dep);
      ready = ready && r && done_ok(r->task.status);
    }
    if (ready) ready_one(*row, d, json::object());
  }
  return true;
}

void RunProgress::finish_run(RunStatus status, const std::string& error) {
  if (rows_.empty()) load();
  for (auto& row : rows_) {
    if (is_terminal(row.task.status)) continue;
    if (row.task.status == TaskStatus::kRunning && row.task.attempt > 0 &&
        row.task.lease_expires_at) {
      store_.end_attempt(row, "cancelled", "", now_);
    }
    const bool had_child =
        row.task.status == TaskStatus::kWaiting && !row.task.child_run_id.empty();
    set_terminal(row, TaskStatus::kCancelled);
    if (had_child)
      hooks_.cancel_child(row.task.child_run_id,
                          "parent run " + run_.id + " " + std::string(to_string(status)));
  }
  run_.status = status;
  run_.error = error;
  run_.finished_at = now_;
  const auto finished = store_.finish_run(run_);
  events_.push_back({EngineEvent::Kind::kRunFinished, run_.id, "", "", 0,
                     std::string(to_string(status)), error, now_, ""});
  hooks_.run_finished(run_, finished);
}

}  // namespace devcycle::internal
