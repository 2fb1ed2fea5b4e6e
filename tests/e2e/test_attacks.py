"""Attacks from the security review of issue #20, each as a request sequence
against a live server: the attack as an attacker would send it, then the
refusal, and that nothing changed."""

import json
import threading
import time

import pytest
import websocket

from conftest import Server, problem, unique

DEPTH = 300_000  # 600 KB of brackets: under the 1 MiB body limit


def nested(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def raw(client, method: str, path: str, body: str):
    """A request whose body Python's json module could not even write."""
    return client.request(method, path, data=body.encode(), validate=False,
                          headers={"Content-Type": "application/json"})


def alive(server) -> None:
    assert server.proc.poll() is None, server.log()
    assert server.client().get("/healthz").status_code == 200


@pytest.fixture(scope="module")
def remote_type(admin):
    name = unique("attack-type-")
    assert admin.post("/api/v1/agent-types", json={"name": name}).status_code == 201
    return name


def remote_agent(owner, agent_type: str, capability: str) -> dict:
    agent = owner.post("/api/v1/agents", json={"name": unique("agent-"), "type": agent_type}).json()
    r = owner.post(f"/api/v1/agents/{agent['id']}/versions", json={
        "version": "1.0.0", "capabilities": [f"{capability}@1.0.0"], "executor": "remote"})
    assert r.status_code == 201, r.text
    assert owner.post(f"/api/v1/agents/{agent['id']}/deploy",
                      json={"version": "1.0.0"}).status_code == 200
    return agent


def agent_key(owner, agent: dict, capability: str) -> str:
    r = owner.post("/api/v1/api-keys", json={"name": "worker", "role": "agent",
                                             "agent_id": agent["id"], "capabilities": [capability]})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


# --- Deeply nested JSON cannot crash the server -------------------------------------------------

def test_deeply_nested_json_is_a_400_everywhere_and_the_server_lives(server, admin, make_user,
                                                                     remote_type):
    _, dev = make_user("developer")
    _, viewer = make_user("viewer")
    capability = unique("deep")
    agent = remote_agent(dev, remote_type, capability)
    wf = unique("deep-flow-")
    assert dev.post("/api/v1/workflows", json={"name": wf, "tasks": [
        {"id": "w", "signal": "go"}, {"id": "t", "capability": capability}]}).status_code == 201
    run = dev.post("/api/v1/runs", json={"workflow": wf}).json()
    key = agent_key(dev, agent, capability)
    worker = server.client(api_key=key)
    task = worker.post(f"/api/v1/agents/{agent['id']}/claims", json={"wait_ms": 5000}).json()
    attacks = [
        (dev, "POST", "/api/v1/runs", '{"workflow": "%s", "input": {"a": %s}}' % (wf, nested())),
        (dev, "POST", f"/api/v1/runs/{run['id']}/signals/go", '{"payload": %s}' % nested()),
        (dev, "POST", "/api/v1/agents",
         '{"name": "deep", "type": "%s", "configuration": {"a": %s}}' % (remote_type, nested())),
        (dev, "PATCH", f"/api/v1/agents/{agent['id']}", '{"configuration": {"a": %s}}' % nested()),
        (viewer, "PATCH", f"/api/v1/agents/{agent['id']}",
         '{"configuration": {"a": %s}}' % nested()),
        (dev, "POST", f"/api/v1/agents/{agent['id']}/messages",
         '{"recipient": "%s", "message_type": "x", "payload": %s}' % (agent["id"], nested())),
        (admin, "POST", "/api/v1/agent-types",
         '{"name": "deep-type", "config_schema": %s}' % ("{\"not\":" * 100_000 + "{}" +
                                                         "}" * 100_000)),
        (dev, "POST", "/api/v1/workflows", '{"name": "deep", "tasks": %s}' % nested()),
    ]
    if task["items"]:
        t = task["items"][0]
        attacks.append((worker, "POST", f"/api/v1/tasks/{t['task_id']}/complete",
                        '{"attempt": %d, "lease_owner": "%s", "output": %s}' % (
                            t["attempt"], t["lease_owner"], nested())))
    for client, method, path, body in attacks:
        r = raw(client, method, path, body)
        detail = problem(r, 400)["detail"]
        assert "nested deeper than 64 levels" in detail, (method, path, detail)
        alive(server)
    # Numbers beyond a double are bad input, not an internal error.
    r = raw(dev, "POST", "/api/v1/runs", '{"workflow": "%s", "input": {"n": 1e400}}' % wf)
    assert "out of range" in problem(r, 400)["detail"]
    # Nothing of it was stored.
    assert dev.get(f"/api/v1/agents/{agent['id']}").json()["configuration"] == {}
    assert admin.get("/api/v1/agent-types/deep-type").status_code == 404
    alive(server)


def test_a_deep_websocket_frame_is_refused_not_fatal(server, admin):
    token = server.login()["access_token"]
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws",
                                     header=[f"Authorization: Bearer {token}"], timeout=10)
    try:
        # Under the 64 KiB frame limit, and far deeper than the nesting limit.
        ws.send('{"type": "subscribe", "topic": "runs", "x": %s}' % nested(30_000))
        reply = json.loads(ws.recv())
        assert reply["type"] == "error" and "nested deeper than 64 levels" in reply["detail"], reply
    finally:
        ws.close()
    alive(server)


