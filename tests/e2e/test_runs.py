"""Workflows, runs and tasks."""

import pytest

from conftest import field_errors, problem, unique


def definition(name):
    return {"name": name, "description": "build then test",
            "input_schema": {"type": "object", "properties": {"ref": {"type": "string"}},
                             "required": ["ref"]},
            "tasks": [{"id": "build", "capability": "build", "input": {"ref": "{{ input.ref }}"}},
                      {"id": "test", "capability": "test", "depends_on": ["build"]}]}


@pytest.fixture(scope="module")
def workflow(make_user):
    user, dev = make_user("developer")
    name = unique("pipeline-")
    r = dev.post("/api/v1/workflows", json=definition(name))
    assert r.status_code == 201, r.text
    return name, user, dev


def test_workflow_versions(workflow, make_user):
    name, _, dev = workflow
    stored = dev.get(f"/api/v1/workflows/{name}").json()
    assert stored["version"] == 1 and stored["definition"]["tasks"][0]["id"] == "build"
    # The same definition again is the same version; a change is the next one.
    assert dev.post("/api/v1/workflows", json=definition(name)).json()["version"] == 1
    changed = definition(name)
    changed["description"] = "changed"
    assert dev.post("/api/v1/workflows", json=changed).json()["version"] == 2
    assert [w["version"] for w in dev.get(f"/api/v1/workflows/{name}/versions").json()["items"]] == [2, 1]
    assert dev.get(f"/api/v1/workflows/{name}", params={"version": 1}).json()["definition"]["description"] == "build then test"
    assert name in [w["name"] for w in dev.get("/api/v1/workflows").json()["items"]]
    problem(dev.get("/api/v1/workflows/no-such-workflow"), 404)
    problem(dev.get("/api/v1/workflows/no-such-workflow/versions"), 404)
    # Someone else's workflow: readable, but no new versions by others.
    _, other = make_user("developer")
    problem(other.post("/api/v1/workflows", json=changed | {"description": "hijack"}), 403)


def test_invalid_workflows_report_every_problem(workflow):
    _, _, dev = workflow
    bad = {"name": "Bad Name", "tasks": [{"id": "a", "capability": "x", "depends_on": ["nope"]}]}
    body = problem(dev.post("/api/v1/workflows", json=bad), 400)
    assert "nope" in body["detail"] and "name" in body["detail"]
    report = dev.post("/api/v1/workflows/validate", json=bad).json()
    assert report["valid"] is False
    paths = [p["path"] for p in report["problems"] if p["severity"] == "error"]
    assert "$.name" in paths and any("depends_on" in p for p in paths)
    ok = dev.post("/api/v1/workflows/validate", json=definition(unique("fine-"))).json()
    assert ok["valid"] is True


