// /api/v1/workflows
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

HttpResponse list_workflows(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& w : as(s, c).workflows().list()) items.push_back(to_json(w));
  return json_response(200, page(std::move(items), ""));
}

// The body is the definition itself, as in a workflow file.
HttpResponse create_workflow(Services& s, Call& c) {
  BodyInput in(c.req);  // a JSON object, or a clear 400
  return json_response(201, to_json(as(s, c).workflows().create(c.req.body)));
}

HttpResponse validate_workflow(Services& s, Call& c) {
  BodyInput in(c.req);
  return json_response(200, to_json(as(s, c).workflows().validate(c.req.body)));
}

HttpResponse get_workflow(Services& s, Call& c) {
  QueryInput q(c.req);
  const auto version = q.integer("version", 1, INT32_MAX);
  q.done();
  return json_response(
      200, to_json(as(s, c).workflows().get(
               c.param("name"),
               version ? std::optional<int>(static_cast<int>(*version)) : std::nullopt)));
}

HttpResponse list_workflow_versions(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& w : as(s, c).workflows().versions(c.param("name"))) items.push_back(to_json(w));
  return json_response(200, page(std::move(items), ""));
}

}  // namespace

std::vector<Route> workflow_routes(Services& s) {
  return {
      {.method = "GET", .path = "/api/v1/workflows", .handler = bound(s, list_workflows)},
      {.method = "POST", .path = "/api/v1/workflows", .handler = bound(s, create_workflow)},
      {.method = "POST",
       .path = "/api/v1/workflows/validate",
       .handler = bound(s, validate_workflow)},
      {.method = "GET",
       .path = "/api/v1/workflows/{name}",
       .handler = bound(s, get_workflow),
       .takes_query = true},
      {.method = "GET",
       .path = "/api/v1/workflows/{name}/versions",
       .handler = bound(s, list_workflow_versions)},
  };
}

}  // namespace devcycle::server