# --- Secrets reach only their owner's work --------------------------------------------------------

def test_a_developer_cannot_read_another_users_secret_through_a_task(server, admin, make_user,
                                                                     remote_type):
    victim, victim_client = make_user("developer")
    _, thief = make_user("developer")
    name = "VICTIM_" + unique("S").upper()
    value = "victim-s3cr3t-" + unique("v")
    assert victim_client.request("PUT", f"/api/v1/secrets/{name}",
                                 json={"value": value}).status_code == 201
    capability = unique("steal")
    agent = remote_agent(thief, remote_type, capability)
    definition = {"name": unique("steal-"), "tasks": [
        {"id": "t", "capability": capability, "input": {"x": "{{ secrets.%s }}" % name}}]}
    body = problem(thief.post("/api/v1/workflows", json=definition), 403)
    assert name in body["detail"]
    problem(thief.get(f"/api/v1/workflows/{definition['name']}"), 404)

    # Named before it existed, then created by the victim: refused when the task runs.
    later = "LATER_" + unique("S").upper()
    definition = {"name": unique("steal-later-"), "tasks": [
        {"id": "t", "capability": capability, "input": {"x": "{{ secrets.%s }}" % later},
         "retry": {"max_attempts": 1}}]}
    assert thief.post("/api/v1/workflows", json=definition).status_code == 201
    assert victim_client.request("PUT", f"/api/v1/secrets/{later}",
                                 json={"value": value}).status_code == 201
    run = thief.post("/api/v1/runs", json={"workflow": definition["name"]}).json()
    worker = server.client(api_key=agent_key(thief, agent, capability))
    got = worker.post(f"/api/v1/agents/{agent['id']}/claims", json={"wait_ms": 3000})
    assert value not in got.text
    assert got.json()["items"] == []
    d = thief.get(f"/api/v1/runs/{run['id']}").json()
    assert d["status"] == "failed" and "may not use it" in d["tasks"][0]["error"], d
    assert value not in server.log()


def test_putting_a_secret_never_transfers_it(server, admin, make_user):
    owner, dev = make_user("developer")
    name = "KEEP_" + unique("S").upper()
    assert dev.request("PUT", f"/api/v1/secrets/{name}", json={"value": "v1-value"}).status_code == 201
    r = admin.request("PUT", f"/api/v1/secrets/{name}", json={"value": "v2-value"})
    assert r.status_code == 200 and r.json()["owner"] == owner["id"] and r.json()["version"] == 2


# --- Remote agents receive only work they may do --------------------------------------------------

