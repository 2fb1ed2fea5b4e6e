#include "serialize.h"

#include <ctime>

namespace devcycle::server {

namespace {

Json opt_time(const std::optional<Micros>& t) { return t ? Json(format_time(*t)) : Json(nullptr); }

}  // namespace

std::string format_time(Micros t) {
  JsonOut out;
  out.time(t);
  return out.text().substr(1, out.text().size() - 2);
}

std::optional<Micros> parse_time(std::string_view text) { return parse_rfc3339(text); }

Json embedded(const std::string& text) {
  if (text.empty()) return nullptr;
  try {
    return Json::parse(text);
  } catch (const Json::parse_error&) {
    return text;  // not JSON after all: say it as it is
  }
}

Json to_json(const User& u) {
  return {{"id", u.id},
          {"email", u.email},
          {"username", u.username},
          {"role", to_string(u.role)},
          {"active", u.active},
          {"created_at", format_time(u.created_at)},
          {"updated_at", format_time(u.updated_at)},
          {"password_changed_at", opt_time(u.password_changed_at)},
          {"must_change_password", u.must_change_password}};
}

Json to_json(const TokenPair& p, Micros now) {
  return {{"token_type", "Bearer"},
          {"access_token", p.access_token},
          {"refresh_token", p.refresh_token},
          {"expires_in", (p.access_expires_at - now) / 1'000'000},
          {"access_expires_at", format_time(p.access_expires_at)},
          {"refresh_expires_at", format_time(p.refresh_expires_at)}};
}

Json to_json(const ApiKey& k) {
  return {{"id", k.id},
          {"prefix", k.prefix},
          {"name", k.name},
          {"owner", k.owner},
          {"role", to_string(k.role)},
          {"capabilities", k.capabilities},
          {"agent_id", k.agent_id.empty() ? Json(nullptr) : Json(k.agent_id)},
          {"created_at", format_time(k.created_at)},
          {"expires_at", opt_time(k.expires_at)},
          {"revoked_at", opt_time(k.revoked_at)},
          {"last_used_at", opt_time(k.last_used_at)}};
}

Json to_json(const AgentType& t) {
  return {{"name", t.name},
          {"description", t.description},
          {"config_schema", embedded(t.config_schema)},
          {"created_at", format_time(t.created_at)}};
}

void write(JsonOut& out, const Agent& a) {
  out.begin_object()
      .field("id", a.id)
      .field("owner", a.owner)
      .field("name", a.name)
      .field("type", a.type)
      .field("description", a.description)
      .field("status", to_string(a.status));
  out.key("configuration").raw(a.configuration);
  out.key("labels").begin_object();
  for (const auto& [k, v] : a.labels) out.field(k, v);
  out.end_object()
      .field("capacity", a.capacity)
      .field("load", a.load)
      .key("active_version")
      .str_or_null(a.active_version)
      .key("last_heartbeat")
      .time(a.last_heartbeat)
      .field("revision", a.revision)
      .field("shared", a.shared)
      .key("created_at")
      .time(a.created_at)
      .key("updated_at")
      .time(a.updated_at)
      .end_object();
}

Json to_json(const Agent& a) {
  JsonOut out;
  write(out, a);
  return Json::parse(out.text());
}

Json to_json(const AgentVersion& v) {
  Json caps = Json::array(), reqs = Json::array();
  for (const auto& c : v.capabilities) caps.push_back(c.to_string());
  for (const auto& r : v.requirements) reqs.push_back(r.to_string());
  return {{"agent_id", v.agent_id},
          {"version", v.version.to_string()},
          {"capabilities", caps},
          {"requirements", reqs},
          {"executor", v.executor},
          {"notes", v.notes},
          {"created_at", format_time(v.created_at)}};
}

Json to_json(const Deployment& d) {
  return {{"id", d.id},
          {"agent_id", d.agent_id},
          {"version", d.version},
          {"previous_version", d.previous_version ? Json(*d.previous_version) : Json(nullptr)},
          {"action", d.action},
          {"actor", d.actor},
          {"at", format_time(d.at)}};
}

Json to_json(const CompatibilityReport& r) {
  Json problems = Json::array();
  for (const auto& p : r.problems) {
    problems.push_back(
        {{"kind", p.kind == CompatibilityProblem::Kind::kUnmet ? "unmet" : "conflict"},
         {"requirement", p.requirement},
         {"message", p.message}});
  }
  return {{"compatible", r.compatible()}, {"problems", problems}};
}

Json to_json(const DefinitionReport& r) {
  Json problems = Json::array();
  for (const auto& p : r.problems) {
    problems.push_back(
        {{"path", p.path}, {"message", p.message}, {"severity", p.warning ? "warning" : "error"}});
  }
  return {{"valid", r.ok()}, {"problems", problems}};
}

Json to_json(const StoredWorkflow& w) {
  Json warnings = Json::array();
  for (const auto& p : w.warnings) warnings.push_back({{"path", p.path}, {"message", p.message}});
  return {{"id", w.id},
          {"name", w.name},
          {"version", w.version},
          {"owner", w.owner},
          {"definition", embedded(w.definition_json)},
          {"checksum", w.checksum},
          {"created_at", format_time(w.created_at)},
          {"warnings", warnings}};
}

Json to_json(const WorkflowSummary& w) {
  return {{"name", w.name},
          {"latest_version", w.latest_version},
          {"owner", w.owner},
          {"updated_at", format_time(w.updated_at)}};
}

Json to_json(const Run& r) {
  return {{"id", r.id},
          {"workflow", r.workflow},
          {"workflow_version", r.workflow_version},
          {"owner", r.owner},
          {"status", to_string(r.status)},
          {"input", embedded(r.input)},
          {"output", embedded(r.output)},
          {"error", r.error.empty() ? Json(nullptr) : Json(r.error)},
          {"idempotency_key", r.idempotency_key.empty() ? Json(nullptr) : Json(r.idempotency_key)},
          {"labels", r.labels},
          {"created_at", format_time(r.created_at)},
          {"started_at", opt_time(r.started_at)},
          {"finished_at", opt_time(r.finished_at)},
          {"deadline_at", opt_time(r.deadline_at)},
          {"parent_run_id", r.parent_run_id.empty() ? Json(nullptr) : Json(r.parent_run_id)},
          {"parent_task_id", r.parent_task_id.empty() ? Json(nullptr) : Json(r.parent_task_id)},
          {"concurrency_key", r.concurrency_key ? Json(*r.concurrency_key) : Json(nullptr)}};
}

Json to_json(const TaskRun& t) {
  Json attempts = Json::array();
  for (const auto& a : t.attempts) {
    attempts.push_back({{"attempt", a.attempt},
                        {"agent_id", a.agent_id.empty() ? Json(nullptr) : Json(a.agent_id)},
                        {"status", a.status},
                        {"error", a.error.empty() ? Json(nullptr) : Json(a.error)},
                        {"started_at", format_time(a.started_at)},
                        {"finished_at", opt_time(a.finished_at)}});
  }
  return {{"id", t.id},
          {"run_id", t.run_id},
          {"key", t.key},
          {"definition_id", t.definition_id},
          {"index", t.index ? Json(*t.index) : Json(nullptr)},
          {"status", to_string(t.status)},
          {"priority", t.priority},
          {"input", embedded(t.input)},
          {"output", embedded(t.output)},
          {"error", t.error.empty() ? Json(nullptr) : Json(t.error)},
          {"attempt", t.attempt},
          {"max_attempts", t.max_attempts},
          {"agent_id", t.agent_id.empty() ? Json(nullptr) : Json(t.agent_id)},
          {"lease_expires_at", opt_time(t.lease_expires_at)},
          {"ready_at", opt_time(t.ready_at)},
          {"started_at", opt_time(t.started_at)},
          {"finished_at", opt_time(t.finished_at)},
          {"child_run_id", t.child_run_id.empty() ? Json(nullptr) : Json(t.child_run_id)},
          {"attempts", attempts}};
}

Json to_json(const RunDetail& d) {
  Json j = to_json(d.run);
  Json tasks = Json::array();
  for (const auto& t : d.tasks) tasks.push_back(to_json(t));
  j["tasks"] = std::move(tasks);
  return j;
}

Json to_json(const TaskLogLine& l) {
  return {{"id", l.id},           {"task_id", l.task_id},
          {"attempt", l.attempt}, {"level", to_string(l.level)},
          {"message", l.message}, {"at", format_time(l.at)}};
}

Json to_json(const Artifact& a) {
  return {{"id", a.id},
          {"run_id", a.run_id},
          {"task_id", a.task_id},
          {"task_key", a.task_key},
          {"attempt", a.attempt},
          {"name", a.name},
          {"digest", a.digest},
          {"size", a.size},
          {"created_at", format_time(a.created_at)}};
}

Json to_json(const DirectMessage& m) {
  return {{"id", m.id},
          {"sender", m.sender},
          {"recipient", m.recipient},
          {"message_type", m.message_type},
          {"payload", embedded(m.payload)},
          {"status", to_string(m.status)},
          {"sent_at", format_time(m.sent_at)},
          {"delivered_at", opt_time(m.delivered_at)},
          {"read_at", opt_time(m.read_at)}};
}

}  // namespace devcycle::server
