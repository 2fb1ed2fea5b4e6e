// /api/v1/secrets: names, owners and times; a value goes in and never out.
#include "devcycle/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

Json to_json(const SecretInfo& i) {
  return {{"name", i.name},
          {"owner", i.owner},
          {"version", i.version},
          {"created_at", format_time(i.created_at)},
          {"updated_at", format_time(i.updated_at)}};
}

}  // namespace

void add_secret_routes(Router& r, Services& s) {
  r.add({"GET", "/api/v1/secrets", [&s](Call& c) {
           authorize(c.principal, Action::kRead, object(Resource::kSecret));
           Json items = Json::array();
           for (const auto& i : s.secrets.list()) items.push_back(to_json(i));
           return json_response(200, page(std::move(items), ""));
         }});

  r.add({"GET", "/api/v1/secrets/{name}", [&s](Call& c) {
           const auto info = s.secrets.info(c.param("name"));
           authorize(c.principal, Action::kRead, object(Resource::kSecret, info.name, info.owner));
           return json_response(200, to_json(info));
         }});

  // Creates or replaces: 201 for a new name, 200 for a new version.
  r.add({"PUT", "/api/v1/secrets/{name}", [&s](Call& c) {
           BodyInput in(c.req);
           const auto value = in.string("value", true);
           in.done();
           std::optional<SecretInfo> existing;
           try {
             existing = s.secrets.info(c.param("name"));
           } catch (const Error& e) {
             if (e.code() != ErrorCode::kNotFound) throw;
           }
           if (existing) {
             authorize(c.principal, Action::kUpdate,
                       object(Resource::kSecret, existing->name, existing->owner));
           } else {
             authorize(c.principal, Action::kCreate, object(Resource::kSecret));
           }
           const auto info = s.secrets.put(c.param("name"), *value, c.principal.id);
           audit(s, c, existing ? "secret.updated" : "secret.created", "secret:" + info.name,
                 {{"version", info.version}});
           return json_response(existing ? 200 : 201, to_json(info));
         }});

  r.add({"DELETE", "/api/v1/secrets/{name}", [&s](Call& c) {
           const auto info = s.secrets.info(c.param("name"));
           authorize(c.principal, Action::kDelete,
                     object(Resource::kSecret, info.name, info.owner));
           s.secrets.remove(info.name);
           audit(s, c, "secret.deleted", "secret:" + info.name);
           return no_content();
         }});
}

}  // namespace devcycle::server
