// Browser sessions (/api/v1/auth/session, /api/v1/auth/sessions) and the
// audit log (/api/v1/audit).
#include "devcycle/common/error.h"
#include "input.h"
#include "services.h"

namespace devcycle::server {

namespace {

Json to_json(const Session& s) {
  return {{"id", s.id},
          {"user_id", s.user_id},
          {"role", to_string(s.role)},
          {"created_at", format_time(s.created_at)},
          {"last_seen_at", format_time(s.last_seen_at)},
          {"expires_at", format_time(s.expires_at)},
          {"client_address", s.client_address},
          {"user_agent", s.user_agent},
          {"revoked_at", s.revoked_at ? Json(format_time(*s.revoked_at)) : Json(nullptr)}};
}

Json to_json(const AuditEntry& e) {
  return {{"id", e.id},
          {"at", format_time(e.at)},
          {"actor", e.actor.empty() ? Json(nullptr) : Json(e.actor)},
          {"action", e.action},
          {"target", e.target},
          {"client_address", e.client_address},
          {"detail", embedded(e.detail)}};
}

// A browser logs in for a session cookie (HttpOnly) and a CSRF cookie.
HttpResponse create_session(Services& s, Call& c) {
  const auto user = authenticate_login(s, c, "session");
  const auto* agent = c.req.header("user-agent");
  const auto created = s.identity.open_session(user, c.req.client_address, agent ? *agent : "");
  audit(s, c.req, user.id, "login.succeeded", "session:" + created.session.id,
        {{"via", "session"}});
  auto res = json_response(
      201, {{"session", to_json(created.session)}, {"csrf_token", created.csrf_token}});
  const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::microseconds(created.session.expires_at - created.session.created_at));
  for (auto& h : session_cookies(created, c.req.tls, max_age)) res.headers.push_back(h);
  return res;
}

HttpResponse end_session(Services& s, Call& c) {
  if (c.session_token.empty()) {
    throw ValidationError("cookie." + std::string(kSessionCookie),
                          "log out of a session with its cookie; bearer tokens use "
                          "POST /api/v1/auth/logout");
  }
  const auto id = s.sessions.authenticate(c.session_token).id;
  s.sessions.revoke(id);
  audit(s, c, "session.revoked", "session:" + id);
  auto res = no_content();
  for (auto& h : clear_session_cookies(c.req.tls)) res.headers.push_back(h);
  return res;
}

HttpResponse list_sessions(Services& s, Call& c) {
  Json items = Json::array();
  for (const auto& session : as(s, c).users().sessions()) {
    items.push_back(to_json(session));
  }
  return json_response(200, page(std::move(items), ""));
}

HttpResponse revoke_session(Services& s, Call& c) {
  const auto revoked = as(s, c).users().revoke_session(c.param("id"));
  audit(s, c, "session.revoked", "session:" + revoked.id);
  return json_response(200, to_json(revoked));
}

HttpResponse list_audit_entries(Services& s, Call& c) {
  QueryInput q(c.req);
  AuditFilter f;
  f.actor = q.string("actor");
  f.action = q.string("action");
  f.after = q.time("after");
  f.before = q.time("before");
  f.limit = static_cast<int>(q.integer("limit", 1, 1000).value_or(100));
  f.page_token = q.string("page_token").value_or("");
  q.done();
  const auto p = as(s, c).audit().query(f);
  Json items = Json::array();
  for (const auto& e : p.entries) items.push_back(to_json(e));
  return json_response(200, page(std::move(items), p.next_page_token));
}

}  // namespace

std::vector<Route> session_routes(Services& s) {
  return {
      {.method = "POST",
       .path = "/api/v1/auth/session",
       .handler = bound(s, create_session),
       .public_route = true,
       .lane = Lane::kHeavy},
      {.method = "DELETE", .path = "/api/v1/auth/session", .handler = bound(s, end_session)},
      {.method = "GET", .path = "/api/v1/auth/sessions", .handler = bound(s, list_sessions)},
      {.method = "DELETE",
       .path = "/api/v1/auth/sessions/{id}",
       .handler = bound(s, revoke_session)},
      {.method = "GET",
       .path = "/api/v1/audit",
       .handler = bound(s, list_audit_entries),
       .takes_query = true},
  };
}

}  // namespace devcycle::server