def test_a_remote_agent_cannot_claim_another_users_tasks(server, admin, make_user, remote_type):
    _, victim = make_user("developer")
    _, thief = make_user("developer")
    capability = unique("cap")
    victim_agent = remote_agent(victim, remote_type, capability)
    thief_agent = remote_agent(thief, remote_type, capability)  # advertises the same capability
    wf = unique("victim-flow-")
    assert victim.post("/api/v1/workflows", json={"name": wf, "tasks": [
        {"id": "t", "capability": capability, "input": {"private": "victim data"}}]}).status_code == 201
    run = victim.post("/api/v1/runs", json={"workflow": wf}).json()
    thief_worker = server.client(api_key=agent_key(thief, thief_agent, capability))
    r = thief_worker.post(f"/api/v1/agents/{thief_agent['id']}/claims", json={"wait_ms": 1500})
    assert r.status_code == 200 and r.json()["items"] == [] and "victim data" not in r.text
    assert victim.get(f"/api/v1/runs/{run['id']}").json()["tasks"][0]["status"] == "ready"
    # Only an admin shares an agent with every owner's runs.
    problem(thief.patch(f"/api/v1/agents/{thief_agent['id']}", json={"shared": True}), 403)
    assert not victim.get(f"/api/v1/agents/{thief_agent['id']}").json()["shared"]
    # The victim's own agent gets it.
    victim_worker = server.client(api_key=agent_key(victim, victim_agent, capability))
    r = victim_worker.post(f"/api/v1/agents/{victim_agent['id']}/claims", json={"wait_ms": 3000})
    assert [t["run_id"] for t in r.json()["items"]] == [run["id"]]


# --- Credentials follow the account ---------------------------------------------------------------

def test_a_demoted_or_deactivated_users_token_and_keys_stop_at_once(server, admin, make_user,
                                                                    remote_type):
    user, dev = make_user("developer")
    key = dev.post("/api/v1/api-keys", json={"name": "ci", "role": "developer"}).json()["secret"]
    by_key = server.client(api_key=key)
    assert by_key.post("/api/v1/agents", json={"name": unique("ok-"),
                                               "type": remote_type}).status_code == 201
    assert admin.patch(f"/api/v1/users/{user['id']}", json={"role": "viewer"}).status_code == 200
    # The old token: refused, not 15 minutes of developer rights.
    problem(dev.post("/api/v1/agents", json={"name": unique("no-"), "type": remote_type}), 401)
    # The key: now a viewer's.
    problem(by_key.post("/api/v1/agents", json={"name": unique("no-"), "type": remote_type}), 403)
    assert by_key.get("/api/v1/agents").status_code == 200
    assert admin.patch(f"/api/v1/users/{user['id']}", json={"active": False}).status_code == 200
    problem(by_key.get("/api/v1/agents"), 401)


def test_a_password_change_ends_the_old_access_token(server, make_user):
    user, dev = make_user("developer")
    old = "correct horse battery " + user["username"]
    assert dev.post("/api/v1/auth/password", json={
        "current_password": old, "new_password": "an entirely new passphrase"}).status_code == 204
    problem(dev.get("/api/v1/auth/me"), 401)


def test_a_logout_survives_a_restart(tmp_path):
    first = Server()
    db = f"sqlite://{first.dir.name}/devcycle.db"
    key_file = first.master_key_file
    tokens = first.login()
    c = first.client(token=tokens["access_token"])
    assert c.post("/api/v1/auth/logout", json={}).status_code == 204
    problem(c.get("/api/v1/auth/me"), 401)
    keep = first.dir  # the database outlives the process
    assert first.stop() == 0
    second = Server(database=db, master_key_file=key_file, first_start=False)
    try:
        problem(second.client(token=tokens["access_token"]).get("/api/v1/auth/me"), 401)
    finally:
        assert second.stop() == 0, second.log()
        keep.cleanup()


# --- The matrix where routes forgot it ------------------------------------------------------------

def test_running_another_developers_workflow_is_refused(server, admin, make_user, remote_type):
    _, alice = make_user("developer")
    _, bob = make_user("developer")
    wf = unique("alices-")
    assert alice.post("/api/v1/workflows", json={"name": wf, "tasks": [
        {"id": "t", "capability": unique("c")}]}).status_code == 201
    before = bob.get("/api/v1/runs", params={"workflow": wf}).json()["items"]
    problem(bob.post("/api/v1/runs", json={"workflow": wf}), 403)
    assert bob.get("/api/v1/runs", params={"workflow": wf}).json()["items"] == before
    assert admin.post("/api/v1/runs", json={"workflow": wf}).status_code == 201


