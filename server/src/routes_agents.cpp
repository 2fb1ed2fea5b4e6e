// /api/v1/agent-types, /api/v1/agents, /api/v1/capabilities
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

HttpResponse list_agent_types(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& t : as(s, c).agents().list_types()) items.push_back(to_json(t));
  return json_response(200, page(std::move(items), ""));
}

HttpResponse create_agent_type(Services& s, Call& c) {
  BodyInput in(c.req);
  AgentTypeSpec t;
  t.name = in.string("name", true).value_or("");
  t.description = in.string("description").value_or("");
  t.config_schema = in.object_json("config_schema").value_or("{}");
  in.done();
  return json_response(201, to_json(as(s, c).agents().define_type(t)));
}

HttpResponse get_agent_type(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).agents().get_type(c.param("name"))));
}

HttpResponse list_agents(Services& s, Call& c) {
  QueryInput q(c.req);
  AgentFilter f;
  f.owner = q.string("owner");
  f.type = q.string("type");
  if (auto st = q.string("status")) f.status = parse_agent_status(*st, "query.status");
  f.capability = q.string("capability");
  f.labels = q.labels("label");
  f.limit = static_cast<int>(q.integer("limit", 1, 1000).value_or(50));
  f.page_token = q.string("page_token").value_or("");
  q.done();
  auto agents = as(s, c).agents();
  if (c.principal.role == Role::kAgent) {  // its own agent only: not the shared cache
    Json items = Json::array();
    for (const auto& a : agents.list(f).agents) items.push_back(to_json(a));
    return json_response(200, page(std::move(items), ""));
  }
  auto& cache = s.agent_lists;
  if (auto body = cache.get(c.req.query)) return json_text_response(200, std::move(*body));
  const auto generation = cache.generation();
  const auto p = agents.list(f);
  JsonOut out;
  out.begin_object().key("items").begin_array();
  for (const auto& a : p.agents) write(out, a);
  out.end_array().key("next_page_token");
  if (p.next_page_token.empty()) {
    out.null();
  } else {
    out.str(p.next_page_token);
  }
  auto body = out.end_object().take();
  cache.put(c.req.query, body, generation);
  return json_text_response(200, std::move(body));
}

HttpResponse create_agent(Services& s, Call& c) {
  BodyInput in(c.req);
  AgentSpec a;
  a.name = in.string("name", true).value_or("");
  a.type = in.string("type", true).value_or("");
  a.description = in.string("description").value_or("");
  a.configuration = in.object_json("configuration").value_or("{}");
  a.labels = in.string_map("labels").value_or(std::map<std::string, std::string>{});
  a.capacity = static_cast<int>(in.integer("capacity", 1, 10000).value_or(1));
  in.done();
  return json_response(201, to_json(as(s, c).agents().create(a)));
}

HttpResponse get_agent(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).agents().get(c.param("id"))));
}

HttpResponse update_agent(Services& s, Call& c) {
  BodyInput in(c.req);
  AgentUpdate u;
  u.description = in.string("description");
  u.configuration = in.object_json("configuration");
  u.labels = in.string_map("labels");
  if (auto cap = in.integer("capacity", 1, 10000)) u.capacity = static_cast<int>(*cap);
  u.disabled = in.boolean("disabled");
  u.shared = in.boolean("shared");
  u.expected_revision = in.integer("expected_revision", 1, INT64_MAX);
  in.done();
  return json_response(200, to_json(as(s, c).agents().update(c.param("id"), u)));
}

HttpResponse delete_agent(Services& s, Call& c) {
  as(s, c).agents().remove(c.param("id"));
  return no_content();
}

HttpResponse list_agent_versions(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& v : as(s, c).agents().versions(c.param("id"))) items.push_back(to_json(v));
  return json_response(200, page(std::move(items), ""));
}

HttpResponse create_agent_version(Services& s, Call& c) {
  BodyInput in(c.req);
  AgentVersionSpec v;
  v.version = in.string("version", true).value_or("");
  v.capabilities = in.string_list("capabilities").value_or(std::vector<std::string>{});
  v.requirements = in.string_list("requirements").value_or(std::vector<std::string>{});
  v.executor = in.string("executor").value_or("");
  v.notes = in.string("notes").value_or("");
  in.done();
  return json_response(201, to_json(as(s, c).agents().add_version(c.param("id"), v)));
}

HttpResponse get_agent_version(Services& s, Call& c) {
  return json_response(200,
                       to_json(as(s, c).agents().get_version(c.param("id"), c.param("version"))));
}