def test_runs(workflow, make_user):
    name, user, dev = workflow
    r = dev.post("/api/v1/runs", json={"workflow": name, "input": {"ref": "main"},
                                       "labels": {"env": "ci"}},
                 headers={"Idempotency-Key": "build-42"})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["owner"] == user["id"] and run["workflow_version"] >= 1
    again = dev.post("/api/v1/runs", json={"workflow": name, "input": {"ref": "main"}},
                     headers={"Idempotency-Key": "build-42"})
    assert again.json()["id"] == run["id"]

    body = problem(dev.post("/api/v1/runs", json={"workflow": name, "input": {"ref": 5}}), 400)
    assert "input" in body["detail"]
    body = problem(dev.post("/api/v1/runs", json={"workflow": name, "input": "main"}), 400)
    assert field_errors(body)["input"].startswith("must be an object")
    problem(dev.post("/api/v1/runs", json={"workflow": "no-such-workflow"}), 404)

    detail = dev.get(f"/api/v1/runs/{run['id']}").json()
    assert [t["key"] for t in detail["tasks"]] == ["build", "test"]
    build = detail["tasks"][0]
    assert build["input"] == {"ref": "main"} and build["status"] == "ready"
    task = dev.get(f"/api/v1/tasks/{build['id']}").json()
    assert task["id"] == build["id"] and task["run_id"] == run["id"]
    assert dev.get(f"/api/v1/tasks/{build['id']}/logs").json() == {"items": [], "next_page_token": None}
    problem(dev.get(f"/api/v1/tasks/{build['id']}/logs", params={"limit": "lots"}), 400)

    listed = dev.get("/api/v1/runs", params={"workflow": name, "label": "env:ci",
                                             "created_after": "2020-01-01T00:00:00Z"}).json()
    assert [x["id"] for x in listed["items"]] == [run["id"]]
    assert dev.get("/api/v1/runs", params={"workflow": name, "status": "succeeded"}).json()["items"] == []
    body = problem(dev.get("/api/v1/runs", params={"created_after": "yesterday"}), 400)
    assert "query.created_after" in field_errors(body)

    # Others read it but may not cancel it.
    _, other = make_user("developer")
    assert other.get(f"/api/v1/runs/{run['id']}").status_code == 200
    problem(other.post(f"/api/v1/runs/{run['id']}/cancel"), 403)
    _, viewer = make_user("viewer")
    problem(viewer.post("/api/v1/runs", json={"workflow": name, "input": {"ref": "x"}}), 403)

    cancelled = dev.post(f"/api/v1/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    retried = dev.post(f"/api/v1/runs/{run['id']}/retry")
    assert retried.status_code == 200 and retried.json()["status"] in ("pending", "running")
    task = dev.post(f"/api/v1/tasks/{build['id']}/cancel")
    assert task.status_code == 200 and task.json()["status"] == "cancelled"
    assert dev.get(f"/api/v1/runs/{run['id']}").json()["status"] == "failed"
    problem(dev.post(f"/api/v1/runs/{run['id']}/cancel"), 400)
    problem(dev.get("/api/v1/runs/00000000-0000-0000-0000-000000000000"), 404)
    problem(dev.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000"), 404)


def test_pause_and_resume(workflow, make_user):
    name, _, dev = workflow
    run = dev.post("/api/v1/runs", json={"workflow": name, "input": {"ref": "x"}}).json()
    paused = dev.post(f"/api/v1/runs/{run['id']}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    detail = dev.get(f"/api/v1/runs/{run['id']}").json()
    assert [t["status"] for t in detail["tasks"]] == ["pending", "pending"]
    _, other = make_user("developer")
    problem(other.post(f"/api/v1/runs/{run['id']}/resume"), 403)
    resumed = dev.post(f"/api/v1/runs/{run['id']}/resume")
    assert resumed.json()["status"] == "running"
    assert dev.get(f"/api/v1/runs/{run['id']}").json()["tasks"][0]["status"] == "ready"
    problem(dev.post(f"/api/v1/runs/{run['id']}/resume", params={"x": 1}), 400)
    dev.post(f"/api/v1/runs/{run['id']}/cancel")
    problem(dev.post(f"/api/v1/runs/{run['id']}/pause"), 400)


def test_approval_by_signal(make_user):
    user, dev = make_user("developer")
    name = unique("approved-")
    r = dev.post("/api/v1/workflows", json={"name": name, "tasks": [
        {"id": "wait", "sleep": "1h"},
        {"id": "approve", "signal": "approval", "timeouts": {"start_to_close": "24h"}}]})
    assert r.status_code == 201, r.text
    assert r.json()["definition"]["tasks"][1]["signal"] == "approval"
    run = dev.post("/api/v1/runs", json={"workflow": name}).json()
    detail = dev.get(f"/api/v1/runs/{run['id']}").json()
    assert {t["key"]: t["status"] for t in detail["tasks"]} == {"wait": "waiting", "approve": "waiting"}
    sent = dev.post(f"/api/v1/runs/{run['id']}/signals/approval",
                    json={"payload": {"approved": True, "by": user["username"]}})
    assert sent.json() == {"signal": "approval", "delivered": True}
    detail = dev.get(f"/api/v1/runs/{run['id']}").json()
    approve = next(t for t in detail["tasks"] if t["key"] == "approve")
    assert approve["status"] == "succeeded" and approve["output"]["approved"] is True
    kept = dev.post(f"/api/v1/runs/{run['id']}/signals/other")
    assert kept.json() == {"signal": "other", "delivered": False}
    problem(dev.post(f"/api/v1/runs/{run['id']}/signals/Not%20A%20Name"), 400)
    _, other = make_user("developer")
    problem(other.post(f"/api/v1/runs/{run['id']}/signals/approval"), 403)


def test_child_workflows_and_concurrency_limits(make_user):
    user, dev = make_user("developer")
    child, parent = unique("gate-"), unique("release-")
    assert dev.post("/api/v1/workflows", json={
        "name": child, "concurrency": {"limit": 1, "key": "{{ input.env }}", "strategy": "queue"},
        "tasks": [{"id": "ok", "signal": "ok"}]}).status_code == 201
    r = dev.post("/api/v1/workflows", json={"name": parent, "tasks": [
        {"id": "gate", "workflow": child, "input": {"env": "{{ input.env }}"}}]})
    assert r.status_code == 201, r.text
    stored = r.json()["definition"]["tasks"][0]
    assert stored["workflow"] == child and "workflow_version" not in stored

    first = dev.post("/api/v1/runs", json={"workflow": parent, "input": {"env": "prod"}}).json()
    gate = dev.get(f"/api/v1/runs/{first['id']}").json()["tasks"][0]
    assert gate["status"] == "waiting" and gate["child_run_id"]
    child_run = dev.get(f"/api/v1/runs/{gate['child_run_id']}").json()
    assert child_run["parent_run_id"] == first["id"] and child_run["parent_task_id"] == gate["id"]
    assert child_run["concurrency_key"] == "prod" and child_run["status"] == "running"
    assert child_run["owner"] == user["id"]

    # A second child for "prod" queues behind the first.
    second = dev.post("/api/v1/runs", json={"workflow": parent, "input": {"env": "prod"}}).json()
    queued_id = dev.get(f"/api/v1/runs/{second['id']}").json()["tasks"][0]["child_run_id"]
    queued = dev.get(f"/api/v1/runs/{queued_id}").json()
    assert queued["status"] == "pending" and queued["tasks"] == []
    pending = dev.get("/api/v1/runs", params={"workflow": child, "status": "pending"}).json()
    assert [r["id"] for r in pending["items"]] == [queued_id]

    # The first child's signal finishes it and its parent; the queued one starts.
    dev.post(f"/api/v1/runs/{child_run['id']}/signals/ok", json={"payload": {"shipped": True}})
    done = dev.get(f"/api/v1/runs/{first['id']}").json()
    assert done["status"] == "succeeded"
    assert done["tasks"][0]["output"] == {"ok": {"shipped": True}}
    assert dev.get(f"/api/v1/runs/{queued_id}").json()["status"] == "running"

    # Cancelling the parent cancels its child.
    dev.post(f"/api/v1/runs/{second['id']}/cancel")
    assert dev.get(f"/api/v1/runs/{queued_id}").json()["status"] == "cancelled"

    # A bad limit is refused naming the field.
    body = problem(dev.post("/api/v1/workflows", json={
        "name": unique("bad-"), "concurrency": {"limit": 0}, "tasks": [{"id": "a", "sleep": "1s"}]}), 400)
    assert "$.concurrency.limit" in body["detail"]