def test_rollback_to_a_version_that_runs_code_is_an_admins_change(server, admin, make_user,
                                                                   remote_type):
    _, dev = make_user("developer")
    agent = dev.post("/api/v1/agents", json={"name": unique("rb-"), "type": remote_type}).json()
    aid = agent["id"]
    assert dev.post(f"/api/v1/agents/{aid}/versions",
                    json={"version": "1.0.0", "executor": "remote"}).status_code == 201
    assert dev.post(f"/api/v1/agents/{aid}/deploy", json={"version": "1.0.0"}).status_code == 200
    # An admin adds and deploys a version that runs a program, then the
    # developer moves on to a plain one.
    assert admin.post(f"/api/v1/agents/{aid}/versions", json={
        "version": "2.0.0", "executor": 'process:["/bin/true"]'}).status_code == 201
    assert admin.post(f"/api/v1/agents/{aid}/deploy", json={"version": "2.0.0"}).status_code == 200
    assert dev.post(f"/api/v1/agents/{aid}/versions",
                    json={"version": "3.0.0", "executor": "remote"}).status_code == 201
    assert dev.post(f"/api/v1/agents/{aid}/deploy", json={"version": "3.0.0"}).status_code == 200
    # Rolling back (to the previous version, unnamed) would activate 2.0.0.
    problem(dev.post(f"/api/v1/agents/{aid}/rollback", json={}), 403)
    assert dev.get(f"/api/v1/agents/{aid}").json()["active_version"] == "3.0.0"


# --- Open WebSockets are checked again ----------------------------------------------------------

def close_frame(ws, seconds: float = 15) -> tuple[int, str]:
    """Reads until the server's close frame; returns its code and reason."""
    ws.settimeout(seconds)
    while True:
        opcode, frame = ws.recv_data_frame(True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()


def test_a_websocket_closes_when_its_credentials_end(server, admin, make_user):
    # A logged-out token, a deactivated user's token, a revoked API key.
    tokens = server.login()
    by_token = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/ws",
        header=[f"Authorization: Bearer {tokens['access_token']}"], timeout=10)
    user, dev = make_user("developer")
    dev_token = dev.session.headers["Authorization"].split()[1]
    by_user = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws",
                                          header=[f"Authorization: Bearer {dev_token}"],
                                          timeout=10)
    key = admin.post("/api/v1/api-keys", json={"name": "ws", "role": "viewer"}).json()
    by_key = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws",
                                         header=[f"X-API-Key: {key['secret']}"], timeout=10)
    untouched = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/ws",
        header=[f"Authorization: Bearer {server.login()['access_token']}"], timeout=10)
    try:
        assert server.client(token=tokens["access_token"]).post(
            "/api/v1/auth/logout", json={}).status_code == 204
        assert admin.patch(f"/api/v1/users/{user['id']}", json={"active": False}).status_code == 200
        assert admin.delete(f"/api/v1/api-keys/{key['id']}").status_code == 200
        for ws in (by_token, by_user, by_key):
            code, reason = close_frame(ws)
            assert code == 1008 and "credentials no longer valid" in reason, (code, reason)
        # A connection whose credentials still hold stays open and answers.
        untouched.send(json.dumps({"type": "subscribe", "topic": "agents"}))
        assert json.loads(untouched.recv())["type"] == "subscribed"
    finally:
        for ws in (by_token, by_user, by_key, untouched):
            ws.close()


def test_an_agent_key_cannot_list_its_owners_keys_or_sessions(server, make_user, remote_type):
    _, dev = make_user("developer")
    capability = unique("own")
    agent = remote_agent(dev, remote_type, capability)
    worker = server.client(api_key=agent_key(dev, agent, capability))
    problem(worker.get("/api/v1/api-keys"), 404)
    problem(worker.get("/api/v1/auth/sessions"), 404)
    assert dev.get("/api/v1/api-keys").status_code == 200


def test_metrics_are_open_unless_a_token_is_set(server):
    assert server.client().get("/metrics").status_code == 200
    token = "m" * 24
    guarded = Server("--metrics-token", token)
    try:
        problem(guarded.client().get("/metrics"), 401)
        problem(guarded.client(token="x" * 24).get("/metrics"), 401)
        r = guarded.client(token=token).get("/metrics")
        assert r.status_code == 200 and "devcycle_build_info" in r.text
    finally:
        assert guarded.stop() == 0, guarded.log()


