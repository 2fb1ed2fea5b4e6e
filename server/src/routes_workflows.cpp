// /api/v1/workflows
#include "devcycle/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

void add_workflow_routes(Router& r, Services& s) {
  auto& catalog = s.platform.workflows();

  r.add({"GET", "/api/v1/workflows", [&catalog](Call& c) {
           authorize(c.principal, Action::kRead, object(Resource::kWorkflow, "", ""));
           Json items = Json::array();
           for (const auto& w : catalog.list()) items.push_back(to_json(w));
           return json_response(200, page(std::move(items), ""));
         }});

  // The body is the definition itself, as in a workflow file.
  r.add({"POST", "/api/v1/workflows", [&s, &catalog](Call& c) {
           authorize(c.principal, Action::kCreate, object(Resource::kWorkflow, "", ""));
           BodyInput in(c.req);  // a JSON object, or a clear 400
           if (const auto name = in.json().find("name");
               name != in.json().end() && name->is_string()) {
             // A new version of an existing workflow belongs to its owner.
             try {
               const auto latest = catalog.get(name->get<std::string>());
               authorize(c.principal, Action::kUpdate,
                         object(Resource::kWorkflow, latest.name, latest.owner));
             } catch (const Error& e) {
               if (e.code() != ErrorCode::kNotFound) throw;
             }
           }
           const auto stored = catalog.create(c.req.body, c.principal.id);
           (void)s;
           return json_response(201, to_json(stored));
         }});

  r.add({"POST", "/api/v1/workflows/validate", [&s](Call& c) {
           authorize(c.principal, Action::kRead, object(Resource::kWorkflow, "", ""));
           BodyInput in(c.req);
           auto [def, report] = validate_definition(c.req.body, &s.platform.registry());
           return json_response(200, to_json(report));
         }});

  r.add({"GET", "/api/v1/workflows/{name}",
         [&catalog](Call& c) {
           authorize(c.principal, Action::kRead, object(Resource::kWorkflow, c.param("name"), ""));
           QueryInput q(c.req);
           const auto version = q.integer("version", 1, INT32_MAX);
           q.done();
           return json_response(
               200, to_json(catalog.get(
                        c.param("name"),
                        version ? std::optional<int>(static_cast<int>(*version)) : std::nullopt)));
         },
         false, Lane::kInline, true});

  r.add({"GET", "/api/v1/workflows/{name}/versions", [&catalog](Call& c) {
           authorize(c.principal, Action::kRead, object(Resource::kWorkflow, c.param("name"), ""));
           const auto versions = catalog.versions(c.param("name"));
           if (versions.empty()) {
             throw Error(ErrorCode::kNotFound, "workflow \"" + c.param("name") + "\" not found");
           }
           Json items = Json::array();
           for (const auto& w : versions) items.push_back(to_json(w));
           return json_response(200, page(std::move(items), ""));
         }});
}

}  // namespace devcycle::server
