"""Browser sessions with CSRF, and the audit log."""

import requests

from conftest import field_errors, problem, unique


def session_login(server, login, password):
    s = requests.Session()
    r = s.post(server.url + "/api/v1/auth/session", json={"login": login, "password": password},
               headers={"User-Agent": "e2e-browser"}, timeout=30)
    return s, r


def test_session_cookie_with_csrf(server, make_user):
    user, _ = make_user("developer")
    password = "correct horse battery " + user["username"]
    browser, r = session_login(server, user["username"], password)
    assert r.status_code == 201, r.text
    body = r.json()
    cookies = r.headers.get("Set-Cookie", "")
    assert "devcycle_session=dcs_" in cookies and "HttpOnly" in cookies and "SameSite=Strict" in cookies
    csrf = browser.cookies["devcycle_csrf"]
    assert csrf == body["csrf_token"]
    assert body["session"]["user_agent"] == "e2e-browser"

    # Reads need only the cookie.
    me = browser.get(server.url + "/api/v1/auth/me", timeout=10)
    assert me.status_code == 200 and me.json()["credential"] == "session"
    assert me.json()["id"] == user["id"]

    # A change without the CSRF header, or with a wrong one, is refused.
    agent_type = unique("sess-type-")
    body = problem(browser.post(server.url + "/api/v1/agents", json={"name": "x", "type": agent_type},
                                timeout=10), 403, "permission_denied")
    assert "X-CSRF-Token" in body["detail"]
    problem(browser.post(server.url + "/api/v1/agents", json={"name": "x", "type": agent_type},
                         headers={"X-CSRF-Token": "0" * len(csrf)}, timeout=10), 403)
    # With it, the request goes through (and fails on its own merits: no such type).
    r = browser.post(server.url + "/api/v1/agents", json={"name": "x", "type": agent_type},
                     headers={"X-CSRF-Token": csrf}, timeout=10)
    assert r.status_code == 400 and "type" in r.json()["detail"]

    listed = browser.get(server.url + "/api/v1/auth/sessions", timeout=10).json()["items"]
    assert len(listed) == 1 and listed[0]["user_id"] == user["id"]
    token = browser.cookies["devcycle_session"]

    # Logging out revokes the session and clears the cookies.
    out = browser.delete(server.url + "/api/v1/auth/session", headers={"X-CSRF-Token": csrf},
                         timeout=10)
    assert out.status_code == 204
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    stale = requests.get(server.url + "/api/v1/auth/me",
                         headers={"Cookie": "devcycle_session=" + token}, timeout=10)
    problem(stale, 401)


def test_session_login_failures(server):
    _, r = session_login(server, "nobody-at-all", "wrong password here")
    problem(r, 401)
    problem(requests.post(server.url + "/api/v1/auth/session", json={"login": "x"}, timeout=10), 400)
    problem(requests.get(server.url + "/api/v1/auth/me",
                         headers={"Cookie": "devcycle_session=dcs_forged"}, timeout=10), 401)


def test_password_change_ends_sessions(server, make_user):
    user, client = make_user("developer")
    old = "correct horse battery " + user["username"]
    browser, r = session_login(server, user["username"], old)
    assert r.status_code == 201
    assert client.post("/api/v1/auth/password",
                       json={"current_password": old, "new_password": "another long passphrase"}
                       ).status_code == 204
    problem(browser.get(server.url + "/api/v1/auth/me", timeout=10), 401)


def test_others_sessions_are_invisible(server, admin, make_user):
    user, _ = make_user("developer")
    browser, r = session_login(server, user["username"], "correct horse battery " + user["username"])
    sid = r.json()["session"]["id"]
    _, other = make_user("developer")
    problem(other.delete(f"/api/v1/auth/sessions/{sid}"), 404)
    revoked = admin.delete(f"/api/v1/auth/sessions/{sid}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    problem(browser.get(server.url + "/api/v1/auth/me", timeout=10), 401)


def test_audit_log(server, admin, make_user):
    user, dev = make_user("developer")
    # A failed login, a key created and revoked, a role change, a denial.
    server.client().post("/api/v1/auth/login", json={"login": user["username"],
                                                     "password": "definitely wrong!!"})
    key = dev.post("/api/v1/api-keys", json={"name": "audited", "role": "viewer"}).json()
    dev.delete(f"/api/v1/api-keys/{key['id']}")
    dev.post("/api/v1/agent-types", json={"name": unique("nope")})
    admin.patch(f"/api/v1/users/{user['id']}", json={"role": "viewer"})

    mine = admin.get("/api/v1/audit", params={"actor": user["id"], "limit": 100}).json()["items"]
    actions = [e["action"] for e in mine]
    assert "login.succeeded" in actions
    assert "api_key.created" in actions and "api_key.revoked" in actions
    assert "permission.denied" in actions
    denied = next(e for e in mine if e["action"] == "permission.denied")
    assert denied["target"] == "POST /api/v1/agent-types"
    # Newest first.
    assert actions.index("api_key.revoked") < actions.index("api_key.created")

    failed = admin.get("/api/v1/audit", params={"action": "login.failed"}).json()["items"]
    assert any(e["detail"].get("login") == user["username"] and e["actor"] is None for e in failed)
    role = admin.get("/api/v1/audit", params={"action": "user.role_changed"}).json()["items"]
    assert any(e["target"] == f"user:{user['id']}" and e["detail"] == {"role": "viewer"} for e in role)
    assert admin.get("/api/v1/audit", params={"action": "login."}).json()["items"]

    # Nothing secret in it: no key secret, no password.
    everything = admin.get("/api/v1/audit", params={"limit": 1000}).text
    assert key["secret"] not in everything and "definitely wrong" not in everything

    # Not for non-admins; bad filters are named. (The role change ended the
    # developer's token: a new login, as the viewer they are now.)
    viewer = server.client(token=server.login(user["username"],
                                              "correct horse battery " + user["username"])
                           ["access_token"])
    problem(viewer.get("/api/v1/audit"), 404)
    body = problem(admin.get("/api/v1/audit", params={"after": "last week"}), 400)
    assert "query.after" in field_errors(body)
    problem(admin.get("/api/v1/audit", params={"action": "Login Failed"}), 400)
