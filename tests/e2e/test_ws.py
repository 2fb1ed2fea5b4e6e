"""/ws: live run, task and agent events over a WebSocket, for authenticated callers."""

import json

import pytest
import websocket

from conftest import unique


def connect(server, token=None, headers=None, **kw):
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    return websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws",
                                       header=[f"{k}: {v}" for k, v in h.items()], timeout=10, **kw)


def receive(ws, want=lambda m: True):
    """The next message that `want` accepts (others are skipped)."""
    for _ in range(200):
        m = json.loads(ws.recv())
        if want(m):
            return m
    raise AssertionError("no such message")


def test_run_events_arrive_in_order(server, make_user):
    user, dev = make_user("developer")
    token = dev.session.headers["Authorization"].split()[1]
    name = unique("ws-flow-")
    assert dev.post("/api/v1/workflows", json={"name": name, "tasks": [
        {"id": "approve", "signal": "go"},
        {"id": "nap", "sleep": "50ms", "depends_on": ["approve"]}]}).status_code == 201
    run = dev.post("/api/v1/runs", json={"workflow": name}).json()
    ws = connect(server, token)
    try:
        ws.send(json.dumps({"type": "subscribe", "topic": "run", "id": run["id"]}))
        assert receive(ws) == {"type": "subscribed", "topic": "run", "id": run["id"]}
        dev.post(f"/api/v1/runs/{run['id']}/signals/go")
        kinds = []
        while not kinds or kinds[-1] != "run.finished":
            m = receive(ws, lambda m: m["type"] == "event")
            assert m["topic"] == "run" and m["event"]["run_id"] == run["id"]
            e = m["event"]
            kinds.append(e["kind"] + (":" + e["task_key"] if "task_key" in e else ""))
        assert kinds == ["task.succeeded:approve", "task.waiting:nap", "task.succeeded:nap",
                         "run.finished"], kinds
        # Unsubscribed: nothing more of it; bad messages get an error, not a disconnect.
        ws.send(json.dumps({"type": "unsubscribe", "topic": "run", "id": run["id"]}))
        assert receive(ws)["type"] == "unsubscribed"
        ws.send("not json")
        assert receive(ws) == {"type": "error", "code": "invalid_argument",
                               "detail": "not a JSON object"}
        ws.send(json.dumps({"type": "subscribe", "topic": "weather"}))
        assert receive(ws)["detail"].startswith("topic:")
        ws.send(json.dumps({"type": "subscribe", "topic": "run"}))
        assert receive(ws)["detail"] == "id: required for topic run"
    finally:
        ws.close()


def test_only_what_the_caller_may_read(server, make_user, admin):
    _, owner = make_user("developer")
    name = unique("ws-private-")
    owner.post("/api/v1/workflows", json={"name": name, "tasks": [{"id": "a", "sleep": "1h"}]})
    run = owner.post("/api/v1/runs", json={"workflow": name}).json()
    # An agent-role key sees only its own agent's work: another's run is "not found".
    agent_type = unique("t")
    assert admin.post("/api/v1/agent-types", json={"name": agent_type}).status_code == 201
    r = owner.post("/api/v1/agents", json={"name": unique("a"), "type": agent_type})
    assert r.status_code == 201, r.text
    agent = r.json()
    r = owner.post("/api/v1/api-keys", json={"name": "agent", "role": "agent",
                                             "agent_id": agent["id"]})
    assert r.status_code == 201, r.text
    key = r.json()
    ws = connect(server, headers={"X-API-Key": key["secret"]})
    try:
        ws.send(json.dumps({"type": "subscribe", "topic": "run", "id": run["id"]}))
        assert receive(ws)["code"] == "not_found"
        ws.send(json.dumps({"type": "subscribe", "topic": "runs"}))
        assert receive(ws)["type"] == "error"
        ws.send(json.dumps({"type": "subscribe", "topic": "run", "id": "nope"}))
        assert receive(ws)["code"] == "not_found"
    finally:
        ws.close()


def test_no_credentials_no_socket(server):
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(server)
    assert e.value.status_code == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(server, token="not-a-token")
    assert e.value.status_code == 401


def test_a_session_cookie_needs_this_servers_origin(server, make_user):
    user, _ = make_user("developer")
    password = "correct horse battery " + user["username"]
    r = server.client().post("/api/v1/auth/session",
                             json={"login": user["username"], "password": password})
    assert r.status_code in (200, 201), r.text
    cookie = "devcycle_session=" + r.cookies["devcycle_session"]
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(server, headers={"Cookie": cookie}, origin="https://evil.example")
    assert e.value.status_code == 403
    ws = connect(server, headers={"Cookie": cookie}, origin=f"http://127.0.0.1:{server.port}")
    try:
        ws.send(json.dumps({"type": "subscribe", "topic": "agents"}))
        assert receive(ws) == {"type": "subscribed", "topic": "agents"}
    finally:
        ws.close()


def test_agent_events(server, admin):
    token = admin.session.headers["Authorization"].split()[1]
    ws = connect(server, token)
    try:
        ws.send(json.dumps({"type": "subscribe", "topic": "agents"}))
        receive(ws)
        agent_type = unique("t")
        admin.post("/api/v1/agent-types", json={"name": agent_type})
        agent = admin.post("/api/v1/agents", json={"name": unique("a"), "type": agent_type}).json()
        m = receive(ws, lambda m: m["type"] == "event")
        assert m["topic"] == "agents" and m["event"]["kind"] == "agent.created"
        assert m["event"]["agent_id"] == agent["id"]
    finally:
        ws.close()


def test_a_slow_reader_loses_frames_and_is_told(tmp_path):
    import socket
    from conftest import Server
    s = Server("--ws-queue-limit", "5")
    try:
        admin = s.admin()
        token = s.login()["access_token"]
        # A small receive buffer, and no reading: the server's writes back up.
        ws = connect(s, token, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
        ws.send(json.dumps({"type": "subscribe", "topic": "runs"}))
        name = unique("ws-flood-")
        admin.post("/api/v1/workflows", json={"name": name, "tasks": [
            {"id": "a", "sleep": "10ms"}, {"id": "b", "sleep": "10ms", "depends_on": ["a"]}]})
        runs = [admin.post("/api/v1/runs", json={"workflow": name}).json()["id"]
                for _ in range(150)]
        for run_id in runs[-3:]:
            for _ in range(100):
                if admin.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded":
                    break
                import time
                time.sleep(0.05)
        dropped = 0
        ws.settimeout(5)
        try:
            while not dropped:
                m = json.loads(ws.recv())
                if m["type"] == "dropped":
                    dropped = m["count"]
        except websocket.WebSocketTimeoutException:
            pass
        assert dropped > 0, "a reader that fell behind was not told of the frames it lost"
        ws.close()
    finally:
        assert s.stop() == 0, s.log()
