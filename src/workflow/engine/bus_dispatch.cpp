// Tasks run by agents in other processes over the bus
// (docs/decisions/0015-task-dispatch-over-the-bus.md): the assignment sent
// with a claim, and the completions, heartbeats and log lines that come
// back on the completion topic.
#include <nlohmann/json.hpp>

#include "common/json_schema_internal.h"
#include "devcycle/common/uuid.h"
#include "workflow/engine/engine_impl.h"

namespace devcycle {

using internal::Claim;
using internal::RunProgress;
using internal::RunStore;
using internal::TaskRow;
using nlohmann::json;

Message Engine::Impl::assignment(const std::string& topic, const TaskRow& row, int attempt,
                                 const std::string& agent_id, Micros at, Micros lease) {
  json input = nullptr;
  try {
    if (!row.task.input.empty()) input = json::parse(row.task.input);
  } catch (const json::exception&) {
    input = row.task.input;  // stored inputs are JSON; keep it whole regardless
  }
  const json j = {
      {"task_id", row.task.id},
      {"run_id", row.task.run_id},
      {"task_key", row.task.key},
      {"attempt", attempt},
      {"lease_owner", options.engine_id},
      {"agent_id", agent_id},
      {"input", std::move(input)},
      {"idempotency_key", row.task.run_id + "/" + row.task.key + "/" + std::to_string(attempt)},
      {"started_at", at},
      {"lease_expires_at", lease}};
  return {topic, row.task.run_id, {}, j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

// A completion from an agent in another process: recorded as an in-process
// outcome is, with the fence taken from the message, so a duplicate or
// stale one changes nothing. Throws for a malformed message (the
// subscription refuses it; it ends among the dead letters).
void Engine::Impl::accept_completion(const std::string& payload) {
  const auto j = internal::parse_json(payload, "completion");
  const auto kind = j.is_object() ? j.value("kind", std::string("completion")) : "";
  if (kind == "heartbeat") return accept_heartbeat(j);
  if (kind == "log") return accept_log(j);
  if (kind != "completion")
    throw Error(ErrorCode::kInvalidArgument, "completion: kind \"" + kind + "\" is unknown");
  Claim c;
  try {
    c.task_id = j.at("task_id").get<std::string>();
    c.run_id = j.at("run_id").get<std::string>();
    c.task_key = j.at("task_key").get<std::string>();
    c.attempt = j.at("attempt").get<int>();
    c.lease_owner = j.at("lease_owner").get<std::string>();
    c.agent_id = j.value("agent_id", "");
    c.started_at = j.value("started_at", Micros{0});
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, std::string("completion: ") + e.what());
  }
  c.workflow_id = workflow_of(c.run_id);
  const bool ok = j.value("ok", false);
  const auto result = ok ? (j.contains("output") ? j["output"].dump() : std::string("null"))
                         : j.value("error", std::string("failed in a remote agent"));
  auto next = complete(c, ok, result, j.value("retryable", true));
  if (!next) return;
  if (options.workers == 0) {
    execute(*next);
    return;
  }
  {
    std::lock_guard lock(queue_mu);
    queue.push_back(std::move(*next));
  }
  queue_cv.notify_one();
}

// A remote attempt says it is alive: its lease is extended, fenced like
// TaskContext::heartbeat() (a lost lease just stays lost).
void Engine::Impl::accept_heartbeat(const json& j) {
  std::string task_id, lease_owner;
  int attempt = 0;
  try {
    task_id = j.at("task_id").get<std::string>();
    lease_owner = j.at("lease_owner").get<std::string>();
    attempt = j.at("attempt").get<int>();
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, std::string("heartbeat: ") + e.what());
  }
  const Micros at = now();
  db.write([&](Txn& t) {
    RunStore store(t);
    const auto row = store.find_task(task_id);
    if (!row || row->task.status != TaskStatus::kRunning || row->task.attempt != attempt) return;
    const auto def = definition(t, workflow_of(store, row->task.run_id));
    const auto& d = RunProgress::definition_of(*def, row->task.definition_id);
    store.extend_lease(task_id, attempt, lease_owner, at,
                       lease_until(d.timeouts, at, row->close_deadline));
  });
}

// A remote attempt's log line, stored and followed as in-process ones are.
void Engine::Impl::accept_log(const json& j) {
  TaskLogLine line;
  std::string run_id, task_key;
  try {
    line.task_id = j.at("task_id").get<std::string>();
    line.attempt = j.at("attempt").get<int>();
    line.level = parse_log_level(j.value("level", std::string("info")), "log.level");
    line.message = j.at("message").get<std::string>().substr(0, 64 * 1024);
    run_id = j.value("run_id", std::string());
    task_key = j.value("task_key", std::string());
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, std::string("log: ") + e.what());
  }
  line.id = new_uuid_v7();
  line.at = now();
  const bool stored = db.write([&](Txn& t) {
    RunStore store(t);
    if (!store.task_exists(line.task_id)) return false;
    store.insert_log(line);
    return true;
  });
  if (stored)
    emit({{EngineEvent::Kind::kTaskLog, run_id, line.task_id, task_key, line.attempt,
           std::string(to_string(line.level)), "", line.at, line.message}});
}

}  // namespace devcycle
