"""Secrets over HTTP: a value goes in and never comes out."""

from conftest import field_errors, problem, unique

VALUE = "s3cr3t-deploy-token-e2e-0123456789"


def test_secret_values_never_come_back(server, admin, make_user):
    seen = []
    name = "DEPLOY_" + unique("T").upper()
    created = admin.request("PUT", f"/api/v1/secrets/{name}", json={"value": VALUE})
    seen.append(created)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and "value" not in created.json()
    again = admin.request("PUT", f"/api/v1/secrets/{name}", json={"value": VALUE + "-2"})
    seen.append(again)
    assert again.status_code == 200 and again.json()["version"] == 2
    seen.append(admin.get("/api/v1/secrets"))
    assert name in [s["name"] for s in seen[-1].json()["items"]]
    seen.append(admin.get(f"/api/v1/secrets/{name}"))
    seen.append(admin.get("/api/v1/audit", params={"action": "secret.", "limit": 1000}))
    actions = [e["action"] for e in seen[-1].json()["items"] if e["target"] == f"secret:{name}"]
    assert actions == ["secret.updated", "secret.created"]

    # Others read names; only the owner (or an admin) changes them; viewers nothing.
    _, dev = make_user("developer")
    seen.append(dev.get(f"/api/v1/secrets/{name}"))
    assert seen[-1].status_code == 200
    seen.append(dev.request("PUT", f"/api/v1/secrets/{name}", json={"value": "hijack"}))
    problem(seen[-1], 403)
    seen.append(dev.delete(f"/api/v1/secrets/{name}"))
    problem(seen[-1], 403)
    _, viewer = make_user("viewer")
    seen.append(viewer.request("PUT", f"/api/v1/secrets/{unique('V')}", json={"value": "x" * 8}))
    problem(seen[-1], 403)

    # Bad input names the field, never the value.
    bad = admin.request("PUT", "/api/v1/secrets/not-a-name", json={"value": VALUE})
    seen.append(bad)
    assert "name" in problem(bad, 400)["detail"]
    bad = admin.request("PUT", f"/api/v1/secrets/{name}", json={"value": 5})
    seen.append(bad)
    assert "value" in field_errors(problem(bad, 400))
    bad = admin.request("PUT", f"/api/v1/secrets/{name}", json={"value": VALUE, "note": VALUE})
    seen.append(bad)
    problem(bad, 400)

    for r in seen:
        assert VALUE not in r.text, (r.request.method, r.request.url, r.text)
    assert VALUE not in server.log()

    assert admin.delete(f"/api/v1/secrets/{name}").status_code == 204
    problem(admin.get(f"/api/v1/secrets/{name}"), 404)


def test_a_workflow_reads_a_secret_as_a_marker(server, admin):
    name = "API_" + unique("K").upper()
    admin.request("PUT", f"/api/v1/secrets/{name}", json={"value": VALUE})
    wf = unique("uses-secret-")
    r = admin.post("/api/v1/workflows", json={"name": wf, "tasks": [
        {"id": "call", "capability": "nobody-yet",
         "input": {"authorization": "Bearer {{ secrets.%s }}" % name}}]})
    assert r.status_code == 201, r.text
    run = admin.post("/api/v1/runs", json={"workflow": wf}).json()
    detail = admin.get(f"/api/v1/runs/{run['id']}")
    task = detail.json()["tasks"][0]
    assert task["input"]["authorization"].startswith(f"Bearer [secret:{name}:")
    assert VALUE not in detail.text
    body = problem(admin.post("/api/v1/workflows", json={"name": unique("bad-"), "tasks": [
        {"id": "t", "capability": "c", "when": "secrets.%s == 'x'" % name}]}), 400)
    assert "secrets may be read only in a task's input" in body["detail"]
