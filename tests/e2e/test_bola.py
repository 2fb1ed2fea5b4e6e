"""A BOLA sweep generated from server/openapi.json: every operation whose path
names an object (an id or a name) is tried on another developer's objects as
a second developer, as a viewer and as an agent key of the attacker's own
agent. Changes must be refused (403 or 404), reads must be what the
documented matrix allows, and the database must be unchanged afterwards.

A new operation with a path parameter fails this test until it is given a
request below: no route escapes the sweep by being new."""

import json
import sqlite3

import pytest

from conftest import SPEC_PATH, Server, problem, unique

# Objects of the victim's that no route names by id here; parameters that
# name nothing private.
NOT_OWNED = {("GET", "/api/v1/agent-types/{name}"), ("GET", "/api/v1/capabilities/{name}/agents"),
             ("GET", "/docs/{file}"), ("GET", "/api/v1/runs/{id}/artifacts/{artifact_id}")}

# Reads the matrix gives every developer and viewer (agent keys: only their
# own agent and its tasks, so none of these).
READABLE_BY_PEOPLE = {
    "/api/v1/agents/{id}", "/api/v1/agents/{id}/versions",
    "/api/v1/agents/{id}/versions/{version}", "/api/v1/agents/{id}/deployments",
    "/api/v1/agents/{id}/compatibility", "/api/v1/workflows/{name}",
    "/api/v1/workflows/{name}/versions", "/api/v1/runs/{id}", "/api/v1/runs/{id}/artifacts",
    "/api/v1/tasks/{id}", "/api/v1/tasks/{id}/logs", "/api/v1/secrets/{name}"}

# Tables the sweep may touch: denials are audited, and keys and sessions
# note their use.
VOLATILE = {"audit_log", "schema_migrations", "bus_topics", "bus_messages", "bus_groups",
            "bus_pending", "bus_dead", "bus_segments", "signing_keys", "refresh_tokens",
            "revoked_access_tokens"}
VOLATILE_COLUMNS = {"last_used_at", "last_seen_at"}


def operations():
    spec = json.loads(SPEC_PATH.read_text())
    for path, ops in spec["paths"].items():
        if "{" not in path:
            continue
        for method in ops:
            if method in ("get", "post", "put", "patch", "delete"):
                if (method.upper(), path) not in NOT_OWNED:
                    yield method.upper(), path


