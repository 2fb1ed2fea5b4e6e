// /api/v1/auth, /api/v1/users, /api/v1/api-keys
#include <algorithm>

#include "devcycle/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

void require_admin(const Principal& who, std::string_view what) {
  if (who.role != Role::kAdmin) {
    throw Error(ErrorCode::kPermissionDenied, "only an admin may " + std::string(what) +
                                                  " (you are a " +
                                                  std::string(to_string(who.role)) + ")");
  }
}

}  // namespace

void add_auth_routes(Router& r, Services& s) {
  r.add({"POST", "/api/v1/auth/login",
         [&s](Call& c) {
           const auto user = authenticate_login(s, c, "token");
           const auto pair = s.tokens.issue(user);
           audit(s, c.req, user.id, "login.succeeded", "user:" + user.id);
           return json_response(200, to_json(pair, s.platform.clock().now()));
         },
         /*public_route=*/true, Lane::kHeavy});

  r.add({"POST", "/api/v1/auth/refresh",
         [&s](Call& c) {
           BodyInput in(c.req);
           auto token = in.string("refresh_token", true);
           in.done();
           const auto pair = s.auth.refresh(*token);
           return json_response(200, to_json(pair, s.platform.clock().now()));
         },
         true});

  r.add({"POST", "/api/v1/auth/logout", [&s](Call& c) {
           BodyInput in(c.req, /*empty_ok=*/true);
           auto refresh = in.string("refresh_token");
           in.done();
           s.auth.logout(c.access_token, refresh.value_or(""));
           audit(s, c, "token.revoked", "user:" + c.principal.id);
           return no_content();
         }});

  r.add({"GET", "/api/v1/auth/me", [&s](Call& c) {
           if (c.access_token.empty() && c.session_token.empty()) {
             // An API key speaks for its owner, with the key's role and scope.
             Json j{{"user_id", c.principal.id},
                    {"role", to_string(c.principal.role)},
                    {"capabilities", c.principal.capabilities},
                    {"agent_id",
                     c.principal.agent_id.empty() ? Json(nullptr) : Json(c.principal.agent_id)},
                    {"credential", "api_key"}};
             return json_response(200, j);
           }
           Json j = to_json(s.users.get(c.principal.id));
           j["credential"] = c.access_token.empty() ? "session" : "access_token";
           return json_response(200, j);
         }});

  r.add({"POST", "/api/v1/auth/password",
         [&s](Call& c) {
           BodyInput in(c.req);
           auto current = in.string("current_password", true);
           auto next = in.string("new_password", true);
           in.done();
           if (c.access_token.empty() && c.session_token.empty()) {
             throw Error(ErrorCode::kPermissionDenied,
                         "log in with a password to change it; an API key cannot");
           }
           try {
             s.auth.change_password(c.principal.id, *current, *next);
             s.sessions.revoke_user(c.principal.id);
             audit(s, c, "password.changed", "user:" + c.principal.id);
           } catch (const Error& e) {
             // A wrong current password is bad input here, not a lost session.
             if (e.code() != ErrorCode::kUnauthenticated) throw;
             throw ValidationError("current_password", "does not match");
           }
           return no_content();
         },
         false, Lane::kHeavy});

  // Users: admins manage accounts; everyone may read themselves.
  r.add({"GET", "/api/v1/users",
         [&s](Call& c) {
           require_admin(c.principal, "list users");
           QueryInput q(c.req);
           UserFilter f;
           if (auto role = q.string("role")) f.role = parse_role(*role, "query.role");
           f.active = q.boolean("active");
           f.limit = static_cast<int>(q.integer("limit", 1, 1000).value_or(50));
           f.page_token = q.string("page_token").value_or("");
           q.done();
           const auto p = s.users.list(f);
           Json items = Json::array();
           for (const auto& u : p.users) items.push_back(to_json(u));
           return json_response(200, page(std::move(items), p.next_page_token));
         },
         false, Lane::kInline, true});

  r.add({"POST", "/api/v1/users",
         [&s](Call& c) {
           require_admin(c.principal, "create users");
           BodyInput in(c.req);
           NewUser u;
           u.email = in.string("email", true).value_or("");
           u.username = in.string("username", true).value_or("");
           u.password = in.string("password", true).value_or("");
           const auto role = in.string("role");
           in.done();
           if (role) u.role = parse_role(*role);
           const auto created = s.users.create(u);
           audit(s, c, "user.created", "user:" + created.id, {{"role", to_string(created.role)}});
           return json_response(201, to_json(created));
         },
         false, Lane::kHeavy});

  r.add({"GET", "/api/v1/users/{id}", [&s](Call& c) {
           const auto& id = c.param("id");
           authorize(c.principal, Action::kRead, object(Resource::kUser, id, id));
           return json_response(200, to_json(s.users.get(id)));
         }});

  r.add({"PATCH", "/api/v1/users/{id}", [&s](Call& c) {
           const auto& id = c.param("id");
           authorize(c.principal, Action::kRead, object(Resource::kUser, id, id));
           BodyInput in(c.req);
           const auto role = in.string("role");
           const auto active = in.boolean("active");
           in.done();
           require_admin(c.principal, "change roles or deactivate accounts");
           s.users.get(id);  // 404 before any change
           if (active && !*active && id == c.principal.id) {
             throw ValidationError("active", "you cannot deactivate yourself");
           }
           if (role) {
             s.users.set_role(id, parse_role(*role));
             s.sessions.revoke_user(id);  // sessions carry the role they began with
             audit(s, c, "user.role_changed", "user:" + id, {{"role", *role}});
           }
           if (active) {
             if (*active) {
               s.users.reactivate(id);
               audit(s, c, "user.reactivated", "user:" + id);
             } else {
               s.auth.deactivate(id);
               s.sessions.revoke_user(id);
               audit(s, c, "user.deactivated", "user:" + id);
             }
           }
           return json_response(200, to_json(s.users.get(id)));
         }});

  // API keys: each user sees and revokes their own; admins anyone's.
  r.add({"GET", "/api/v1/api-keys",
         [&s](Call& c) {
           QueryInput q(c.req);
           auto owner = q.string("owner").value_or(c.principal.id);
           q.done();
           if (owner != c.principal.id) {
             authorize(c.principal, Action::kRead, object(Resource::kApiKey, "", owner));
           }
           Json items = Json::array();
           for (const auto& k : s.keys.list(owner)) items.push_back(to_json(k));
           return json_response(200, page(std::move(items), ""));
         },
         false, Lane::kInline, true});

  r.add({"POST", "/api/v1/api-keys", [&s](Call& c) {
           authorize(c.principal, Action::kCreate, object(Resource::kApiKey, "", ""));
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
           if (!k.agent_id.empty()) {
             // The agent must exist and be the creator's to act as.
             const auto agent = s.platform.registry().get(k.agent_id);
             authorize(c.principal, Action::kUpdate,
                       object(Resource::kAgent, agent.id, agent.owner));
           }
           const auto created = s.keys.create(c.principal, k);
           audit(s, c, "api_key.created", "api_key:" + created.key.id,
                 {{"role", to_string(created.key.role)}, {"prefix", created.key.prefix}});
           Json j = to_json(created.key);
           j["secret"] = created.secret;
           return json_response(201, j);
         }});

  r.add({"GET", "/api/v1/api-keys/{id}", [&s](Call& c) {
           const auto k = s.keys.get(c.param("id"));
           authorize(c.principal, Action::kRead, object(Resource::kApiKey, k.id, k.owner));
           return json_response(200, to_json(k));
         }});

  r.add({"DELETE", "/api/v1/api-keys/{id}", [&s](Call& c) {
           const auto k = s.keys.get(c.param("id"));
           authorize(c.principal, Action::kDelete, object(Resource::kApiKey, k.id, k.owner));
           const auto revoked = s.keys.revoke(k.id);
           audit(s, c, "api_key.revoked", "api_key:" + k.id, {{"prefix", k.prefix}});
           return json_response(200, to_json(revoked));
         }});
}

}  // namespace devcycle::server
