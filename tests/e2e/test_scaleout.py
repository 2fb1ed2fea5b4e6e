"""Two `devcycle serve` instances on one PostgreSQL database and one Redis
(ctest label `integration`, which starts both with scripts/postgres.sh and
scripts/redis.sh): whatever one instance does, the other sees — users,
tokens and their revocation, workflows, runs."""

import os

import pytest

from conftest import Server, unique

PG = os.environ.get("DEVCYCLE_TEST_POSTGRES_URL")
REDIS = os.environ.get("DEVCYCLE_TEST_REDIS_URL")


@pytest.fixture(scope="module")
def pair():
    assert PG and REDIS, "DEVCYCLE_TEST_POSTGRES_URL and DEVCYCLE_TEST_REDIS_URL must be set"
    schema = f"e2e_scaleout_{os.getpid()}"
    database = f"{PG}?schema={schema}"
    cache = f"{REDIS}?prefix={schema}:"
    a = Server("--cache", cache, database=database)
    # The same database and master key; the admin exists already.
    b = Server("--cache", cache, database=database, master_key_file=a.master_key_file,
               first_start=False)
    b.admin_password = a.admin_password
    yield a, b
    assert b.stop() == 0, b.log()
    assert a.stop() == 0, a.log()


def test_a_token_from_one_instance_works_on_the_other_until_logout(pair):
    a, b = pair
    tokens = a.login()
    on_b = b.client(token=tokens["access_token"])
    assert on_b.get("/api/v1/auth/me").json()["username"] == "admin"
    # Logout on A revokes the token (the revocation list is in Redis) ...
    logout = a.client(token=tokens["access_token"]).post(
        "/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert logout.status_code == 204
    # ... so B refuses it at once.
    assert on_b.get("/api/v1/auth/me", validate=False).status_code == 401


def test_workflows_and_runs_are_shared(pair):
    a, b = pair
    on_a, on_b = a.admin(), b.admin()
    name = unique("shared-")
    created = on_a.post("/api/v1/workflows", json={
        "name": name, "tasks": [{"id": "build", "capability": "nobody-runs-this"}]})
    assert created.status_code == 201, created.text
    assert on_b.get(f"/api/v1/workflows/{name}").json()["version"] == 1
    run = on_b.post("/api/v1/runs", json={"workflow": name, "input": {}})
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    assert on_a.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    cancelled = on_a.post(f"/api/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert on_b.get(f"/api/v1/runs/{run_id}").json()["status"] == "cancelled"


def test_a_user_made_on_one_instance_logs_in_on_the_other(pair):
    a, b = pair
    name = unique("shared-user-")
    r = a.admin().post("/api/v1/users", json={
        "email": f"{name}@example.com", "username": name, "password": "tolerable mule 9",
        "role": "viewer"})
    assert r.status_code == 201, r.text
    login = b.client().post("/api/v1/auth/login",
                            json={"login": name, "password": "tolerable mule 9"})
    assert login.status_code == 200, login.text
