// /api/v1/runs, /api/v1/tasks
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

void add_run_routes(Router& r, Services& s) {
  r.add({"POST", "/api/v1/runs", [&s](Call& c) {
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
         }});

  r.add({"GET", "/api/v1/runs",
         [&s](Call& c) {
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
         },
         false, Lane::kInline, true});

  r.add({"GET", "/api/v1/runs/{id}", [&s](Call& c) {
           return json_response(200, to_json(as(s, c).runs().get(c.param("id"))));
         }});

  // State changes of a run, for whoever may change it.
  using RunAction = Run (ScopedRuns::*)(std::string_view);
  for (const auto& [verb, action] :
       {std::pair<const char*, RunAction>{"cancel", &ScopedRuns::cancel},
        std::pair<const char*, RunAction>{"pause", &ScopedRuns::pause},
        std::pair<const char*, RunAction>{"resume", &ScopedRuns::resume},
        std::pair<const char*, RunAction>{"retry", &ScopedRuns::retry}}) {
    r.add({"POST", std::string("/api/v1/runs/{id}/") + verb, [&s, action = action](Call& c) {
             auto runs = as(s, c).runs();
             return json_response(200, to_json((runs.*action)(c.param("id"))));
           }});
  }

  r.add({"POST", "/api/v1/runs/{id}/signals/{name}", [&s](Call& c) {
           BodyInput in(c.req, /*empty_ok=*/true);
           const auto payload = in.any_json("payload");
           in.done();
           const bool delivered =
               as(s, c).runs().signal(c.param("id"), c.param("name"), payload.value_or("{}"));
           return json_response(200, {{"signal", c.param("name")}, {"delivered", delivered}});
         }});

  r.add({"GET", "/api/v1/runs/{id}/artifacts", [&s](Call& c) {
           Json items = Json::array();
           for (const auto& a : as(s, c).runs().artifacts(c.param("id")))
             items.push_back(to_json(a));
           return json_response(200, page(std::move(items), ""));
         }});

  // The bytes of one artifact, as a download.
  r.add({"GET", "/api/v1/runs/{id}/artifacts/{artifact_id}", [&s](Call& c) {
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
         }});

  r.add({"GET", "/api/v1/tasks/{id}", [&s](Call& c) {
           return json_response(200, to_json(as(s, c).runs().task(c.param("id"))));
         }});

  r.add({"POST", "/api/v1/tasks/{id}/cancel", [&s](Call& c) {
           return json_response(200, to_json(as(s, c).runs().cancel_task(c.param("id"))));
         }});

  r.add({"GET", "/api/v1/tasks/{id}/logs",
         [&s](Call& c) {
           QueryInput q(c.req);
           const auto attempt = q.integer("attempt", 1, 1000);
           const auto limit = q.integer("limit", 1, 1000).value_or(100);
           auto token = q.string("page_token").value_or("");
           q.done();
           const auto p = as(s, c).runs().logs(
               c.param("id"),
               attempt ? std::optional<int>(static_cast<int>(*attempt)) : std::nullopt,
               static_cast<int>(limit), std::move(token));
           Json items = Json::array();
           for (const auto& l : p.lines) items.push_back(to_json(l));
           return json_response(200, page(std::move(items), p.next_page_token));
         },
         false, Lane::kInline, true});
}

}  // namespace devcycle::server