HttpResponse deploy_agent(Services& s, Call& c) {
  BodyInput in(c.req);
  const auto version = in.string("version", true);
  const auto force = in.boolean("force");
  in.done();
  return json_response(
      200, to_json(as(s, c).agents().deploy(c.param("id"), *version, force.value_or(false))));
}

HttpResponse rollback_agent(Services& s, Call& c) {
  BodyInput in(c.req, /*empty_ok=*/true);
  const auto to = in.string("to_version");
  const auto force = in.boolean("force");
  in.done();
  return json_response(
      200, to_json(as(s, c).agents().rollback(c.param("id"), to, force.value_or(false))));
}

HttpResponse list_agent_deployments(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& d : as(s, c).agents().deployments(c.param("id"))) items.push_back(to_json(d));
  return json_response(200, page(std::move(items), ""));
}

HttpResponse send_agent_heartbeat(Services& s, Call& c) {
  BodyInput in(c.req, /*empty_ok=*/true);
  const auto load = in.integer("load", 0, 1'000'000);
  in.done();
  const auto beat = as(s, c).agents().heartbeat(c.param("id"), static_cast<int>(load.value_or(0)));
  s.agent_lists.invalidate();  // last_heartbeat and load changed without an event
  return json_response(200, to_json(beat));
}

HttpResponse check_agent_compatibility(Services& s, Call& c) {
  auto agents = as(s, c).agents();
  const auto a = agents.get(c.param("id"));
  QueryInput q(c.req);
  auto version = q.string("version");
  q.done();
  if (!version) {
    if (!a.active_version) {
      throw ValidationError("query.version", "is required: the agent has no deployed version");
    }
    version = a.active_version;
  }
  return json_response(200, to_json(agents.check_compatibility(a.id, *version)));
}

HttpResponse list_capability_agents(Services& s, Call& c) {
  QueryInput q(c.req);
  CapabilityQuery cq;
  cq.capability = c.param("name");
  cq.range = q.string("range").value_or("*");
  cq.limit = static_cast<int>(q.integer("limit", 1, 1000).value_or(10));
  cq.include_offline = q.boolean("include_offline").value_or(false);
  q.done();
  Json items = Json::array();
  for (const auto& cand : as(s, c).agents().select(cq)) {
    Json j = to_json(cand.agent);
    j["capability"] = cand.capability.to_string();
    items.push_back(std::move(j));
  }
  return json_response(200, page(std::move(items), ""));
}

}  // namespace

std::vector<Route> agent_routes(Services& s) {
  return {
      {.method = "GET", .path = "/api/v1/agent-types", .handler = bound(s, list_agent_types)},
      {.method = "POST", .path = "/api/v1/agent-types", .handler = bound(s, create_agent_type)},
      {.method = "GET", .path = "/api/v1/agent-types/{name}", .handler = bound(s, get_agent_type)},
      {.method = "GET",
       .path = "/api/v1/agents",
       .handler = bound(s, list_agents),
       .takes_query = true},
      {.method = "POST", .path = "/api/v1/agents", .handler = bound(s, create_agent)},
      {.method = "GET", .path = "/api/v1/agents/{id}", .handler = bound(s, get_agent)},
      {.method = "PATCH", .path = "/api/v1/agents/{id}", .handler = bound(s, update_agent)},
      {.method = "DELETE", .path = "/api/v1/agents/{id}", .handler = bound(s, delete_agent)},
      {.method = "GET",
       .path = "/api/v1/agents/{id}/versions",
       .handler = bound(s, list_agent_versions)},
      {.method = "POST",
       .path = "/api/v1/agents/{id}/versions",
       .handler = bound(s, create_agent_version)},
      {.method = "GET",
       .path = "/api/v1/agents/{id}/versions/{version}",
       .handler = bound(s, get_agent_version)},
      {.method = "POST", .path = "/api/v1/agents/{id}/deploy", .handler = bound(s, deploy_agent)},
      {.method = "POST",
       .path = "/api/v1/agents/{id}/rollback",
       .handler = bound(s, rollback_agent)},
      {.method = "GET",
       .path = "/api/v1/agents/{id}/deployments",
       .handler = bound(s, list_agent_deployments)},
      {.method = "POST",
       .path = "/api/v1/agents/{id}/heartbeat",
       .handler = bound(s, send_agent_heartbeat)},
      {.method = "GET",
       .path = "/api/v1/agents/{id}/compatibility",
       .handler = bound(s, check_agent_compatibility),
       .takes_query = true},
      {.method = "GET",
       .path = "/api/v1/capabilities/{name}/agents",
       .handler = bound(s, list_capability_agents),
       .takes_query = true},
  };
}

}  // namespace devcycle::server
