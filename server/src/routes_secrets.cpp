// /api/v1/secrets: names, owners and times; a value goes in and never out.
#include "devcycle/common/error.h"
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

HttpResponse list_secrets(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& i : as(s, c).secrets().list()) items.push_back(to_json(i));
  return json_response(200, page(std::move(items), ""));
}

HttpResponse get_secret(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).secrets().info(c.param("name"))));
}

// Creates or replaces: 201 for a new name, 200 for a new version. The
// library checks and writes in one transaction; the owner never changes.
HttpResponse put_secret(Services& s, Call& c) {
  BodyInput in(c.req);
  const auto value = in.string("value", true);
  in.done();
  bool created = false;
  const auto info = as(s, c).secrets().put(c.param("name"), *value, &created);
  audit(s, c, created ? "secret.created" : "secret.updated", "secret:" + info.name,
        {{"version", info.version}});
  return json_response(created ? 201 : 200, to_json(info));
}

HttpResponse delete_secret(Services& s, Call& c) {
  as(s, c).secrets().remove(c.param("name"));
  audit(s, c, "secret.deleted", "secret:" + c.param("name"));
  return no_content();
}

}  // namespace

std::vector<Route> secret_routes(Services& s) {
  return {
      {.method = "GET", .path = "/api/v1/secrets", .handler = bound(s, list_secrets)},
      {.method = "GET", .path = "/api/v1/secrets/{name}", .handler = bound(s, get_secret)},
      {.method = "PUT", .path = "/api/v1/secrets/{name}", .handler = bound(s, put_secret)},
      {.method = "DELETE", .path = "/api/v1/secrets/{name}", .handler = bound(s, delete_secret)},
  };
}

}  // namespace devcycle::server
