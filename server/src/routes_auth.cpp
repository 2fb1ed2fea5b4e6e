// /api/v1/auth, /api/v1/users, /api/v1/api-keys
#include <algorithm>

#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

HttpResponse login(Services& s, Call& c) {
  const auto user = authenticate_login(s, c, "token");
  const auto pair = s.tokens.issue(user);
  audit(s, c.req, user.id, "login.succeeded", "user:" + user.id);
  return json_response(200, to_json(pair, s.platform.clock().now()));
}

HttpResponse refresh_tokens(Services& s, Call& c) {
  BodyInput in(c.req);
  auto token = in.string("refresh_token", true);
  in.done();
  const auto pair = s.identity.refresh(*token, c.req.client_address);
  return json_response(200, to_json(pair, s.platform.clock().now()));
}

HttpResponse logout(Services& s, Call& c) {
  BodyInput in(c.req, /*empty_ok=*/true);
  auto refresh = in.string("refresh_token");
  in.done();
  s.auth.logout(c.access_token, refresh.value_or(""));
  audit(s, c, "token.revoked", "user:" + c.principal.id);
  return no_content();
}

HttpResponse get_current_principal(Services& s, Call& c) {
  if (c.access_token.empty() && c.session_token.empty()) {
    // An API key speaks for its owner, with the key's role and scope.
    Json j{{"user_id", c.principal.id},
           {"role", to_string(c.principal.role)},
           {"capabilities", c.principal.capabilities},
           {"agent_id", c.principal.agent_id.empty() ? Json(nullptr) : Json(c.principal.agent_id)},
           {"credential", "api_key"}};
    return json_response(200, j);
  }
  Json j = to_json(s.users.get(c.principal.id));
  j["credential"] = c.access_token.empty() ? "session" : "access_token";
  return json_response(200, j);
}

HttpResponse change_password(Services& s, Call& c) {
  BodyInput in(c.req);
  auto current = in.string("current_password", true);
  auto next = in.string("new_password", true);
  in.done();
  if (c.access_token.empty() && c.session_token.empty()) {
    throw Error(ErrorCode::kPermissionDenied,
                "log in with a password to change it; an API key cannot");
  }
  try {
    // Not through the facade: it is the one thing a user whose password
    // an admin reset may do (the credential check above stands in).
    s.identity.change_password(c.principal.id, *current, *next);
    audit(s, c, "password.changed", "user:" + c.principal.id);
  } catch (const Error& e) {
    // A wrong current password is bad input here, not a lost session.
    if (e.code() != ErrorCode::kUnauthenticated) throw;
    throw ValidationError("current_password", "does not match");
  }
  return no_content();
}

// Users: admins manage accounts; everyone may read themselves.
HttpResponse list_users(Services& s, Call& c) {
  QueryInput q(c.req);
  UserFilter f;
  if (auto role = q.string("role")) f.role = parse_role(*role, "query.role");
  f.active = q.boolean("active");
  f.limit = static_cast<int>(q.integer("limit", 1, 1000).value_or(50));
  f.page_token = q.string("page_token").value_or("");
  q.done();
  const auto p = as(s, c).users().list(f);
  Json items = Json::array();
  for (const auto& u : p.users) items.push_back(to_json(u));
  return json_response(200, page(std::move(items), p.next_page_token));
}

HttpResponse create_user(Services& s, Call& c) {
  BodyInput in(c.req);
  NewUser u;
  u.email = in.string("email", true).value_or("");
  u.username = in.string("username", true).value_or("");
  u.password = in.string("password", true).value_or("");
  const auto role = in.string("role");
  in.done();
  if (role) u.role = parse_role(*role);
  const auto created = as(s, c).users().create(u);
  audit(s, c, "user.created", "user:" + created.id, {{"role", to_string(created.role)}});
  return json_response(201, to_json(created));
}

HttpResponse get_user(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).users().get(c.param("id"))));
}

HttpResponse update_user(Services& s, Call& c) {
  const auto& id = c.param("id");
  BodyInput in(c.req);
  const auto role = in.string("role");
  const auto active = in.boolean("active");
  in.done();
  const auto before = as(s, c).users().get(id);
  const auto after = as(s, c).users().update(
      id, role ? std::optional<Role>(parse_role(*role)) : std::nullopt, active);
  if (role) audit(s, c, "user.role_changed", "user:" + id, {{"role", *role}});
  if (active && *active != before.active) {
    audit(s, c, *active ? "user.reactivated" : "user.deactivated", "user:" + id);
  }
  return json_response(200, to_json(after));
}

