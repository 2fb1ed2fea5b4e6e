"""Login, refresh, logout, me, password change, users and API keys."""

import socket

import pytest

from conftest import field_errors, problem, unique


def test_first_start_printed_an_admin_password(server):
    assert len(server.admin_password) >= 20
    assert any("login:    admin" in l for l in server.stdout_lines)


def test_login_and_me(server):
    tokens = server.login()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    me = server.client(token=tokens["access_token"]).get("/api/v1/auth/me").json()
    assert me["username"] == "admin" and me["role"] == "admin"


def test_bad_logins(server):
    c = server.client()
    problem(c.post("/api/v1/auth/login", json={"login": "admin", "password": "wrong password!!"}),
            401, "unauthenticated")
    problem(c.post("/api/v1/auth/login", json={"login": "nobody", "password": "wrong password!!"}),
            401, "unauthenticated")
    body = problem(c.post("/api/v1/auth/login", data="{not json",
                          headers={"Content-Type": "application/json"}), 400, "invalid_argument")
    assert "body" in field_errors(body)
    body = problem(c.post("/api/v1/auth/login", json={"login": 5, "password": "x", "extra": 1}), 400)
    errors = field_errors(body)
    assert errors["login"].startswith("must be a string")
    assert errors["extra"].startswith("unknown field")
    body = problem(c.post("/api/v1/auth/login", json={}), 400)
    assert set(field_errors(body)) == {"login", "password"}
    problem(c.post("/api/v1/auth/login", json=[1, 2]), 400)


def test_no_or_bad_credentials(server):
    c = server.client()
    r = c.get("/api/v1/agents")
    problem(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    problem(server.client(token="not-a-jwt").get("/api/v1/agents"), 401)
    problem(server.client(api_key="dck_0000_nope").get("/api/v1/agents"), 401)
    problem(c.get("/api/v1/agents", headers={"Authorization": "Basic YWRtaW46eA=="}), 401)


def test_refresh_rotates_and_reuse_is_refused(server):
    tokens = server.login()
    c = server.client()
    fresh = c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200
    assert fresh.json()["refresh_token"] != tokens["refresh_token"]
    problem(c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    # Reuse revoked the whole family: the fresh one is gone too.
    problem(c.post("/api/v1/auth/refresh", json={"refresh_token": fresh.json()["refresh_token"]}),
            401)


def test_logout_revokes_the_access_token(server):
    tokens = server.login()
    c = server.client(token=tokens["access_token"])
    assert c.get("/api/v1/auth/me").status_code == 200
    assert c.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    problem(c.get("/api/v1/auth/me"), 401)
    problem(server.client().post("/api/v1/auth/refresh",
                                 json={"refresh_token": tokens["refresh_token"]}), 401)


def test_password_change(server, make_user):
    user, c = make_user("developer")
    old = "correct horse battery " + user["username"]
    body = problem(c.post("/api/v1/auth/password",
                          json={"current_password": old, "new_password": "short"}), 400)
    assert "new_password" in body["detail"]
    problem(c.post("/api/v1/auth/password",
                   json={"current_password": "wrong wrong wrong", "new_password": "a much better passphrase"}),
            400)
    assert c.post("/api/v1/auth/password",
                  json={"current_password": old, "new_password": "a much better passphrase"}).status_code == 204
    problem(server.client().post("/api/v1/auth/login",
                                 json={"login": user["username"], "password": old}), 401)
    server.login(user["username"], "a much better passphrase")


def test_users_are_an_admins_business(server, admin, make_user):
    dev, dev_client = make_user("developer")
    viewer, viewer_client = make_user("viewer")
    problem(viewer_client.get("/api/v1/users"), 403, "permission_denied")
    problem(viewer_client.post("/api/v1/users", json={"email": "x@example.com", "username": "xyz",
                                                      "password": "a long enough password"}), 403)
    # Another user's account does not exist for a non-admin; one's own does.
    problem(viewer_client.get(f"/api/v1/users/{dev['id']}"), 404)
    assert viewer_client.get(f"/api/v1/users/{viewer['id']}").json()["role"] == "viewer"
    problem(viewer_client.patch(f"/api/v1/users/{viewer['id']}", json={"role": "admin"}), 403)

    listed = admin.get("/api/v1/users", params={"role": "developer", "limit": 100}).json()
    assert dev["id"] in [u["id"] for u in listed["items"]]
    body = problem(admin.get("/api/v1/users", params={"limit": 0}), 400)
    assert "query.limit" in field_errors(body)
    body = problem(admin.get("/api/v1/users", params={"colour": "red"}), 400)
    assert "query.colour" in field_errors(body)

    r = admin.patch(f"/api/v1/users/{dev['id']}", json={"role": "viewer"})
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    r = admin.patch(f"/api/v1/users/{dev['id']}", json={"active": False})
    assert r.json()["active"] is False
    problem(server.client().post("/api/v1/auth/login", json={
        "login": dev["username"], "password": "correct horse battery " + dev["username"]}), 401)
    problem(admin.get(f"/api/v1/users/{unique('missing')}"), 404)

    body = problem(admin.post("/api/v1/users", json={"email": "not-an-email", "username": "ok-name",
                                                     "password": "a long enough password",
                                                     "role": "emperor"}), 400)
    assert "role" in field_errors(body)
    problem(admin.post("/api/v1/users", json={"email": f"{viewer['username']}@example.com",
                                              "username": viewer["username"],
                                              "password": "a long enough password"}), 409)


def test_api_keys(server, admin, make_user):
    dev, dev_client = make_user("developer")
    r = dev_client.post("/api/v1/api-keys", json={"name": "ci", "role": "developer"})
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["secret"].startswith("dck_") and key["owner"] == dev["id"]

    # The key works as X-API-Key and as a Bearer token.
    me = server.client(api_key=key["secret"]).get("/api/v1/auth/me").json()
    assert me["credential"] == "api_key" and me["user_id"] == dev["id"]
    assert server.client(token=key["secret"]).get("/api/v1/agents").status_code == 200

    listed = dev_client.get("/api/v1/api-keys").json()["items"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "secret" not in listed[0]

    # More than one's own role is refused; another user's key is invisible.
    problem(dev_client.post("/api/v1/api-keys", json={"name": "root", "role": "admin"}), 403)
    _, other = make_user("developer")
    problem(other.get(f"/api/v1/api-keys/{key['id']}"), 404)
    problem(other.delete(f"/api/v1/api-keys/{key['id']}"), 404)
    assert admin.get(f"/api/v1/api-keys/{key['id']}").status_code == 200

    body = problem(dev_client.post("/api/v1/api-keys",
                                   json={"name": "x", "role": "viewer", "expires_at": "tomorrow"}), 400)
    assert "expires_at" in field_errors(body)

    revoked = dev_client.delete(f"/api/v1/api-keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    problem(server.client(api_key=key["secret"]).get("/api/v1/agents"), 401)
