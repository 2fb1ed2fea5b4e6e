// /api/v1/workflows
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

void add_workflow_routes(Router& r, Services& s) {
  r.add({"GET", "/api/v1/workflows", [&s](Call& c) {
           Json items = Json::array();
           for (const auto& w : as(s, c).workflows().list()) items.push_back(to_json(w));
           return json_response(200, page(std::move(items), ""));
         }});

  // The body is the definition itself, as in a workflow file.
  r.add({"POST", "/api/v1/workflows", [&s](Call& c) {
           BodyInput in(c.req);  // a JSON object, or a clear 400
           return json_response(201, to_json(as(s, c).workflows().create(c.req.body)));
         }});

  r.add({"POST", "/api/v1/workflows/validate", [&s](Call& c) {
           BodyInput in(c.req);
           return json_response(200, to_json(as(s, c).workflows().validate(c.req.body)));
         }});

  r.add({"GET", "/api/v1/workflows/{name}",
         [&s](Call& c) {
           QueryInput q(c.req);
           const auto version = q.integer("version", 1, INT32_MAX);
           q.done();
           return json_response(
               200, to_json(as(s, c).workflows().get(
                        c.param("name"),
                        version ? std::optional<int>(static_cast<int>(*version)) : std::nullopt)));
         },
         false, Lane::kInline, true});

  r.add({"GET", "/api/v1/workflows/{name}/versions", [&s](Call& c) {
           Json items = Json::array();
           for (const auto& w : as(s, c).workflows().versions(c.param("name")))
             items.push_back(to_json(w));
           return json_response(200, page(std::move(items), ""));
         }});
}

}  // namespace devcycle::server
