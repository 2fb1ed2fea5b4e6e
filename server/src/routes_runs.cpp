// /api/v1/runs, /api/v1/tasks
#include "devcycle/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

Run readable_run(Engine& engine, const Call& c, RunDetail* detail = nullptr) {
  auto d = engine.get(c.param("id"));
  authorize(c.principal, Action::kRead, object(Resource::kRun, d.run.id, d.run.owner));
  Run run = d.run;
  if (detail) *detail = std::move(d);
  return run;
}

}  // namespace

void add_run_routes(Router& r, Services& s) {
  auto& engine = s.platform.engine();

  r.add({"POST", "/api/v1/runs", [&engine](Call& c) {
           authorize(c.principal, Action::kCreate, object(Resource::kRun, "", ""));
           BodyInput in(c.req);
           StartRun sr;
           sr.workflow = in.string("workflow", true).value_or("");
           if (auto v = in.integer("version", 1, INT32_MAX)) sr.version = static_cast<int>(*v);
           sr.input = in.object_json("input").value_or("{}");
           sr.labels = in.string_map("labels").value_or(std::map<std::string, std::string>{});
           in.done();
           sr.owner = c.principal.id;
           if (const auto* key = c.req.header("idempotency-key")) {
             if (key->empty() || key->size() > 255) {
               throw ValidationError("header.Idempotency-Key", "must be 1 to 255 characters");
             }
             sr.idempotency_key = *key;
           }
           return json_response(201, to_json(engine.start(sr)));
         }});

  r.add({"GET", "/api/v1/runs",
         [&engine](Call& c) {
           authorize(c.principal, Action::kRead, object(Resource::kRun, "", ""));
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
           const auto p = engine.list(f);
           Json items = Json::array();
           for (const auto& run : p.runs) items.push_back(to_json(run));
           return json_response(200, page(std::move(items), p.next_page_token));
         },
         false, Lane::kInline, true});

  r.add({"GET", "/api/v1/runs/{id}", [&engine, &s](Call& c) {
           RunDetail d;
           readable_run(engine, c, &d);
           // Errors may quote what a task saw: never a secret's value.
           d.run.error = s.secrets.redact(d.run.error);
           for (auto& t : d.tasks) {
             t.error = s.secrets.redact(t.error);
             for (auto& a : t.attempts) a.error = s.secrets.redact(a.error);
           }
           return json_response(200, to_json(d));
         }});

  // State changes of a run, for whoever may change it.
  using RunAction = Run (Engine::*)(std::string_view);
  for (const auto& [verb, action] : {std::pair<const char*, RunAction>{"cancel", &Engine::cancel},
                                     std::pair<const char*, RunAction>{"pause", &Engine::pause},
                                     std::pair<const char*, RunAction>{"resume", &Engine::resume},
                                     std::pair<const char*, RunAction>{"retry", &Engine::retry}}) {
    r.add({"POST", std::string("/api/v1/runs/{id}/") + verb, [&engine, action = action](Call& c) {
             const auto run = readable_run(engine, c);
             authorize(c.principal, Action::kUpdate, object(Resource::kRun, run.id, run.owner));
             return json_response(200, to_json((engine.*action)(run.id)));
           }});
  }

  r.add({"POST", "/api/v1/runs/{id}/signals/{name}", [&engine](Call& c) {
           const auto run = readable_run(engine, c);
           BodyInput in(c.req, /*empty_ok=*/true);
           const auto payload = in.any_json("payload");
           in.done();
           authorize(c.principal, Action::kUpdate, object(Resource::kRun, run.id, run.owner));
           const bool delivered = engine.signal(run.id, c.param("name"), payload.value_or("{}"));
           return json_response(200, {{"signal", c.param("name")}, {"delivered", delivered}});
         }});

  r.add({"GET", "/api/v1/runs/{id}/artifacts", [&engine](Call& c) {
           const auto run = readable_run(engine, c);
           Json items = Json::array();
           for (const auto& a : engine.artifacts(run.id)) items.push_back(to_json(a));
           return json_response(200, page(std::move(items), ""));
         }});

  // The bytes of one artifact, as a download.
  r.add({"GET", "/api/v1/runs/{id}/artifacts/{artifact_id}", [&engine, &s](Call& c) {
           const auto run = readable_run(engine, c);
           const auto a = engine.artifact(run.id, c.param("artifact_id"));
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
         }});

  const auto readable_task = [&engine](const Call& c) {
    auto task = engine.get_task(c.param("id"));
    const auto run = engine.get(task.run_id).run;
    ObjectRef ref = object(Resource::kTask, task.id, run.owner);
    authorize(c.principal, Action::kRead, ref);
    return std::make_pair(task, ref);
  };

  r.add({"GET", "/api/v1/tasks/{id}", [&s, readable_task](Call& c) {
           auto task = readable_task(c).first;
           task.error = s.secrets.redact(task.error);
           for (auto& a : task.attempts) a.error = s.secrets.redact(a.error);
           return json_response(200, to_json(task));
         }});

  r.add({"POST", "/api/v1/tasks/{id}/cancel", [&engine, readable_task](Call& c) {
           const auto [task, ref] = readable_task(c);
           authorize(c.principal, Action::kUpdate, ref);
           return json_response(200, to_json(engine.cancel_task(task.id)));
         }});

  r.add({"GET", "/api/v1/tasks/{id}/logs",
         [&engine, &s, readable_task](Call& c) {
           const auto task = readable_task(c).first;
           QueryInput q(c.req);
           const auto attempt = q.integer("attempt", 1, 1000);
           const auto limit = q.integer("limit", 1, 1000).value_or(100);
           auto token = q.string("page_token").value_or("");
           q.done();
           const auto p = engine.logs(
               task.id, attempt ? std::optional<int>(static_cast<int>(*attempt)) : std::nullopt,
               static_cast<int>(limit), std::move(token));
           Json items = Json::array();
           for (auto l : p.lines) {
             l.message = s.secrets.redact(l.message);
             items.push_back(to_json(l));
           }
           return json_response(200, page(std::move(items), p.next_page_token));
         },
         false, Lane::kInline, true});
}

}  // namespace devcycle::server
