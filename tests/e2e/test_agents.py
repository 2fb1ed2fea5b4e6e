"""Agent types, agents, versions, deployment, heartbeats, selection."""

import pytest

from conftest import field_errors, problem, unique


@pytest.fixture(scope="module")
def agent_type(admin):
    name = unique("codegen-type-")
    r = admin.post("/api/v1/agent-types", json={
        "name": name, "description": "writes code",
        "config_schema": {"type": "object", "properties": {"model": {"type": "string"}},
                          "additionalProperties": False}})
    assert r.status_code == 201, r.text
    return name


def test_agent_types(admin, make_user, agent_type):
    assert agent_type in [t["name"] for t in admin.get("/api/v1/agent-types").json()["items"]]
    assert admin.get(f"/api/v1/agent-types/{agent_type}").json()["config_schema"]["type"] == "object"
    _, dev = make_user("developer")
    problem(dev.post("/api/v1/agent-types", json={"name": unique("t")}), 403)
    problem(admin.post("/api/v1/agent-types", json={"name": agent_type}), 409)
    problem(admin.get("/api/v1/agent-types/no-such-type"), 404)


def test_agent_lifecycle(admin, make_user, agent_type):
    dev_user, dev = make_user("developer")
    name = unique("coder-")
    r = dev.post("/api/v1/agents", json={"name": name, "type": agent_type, "capacity": 2,
                                         "configuration": {"model": "m1"}, "labels": {"team": "a"}})
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["owner"] == dev_user["id"] and agent["status"] == "offline"

    # Configuration is checked against the type's schema; errors name the field.
    body = problem(dev.post("/api/v1/agents", json={"name": unique("bad"), "type": agent_type,
                                                    "configuration": {"model": 5}}), 400)
    assert "configuration" in body["detail"]
    body = problem(dev.post("/api/v1/agents", json={"name": "x", "type": agent_type, "capacity": "2"}), 400)
    assert field_errors(body)["capacity"].startswith("must be an integer")

    aid = agent["id"]
    v = dev.post(f"/api/v1/agents/{aid}/versions", json={
        "version": "1.0.0", "capabilities": [f"{name}-cap@1.0.0"], "executor": "bus:"})
    assert v.status_code == 201, v.text
    problem(dev.post(f"/api/v1/agents/{aid}/versions", json={"version": "1.0.0"}), 409)
    # Running a process on the host is an admin's decision.
    problem(dev.post(f"/api/v1/agents/{aid}/versions",
                     json={"version": "2.0.0", "executor": "process:/bin/true"}), 403)

    d = dev.post(f"/api/v1/agents/{aid}/deploy", json={"version": "1.0.0"})
    assert d.status_code == 200 and d.json()["action"] == "deploy"
    hb = dev.post(f"/api/v1/agents/{aid}/heartbeat", json={"load": 1})
    assert hb.json()["status"] == "online"
    picked = dev.get(f"/api/v1/capabilities/{name}-cap/agents", params={"range": "^1.0"}).json()
    assert [a["id"] for a in picked["items"]] == [aid]
    assert picked["items"][0]["capability"] == f"{name}-cap@1.0.0"
    assert dev.get(f"/api/v1/agents/{aid}/compatibility").json() == {"compatible": True, "problems": []}

    listed = dev.get("/api/v1/agents", params={"label": "team:a", "owner": dev_user["id"]}).json()
    assert [a["id"] for a in listed["items"]] == [aid]
    problem(dev.get("/api/v1/agents", params={"status": "sleepy"}), 400)

    patched = dev.patch(f"/api/v1/agents/{aid}", json={"description": "now documented",
                                                       "expected_revision": agent["revision"] + 99})
    problem(patched, 409)
    patched = dev.patch(f"/api/v1/agents/{aid}", json={"description": "now documented"})
    assert patched.json()["description"] == "now documented"
    # The list is cached for a moment, but a change made here shows at once:
    # the same query again sees the new description, then the next heartbeat.
    mine = {"owner": dev_user["id"], "label": "team:a"}
    assert dev.get("/api/v1/agents", params=mine).json()["items"][0]["description"] == "now documented"
    beat = dev.post(f"/api/v1/agents/{aid}/heartbeat", json={"load": 2}).json()
    assert dev.get("/api/v1/agents", params=mine).json()["items"][0]["last_heartbeat"] == beat["last_heartbeat"]

    # Others read it but may not change it; viewers change nothing.
    _, other = make_user("developer")
    assert other.get(f"/api/v1/agents/{aid}").status_code == 200
    problem(other.patch(f"/api/v1/agents/{aid}", json={"capacity": 3}), 403)
    problem(other.delete(f"/api/v1/agents/{aid}"), 403)
    _, viewer = make_user("viewer")
    problem(viewer.post("/api/v1/agents", json={"name": unique("v"), "type": agent_type}), 403)

    assert len(dev.get(f"/api/v1/agents/{aid}/deployments").json()["items"]) == 1
    dev.post(f"/api/v1/agents/{aid}/versions", json={"version": "1.1.0", "executor": "bus:"})
    dev.post(f"/api/v1/agents/{aid}/deploy", json={"version": "1.1.0"})
    rb = dev.post(f"/api/v1/agents/{aid}/rollback")
    assert rb.status_code == 200 and rb.json()["version"] == "1.0.0"
    assert [x["version"] for x in dev.get(f"/api/v1/agents/{aid}/versions").json()["items"]] == [
        "1.1.0", "1.0.0"]
    assert dev.get(f"/api/v1/agents/{aid}/versions/1.1.0").json()["executor"] == "bus:"

    assert dev.delete(f"/api/v1/agents/{aid}").status_code == 204
    problem(dev.get(f"/api/v1/agents/{aid}"), 404)


def test_agent_key_sees_only_its_agent(server, admin, agent_type):
    agent = admin.post("/api/v1/agents", json={"name": unique("worker-"), "type": agent_type}).json()
    other = admin.post("/api/v1/agents", json={"name": unique("worker-"), "type": agent_type}).json()
    key = admin.post("/api/v1/api-keys", json={"name": "worker", "role": "agent",
                                               "agent_id": agent["id"],
                                               "capabilities": ["build"]}).json()
    c = server.client(api_key=key["secret"])
    assert [a["id"] for a in c.get("/api/v1/agents").json()["items"]] == [agent["id"]]
    assert c.post(f"/api/v1/agents/{agent['id']}/heartbeat").json()["status"] == "online"
    problem(c.get(f"/api/v1/agents/{other['id']}"), 404)
    problem(c.patch(f"/api/v1/agents/{agent['id']}", json={"capacity": 5}), 403)
