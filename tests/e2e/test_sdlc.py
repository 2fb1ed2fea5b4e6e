"""The SDLC example end to end: four process agents (Python programs) run
analyze -> generate -> test -> deploy through the real server."""

import os
import subprocess

from conftest import BINARY, ROOT, Server


def test_sdlc_example_runs_to_a_release():
    s = Server("--config", str(ROOT / "examples/devcycle.toml"))
    try:
        env = dict(os.environ, DEVCYCLE_SERVER=s.url, DEVCYCLE_PASSWORD=s.admin_password)
        r = subprocess.run(["bash", str(ROOT / "examples/sdlc/run.sh")], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr + s.log()
        assert "deploy: succeeded" in r.stdout and '"release": "r-' in r.stdout
        run_id = next(l.split()[1] for l in r.stdout.splitlines() if l.startswith("run ") and
                      l.endswith(" started"))
        admin = s.admin()
        detail = admin.get(f"/api/v1/runs/{run_id}").json()
        tasks = {t["key"]: t for t in detail["tasks"]}
        assert [f["name"] for f in tasks["analyze"]["output"]["features"]] == [
            "users_can_sign_up", "users_can_log_in", "admins_can_list_users"]
        assert tasks["test"]["output"] == {"passed": 3, "failed": 0, "failures": []}
        assert tasks["deploy"]["output"]["environment"] == "staging"
        # stderr lines became the task log.
        logs = admin.get(f"/api/v1/tasks/{tasks['deploy']['id']}/logs").json()["items"]
        messages = [l["message"] for l in logs]
        assert any(m.startswith("deployed r-") for m in messages), messages
        assert messages[-1].startswith("artifact release.json")
        # The CLI prints the same lines (-f returns at once: the task has ended).
        cli_env = dict(env, DEVCYCLE_TOKEN=s.login()["access_token"], NO_COLOR="1")
        out = subprocess.run([BINARY, "logs", tasks["deploy"]["id"], "-f"], env=cli_env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "info  #1  deployed r-" in out.stdout, out.stdout
        out = subprocess.run([BINARY, "runs", "watch", run_id], env=cli_env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.splitlines()[-1] == f"run {run_id} succeeded"

        # The deploy step left its release bundle as an artifact.
        artifacts = admin.get(f"/api/v1/runs/{run_id}/artifacts").json()["items"]
        assert [(a["task_key"], a["name"]) for a in artifacts] == [("deploy", "release.json")]
        bundle = admin.get(f"/api/v1/runs/{run_id}/artifacts/{artifacts[0]['id']}")
        assert bundle.status_code == 200
        assert bundle.headers["Content-Disposition"] == 'attachment; filename="release.json"'
        import hashlib
        import json
        assert "sha256:" + hashlib.sha256(bundle.content).hexdigest() == artifacts[0]["digest"]
        assert json.loads(bundle.content)["release"] == tasks["deploy"]["output"]["release"]

        # Only an admin may give an agent a program to run.
        dev_name = "sdlc-dev"
        admin.post("/api/v1/users", json={"email": "sdlc-dev@example.com", "username": dev_name,
                                          "password": "an sdlc developer passphrase",
                                          "role": "developer"})
        dev = s.client(token=s.login(dev_name, "an sdlc developer passphrase")["access_token"])
        agent = dev.post("/api/v1/agents", json={"name": "mine", "type": "sdlc-agent"}).json()
        r = dev.post(f"/api/v1/agents/{agent['id']}/versions",
                     json={"version": "1.0.0", "executor": 'process:["/usr/bin/python3", "-c", "1"]'})
        assert r.status_code == 403
    finally:
        assert s.stop() == 0, s.log()