def test_one_caller_cannot_hold_every_waiting_claim(server, make_user, remote_type):
    import concurrent.futures
    _, dev = make_user("developer")
    capability = unique("idle")
    agent = remote_agent(dev, remote_type, capability)
    worker = server.client(api_key=agent_key(dev, agent, capability), validate=False)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda _: worker.post(f"/api/v1/agents/{agent['id']}/claims", json={"wait_ms": 3000}),
            range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) <= 4 and statuses.count(429) >= 4, statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    # Another caller still gets a waiting claim.
    _, other = make_user("developer")
    mine = remote_agent(other, remote_type, capability)
    r = server.client(api_key=agent_key(other, mine, capability)).post(
        f"/api/v1/agents/{mine['id']}/claims", json={"wait_ms": 100})
    assert r.status_code == 200


def test_a_waiting_claim_ends_when_its_key_is_revoked(server, make_user, remote_type):
    # Review of #20: a long-poll claim kept serving its caller for up to 30 s
    # after the key was revoked; now the claim checks it again every second.
    _, dev = make_user("developer")
    capability = unique("revoked")
    agent = remote_agent(dev, remote_type, capability)
    r = dev.post("/api/v1/api-keys", json={"name": "worker", "role": "agent",
                                           "agent_id": agent["id"], "capabilities": [capability]})
    key = r.json()
    worker = server.client(api_key=key["secret"], validate=False)
    answer = {}
    waiting = threading.Thread(target=lambda: answer.update(r=worker.post(
        f"/api/v1/agents/{agent['id']}/claims", json={"wait_ms": 20000})))
    waiting.start()
    time.sleep(1)
    assert dev.delete(f"/api/v1/api-keys/{key['id']}").status_code == 200
    waiting.join(30)
    problem(answer["r"], 401, "unauthenticated")


# --- User management ------------------------------------------------------------------------------

def test_an_admin_reset_password_must_be_changed_before_anything_else(server, admin, make_user):
    user, dev = make_user("developer")
    temporary = "a temporary passphrase " + user["username"]
    r = admin.post(f"/api/v1/users/{user['id']}/password", json={"password": temporary})
    assert r.status_code == 200 and r.json()["must_change_password"] is True
    problem(dev.get("/api/v1/agents"), 401)  # the old token ended with the reset
    c = server.client(token=server.login(user["username"], temporary)["access_token"])
    body = problem(c.get("/api/v1/agents"), 403)
    assert "change it" in body["detail"]
    assert c.get("/api/v1/auth/me").json()["must_change_password"] is True
    assert c.post("/api/v1/auth/password", json={"current_password": temporary,
                                                 "new_password": "my own fine passphrase"}
                  ).status_code == 204
    c = server.client(token=server.login(user["username"], "my own fine passphrase")["access_token"])
    assert c.get("/api/v1/agents").status_code == 200
    assert c.get("/api/v1/auth/me").json()["must_change_password"] is False
    # Only admins reset, and the policy applies.
    _, other = make_user("developer")
    problem(other.post(f"/api/v1/users/{user['id']}/password", json={"password": temporary}), 404)
    problem(admin.post(f"/api/v1/users/{user['id']}/password", json={"password": "short"}), 400)


def test_a_deleted_users_objects_keep_a_tombstone_owner_and_credentials_stop(server, admin,
                                                                             make_user,
                                                                             remote_type):
    user, dev = make_user("developer")
    agent = dev.post("/api/v1/agents", json={"name": unique("keep-"), "type": remote_type}).json()
    key = dev.post("/api/v1/api-keys", json={"name": "k", "role": "viewer"}).json()["secret"]
    problem(dev.delete(f"/api/v1/users/{user['id']}"), 403)  # not one's own (nor as a developer)
    me = admin.get("/api/v1/auth/me").json()
    problem(admin.delete(f"/api/v1/users/{me['id']}"), 400)
    assert admin.delete(f"/api/v1/users/{user['id']}").status_code == 204
    problem(admin.get(f"/api/v1/users/{user['id']}"), 404)
    problem(dev.get("/api/v1/agents"), 401)
    problem(server.client(api_key=key).get("/api/v1/agents"), 401)
    assert admin.get(f"/api/v1/agents/{agent['id']}").json()["owner"] == user["id"]
    problem(server.client().post("/api/v1/auth/login", json={
        "login": user["username"], "password": "correct horse battery " + user["username"]}), 401)