// An admin's reset: the user must change the password at the next login.
HttpResponse reset_user_password(Services& s, Call& c) {
  BodyInput in(c.req);
  const auto password = in.string("password", true);
  in.done();
  const auto user = as(s, c).users().reset_password(c.param("id"), *password);
  audit(s, c, "user.password_reset", "user:" + user.id);
  return json_response(200, to_json(user));
}

// Deleting an account: its objects keep its id as a tombstone owner.
HttpResponse delete_user(Services& s, Call& c) {
  as(s, c).users().remove(c.param("id"));
  audit(s, c, "user.deleted", "user:" + c.param("id"));
  return no_content();
}

// API keys: each user sees and revokes their own; admins anyone's.
HttpResponse list_api_keys(Services& s, Call& c) {
  QueryInput q(c.req);
  auto owner = q.string("owner");
  q.done();
  Json items = Json::array();
  for (const auto& k : as(s, c).api_keys().list(owner)) items.push_back(to_json(k));
  return json_response(200, page(std::move(items), ""));
}

HttpResponse create_api_key(Services& s, Call& c) {
  BodyInput in(c.req);
  NewApiKey k;
  k.name = in.string("name", true).value_or("");
  const auto role = in.string("role", true);
  k.capabilities = in.string_list("capabilities").value_or(std::vector<std::string>{});
  k.agent_id = in.string("agent_id").value_or("");
  const auto expires = in.string("expires_at");
  in.done();
  k.role = parse_role(*role);
  if (expires) {
    const auto t = parse_time(*expires);
    if (!t) throw ValidationError("expires_at", "must be an RFC 3339 time");
    k.expires_at = *t;
  }
  const auto created = as(s, c).api_keys().create(k);
  audit(s, c, "api_key.created", "api_key:" + created.key.id,
        {{"role", to_string(created.key.role)}, {"prefix", created.key.prefix}});
  Json j = to_json(created.key);
  j["secret"] = created.secret;
  return json_response(201, j);
}

HttpResponse get_api_key(Services& s, Call& c) {
  return json_response(200, to_json(as(s, c).api_keys().get(c.param("id"))));
}

HttpResponse revoke_api_key(Services& s, Call& c) {
  const auto revoked = as(s, c).api_keys().revoke(c.param("id"));
  audit(s, c, "api_key.revoked", "api_key:" + revoked.id, {{"prefix", revoked.prefix}});
  return json_response(200, to_json(revoked));
}

}  // namespace

std::vector<Route> auth_routes(Services& s) {
  return {
      {.method = "POST",
       .path = "/api/v1/auth/login",
       .handler = bound(s, login),
       .public_route = true,
       .lane = Lane::kHeavy},
      {.method = "POST",
       .path = "/api/v1/auth/refresh",
       .handler = bound(s, refresh_tokens),
       .public_route = true},
      {.method = "POST", .path = "/api/v1/auth/logout", .handler = bound(s, logout)},
      {.method = "GET", .path = "/api/v1/auth/me", .handler = bound(s, get_current_principal)},
      {.method = "POST",
       .path = "/api/v1/auth/password",
       .handler = bound(s, change_password),
       .lane = Lane::kHeavy},
      {.method = "GET",
       .path = "/api/v1/users",
       .handler = bound(s, list_users),
       .takes_query = true},
      {.method = "POST",
       .path = "/api/v1/users",
       .handler = bound(s, create_user),
       .lane = Lane::kHeavy},
      {.method = "GET", .path = "/api/v1/users/{id}", .handler = bound(s, get_user)},
      {.method = "PATCH", .path = "/api/v1/users/{id}", .handler = bound(s, update_user)},
      {.method = "POST",
       .path = "/api/v1/users/{id}/password",
       .handler = bound(s, reset_user_password),
       .lane = Lane::kHeavy},
      {.method = "DELETE", .path = "/api/v1/users/{id}", .handler = bound(s, delete_user)},
      {.method = "GET",
       .path = "/api/v1/api-keys",
       .handler = bound(s, list_api_keys),
       .takes_query = true},
      {.method = "POST", .path = "/api/v1/api-keys", .handler = bound(s, create_api_key)},
      {.method = "GET", .path = "/api/v1/api-keys/{id}", .handler = bound(s, get_api_key)},
      {.method = "DELETE", .path = "/api/v1/api-keys/{id}", .handler = bound(s, revoke_api_key)},
  };
}

}  // namespace devcycle::server