def snapshot(db_path: str) -> dict:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in sorted(set(tables) - VOLATILE):
            cur = con.execute(f'SELECT * FROM "{t}"')
            cols = [c[0] for c in cur.description]
            rows = [tuple(v for c, v in zip(cols, row) if c not in VOLATILE_COLUMNS)
                    for row in cur.fetchall()]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def world():
    s = Server()
    admin = s.admin()
    assert admin.post("/api/v1/agent-types", json={"name": "bola"}).status_code == 201

    def user(role):
        name = unique("bola" + role)
        password = "correct horse battery " + name
        u = admin.post("/api/v1/users", json={"email": f"{name}@example.com", "username": name,
                                              "password": password, "role": role}).json()
        return u, s.client(token=s.login(name, password)["access_token"]), (name, password)

    victim, v, v_login = user("developer")
    _, attacker, _ = user("developer")
    _, viewer, _ = user("viewer")

    def remote_agent(owner, capability):
        a = owner.post("/api/v1/agents", json={"name": unique("a-"), "type": "bola"}).json()
        for version in ("1.0.0", "2.0.0"):
            assert owner.post(f"/api/v1/agents/{a['id']}/versions", json={
                "version": version, "capabilities": [f"{capability}@1.0.0"],
                "executor": "remote"}).status_code == 201
            assert owner.post(f"/api/v1/agents/{a['id']}/deploy",
                              json={"version": version}).status_code == 200
        return a

    capability = unique("bolacap")
    agent = remote_agent(v, capability)
    peer = remote_agent(v, unique("peer"))
    flow = unique("bola-flow-")
    assert v.post("/api/v1/workflows", json={"name": flow, "tasks": [
        {"id": "wait", "signal": "go"},
        {"id": "work", "capability": capability}]}).status_code == 201
    run = v.post("/api/v1/runs", json={"workflow": flow}).json()
    victim_key = v.post(f"/api/v1/api-keys", json={
        "name": "worker", "role": "agent", "agent_id": agent["id"],
        "capabilities": [capability]}).json()
    worker = s.client(api_key=victim_key["secret"])
    claimed = worker.post(f"/api/v1/agents/{agent['id']}/claims", json={"wait_ms": 5000}).json()
    assert claimed["items"], claimed
    task = claimed["items"][0]
    secret = "BOLA_" + unique("S").upper()
    assert v.request("PUT", f"/api/v1/secrets/{secret}",
                     json={"value": "victim-value-123"}).status_code == 201
    message = v.post(f"/api/v1/agents/{peer['id']}/messages", json={
        "recipient": agent["id"], "message_type": "note", "payload": {"n": 1}}).json()
    session = s.client().post("/api/v1/auth/session", json={
        "login": v_login[0], "password": v_login[1]}).json()["session"]

    # The attacker's agent key: its own agent, not the victim's.
    own_agent = remote_agent(attacker, unique("own"))
    attacker_key = attacker.post("/api/v1/api-keys", json={
        "name": "k", "role": "agent", "agent_id": own_agent["id"],
        "capabilities": [capability]}).json()["secret"]

    params = {"id": None, "name": None, "version": "1.0.0", "message_id": message["id"]}
    objects = {
        "/api/v1/auth/sessions": session["id"], "/api/v1/users": victim["id"],
        "/api/v1/api-keys": victim_key["id"], "/api/v1/agents": agent["id"],
        "/api/v1/workflows": flow, "/api/v1/runs": run["id"], "/api/v1/tasks": task["task_id"],
        "/api/v1/secrets": secret}
    fence = {"attempt": task["attempt"], "lease_owner": task["lease_owner"]}
    bodies = {
        ("PATCH", "/api/v1/users/{id}"): {"role": "viewer"},
        ("POST", "/api/v1/users/{id}/password"): {"password": "an attacker's chosen password"},
        ("PATCH", "/api/v1/agents/{id}"): {"description": "pwned"},
        ("POST", "/api/v1/agents/{id}/versions"): {"version": "9.9.9", "executor": "remote"},
        ("POST", "/api/v1/agents/{id}/deploy"): {"version": "1.0.0"},
        ("POST", "/api/v1/agents/{id}/rollback"): {},
        ("POST", "/api/v1/agents/{id}/heartbeat"): {"load": 1},
        ("POST", "/api/v1/agents/{id}/messages"): {"recipient": peer["id"],
                                                   "message_type": "spoof", "payload": {}},
        ("POST", "/api/v1/agents/{id}/messages/receive"): {"limit": 10},
        ("POST", "/api/v1/agents/{id}/messages/{message_id}/read"): {},
        ("POST", "/api/v1/tasks/{id}/logs"): dict(fence, message="pwned"),
        ("PUT", "/api/v1/secrets/{name}"): {"value": "attacker-value"},
        ("POST", "/api/v1/runs/{id}/signals/{name}"): {"payload": {}},
        ("POST", "/api/v1/agents/{id}/claims"): {"max": 1},
        ("POST", "/api/v1/tasks/{id}/lease"): dict(fence, lease_ms=60000),
        ("POST", "/api/v1/tasks/{id}/complete"): dict(fence, output={"pwned": True}),
        ("POST", "/api/v1/tasks/{id}/fail"): dict(fence, error="pwned", retryable=False),
    }
    attackers = {"developer": attacker, "viewer": viewer,
                 "agent key": s.client(api_key=attacker_key)}
    yield {"server": s, "objects": objects, "params": params, "bodies": bodies,
           "attackers": attackers, "db": f"{s.dir.name}/devcycle.db"}
    assert s.stop() == 0, s.log()


def url_of(world, path: str) -> str:
    prefix = max((k for k in world["objects"] if path.startswith(k + "/")), key=len)
    obj = world["objects"][prefix]
    out = path.replace("{id}", obj, 1) if "{id}" in path else path.replace("{name}", obj, 1)
    for k, v in world["params"].items():
        out = out.replace("{" + k + "}", v or "go")
    return out


def test_every_operation_on_another_users_object_is_refused(world):
    before = snapshot(world["db"])
    swept = 0
    for method, path in operations():
        needs_body = method in ("POST", "PUT", "PATCH")
        body = world["bodies"].get((method, path))
        if needs_body and body is None and path not in (
                "/api/v1/runs/{id}/cancel", "/api/v1/runs/{id}/retry", "/api/v1/runs/{id}/pause",
                "/api/v1/runs/{id}/resume", "/api/v1/tasks/{id}/cancel"):
            pytest.fail(f"{method} {path} is new: give it a request in test_bola.py")
        for who, client in world["attackers"].items():
            r = client.request(method, url_of(world, path), json=body, validate=False)
            readable = method == "GET" and path in READABLE_BY_PEOPLE and who != "agent key"
            if readable:
                assert r.status_code == 200, (who, method, path, r.status_code, r.text)
            else:
                assert r.status_code in (403, 404), (who, method, path, r.status_code, r.text)
                problem(r, r.status_code)
            swept += 1
    assert swept >= 3 * 35
    assert snapshot(world["db"]) == before
