// /api/v1/runs, /api/v1/tasks
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

HttpResponse create_run(Services& s, Call& c) {
  BodyInput in(c.req);
  StartRun sr;
  sr.workflow = in.string("workflow", true).value_or("");
  if (auto v = in.integer("version", 1, INT32_MAX)) sr.version = static_cast<int>(*v);
  sr.input = in.object_json("input").value_or("{}");
  sr.labels = in.string_map("labels").value_or(std::map<std::string, std::string>{});
  in.done();
  if (const auto* key = c.req.header("idempotency-key")) {
    if (key->empty() || key->size() > 255) {
      throw ValidationError("header.Idempotency-Key", "must be 1 to 255 characters");
    }
    sr.idempotency_key = *key;
  }
  return json_response(201, to_json(as(s, c).runs().start(sr)));
}

HttpResponse list_runs(Services& s, Call& c) {
  QueryInput q(c.req);
  RunFilter f;
  if (auto st = q.string("status")) f.status = parse_run_status(*st, "query.status");
  f.workflow = q.string("workflow");
  f.owner = q.string("owner");
  f.labels = q.labels("label");
  f.created_after = q.time("created_after");
  f.created_before = q.time("created_before");
  f.limit = static_cast<int>(q.integer("limit", 1, 1000).value_or(50));
  f.page_token = q.string("page_token").value_or("");
  q.done();
  const auto p = as(s, c).runs().list(f);
  Json items = Json::array();
  for (const auto& run : p.runs) items.push_back(to_json(run));
  return json_response(200, page(std::move(items), p.next_page_token));
}

HttpResponse get_run(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).runs().get(c.param("id"))));
}

// State changes of a run, for whoever may change it.
using RunAction = Run (ScopedRuns::*)(std::string_view);
RouteHandler run_action(Services& s, RunAction action) {
  return [&s, action](Call& c) {
    auto runs = as(s, c).runs();
    return json_response(200, to_json((runs.*action)(c.param("id"))));
  };
}

HttpResponse signal_run(Services& s, Call& c) {
  BodyInput in(c.req, /*empty_ok=*/true);
  const auto payload = in.any_json("payload");
  in.done();
  const bool delivered =
      as(s, c).runs().signal(c.param("id"), c.param("name"), payload.value_or("{}"));
  return json_response(200, {{"signal", c.param("name")}, {"delivered", delivered}});
}

HttpResponse list_run_artifacts(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& a : as(s, c).runs().artifacts(c.param("id"))) items.push_back(to_json(a));
  return json_response(200, page(std::move(items), ""));
}

// The bytes of one artifact, as a download.
HttpResponse download_artifact(Services& s, Call& c) {
  const auto a = as(s, c).runs().artifact(c.param("id"), c.param("artifact_id"));
  auto* blobs = s.platform.blobs();
  if (!blobs) throw Error(ErrorCode::kUnavailable, "this server keeps no artifacts");
  HttpResponse res;
  res.content_type = "application/octet-stream";
  res.body = blobs->get(a.digest);
  std::string safe;  // the name as a quoted-string: no quotes, no backslashes
  for (char ch : a.name) safe.push_back(ch == '"' || ch == '\\' ? '_' : ch);
  res.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + safe + "\"");
  res.headers.emplace_back("Digest", "sha-256=" + a.digest.substr(7));
  return res;
}

HttpResponse get_task(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).runs().task(c.param("id"))));
}

HttpResponse cancel_task(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).runs().cancel_task(c.param("id"))));
}

HttpResponse list_task_logs(Services& s, Call& c) {
  QueryInput q(c.req);
  const auto attempt = q.integer("attempt", 1, 1000);
  const auto limit = q.integer("limit", 1, 1000).value_or(100);
  auto token = q.string("page_token").value_or("");
  q.done();
  const auto p = as(s, c).runs().logs(
      c.param("id"), attempt ? std::optional<int>(static_cast<int>(*attempt)) : std::nullopt,
      static_cast<int>(limit), std::move(token));
  Json items = Json::array();
  for (const auto& l : p.lines) items.push_back(to_json(l));
  return json_response(200, page(std::move(items), p.next_page_token));
}

}  // namespace

std::vector<Route> run_routes(Services& s) {
  return {
      {.method = "POST", .path = "/api/v1/runs", .handler = bound(s, create_run)},
      {.method = "GET",
       .path = "/api/v1/runs",
       .handler = bound(s, list_runs),
       .takes_query = true},
      {.method = "GET", .path = "/api/v1/runs/{id}", .handler = bound(s, get_run)},
      {.method = "POST",
       .path = "/api/v1/runs/{id}/cancel",
       .handler = run_action(s, &ScopedRuns::cancel)},
      {.method = "POST",
       .path = "/api/v1/runs/{id}/pause",
       .handler = run_action(s, &ScopedRuns::pause)},
      {.method = "POST",
       .path = "/api/v1/runs/{id}/resume",
       .handler = run_action(s, &ScopedRuns::resume)},
      {.method = "POST",
       .path = "/api/v1/runs/{id}/retry",
       .handler = run_action(s, &ScopedRuns::retry)},
      {.method = "POST",
       .path = "/api/v1/runs/{id}/signals/{name}",
       .handler = bound(s, signal_run)},
      {.method = "GET",
       .path = "/api/v1/runs/{id}/artifacts",
       .handler = bound(s, list_run_artifacts)},
      {.method = "GET",
       .path = "/api/v1/runs/{id}/artifacts/{artifact_id}",
       .handler = bound(s, download_artifact)},
      {.method = "GET", .path = "/api/v1/tasks/{id}", .handler = bound(s, get_task)},
      {.method = "POST", .path = "/api/v1/tasks/{id}/cancel", .handler = bound(s, cancel_task)},
      {.method = "GET",
       .path = "/api/v1/tasks/{id}/logs",
       .handler = bound(s, list_task_logs),
       .takes_query = true},
  };
}

}  // namespace devcycle::server
