"""Remote agents over the REST API: the reference worker
(examples/remote_worker/worker.py) takes tasks with a lease; a worker killed
mid-task loses its lease and another finishes the task; the SDLC example runs
end to end through the CLI with four such workers."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import BINARY, ROOT, unique

WORKER = ROOT / "examples/remote_worker/worker.py"
AGENTS = ROOT / "examples/sdlc/agents"


def remote_agent(admin, owner_client, agent_type, capability):
    r = owner_client.post("/api/v1/agents", json={"name": unique("remote-"), "type": agent_type,
                                                  "capacity": 1})
    assert r.status_code == 201, r.text
    agent = r.json()
    r = owner_client.post(f"/api/v1/agents/{agent['id']}/versions", json={
        "version": "1.0.0", "capabilities": [f"{capability}@1.0.0"], "executor": "remote"})
    assert r.status_code == 201, r.text
    owner_client.post(f"/api/v1/agents/{agent['id']}/deploy", json={"version": "1.0.0"})
    key = owner_client.post("/api/v1/api-keys", json={"name": "worker", "role": "agent",
                                                       "agent_id": agent["id"]}).json()
    return agent, key["secret"]


def start_worker(server, tmp_path, agent, key, command, lease_ms=2000):
    config = tmp_path / f"worker-{unique('w')}.toml"
    config.write_text("\n".join([
        f'server = "{server.url}"', f'agent_id = "{agent["id"]}"', 'api_key_env = "WORKER_KEY"',
        "command = " + json.dumps(command), f"lease_ms = {lease_ms}", "timeout_s = 60",
        "wait_ms = 2000"]) + "\n")
    log = open(tmp_path / f"{config.stem}.log", "w")
    return subprocess.Popen([sys.executable, str(WORKER), str(config)], stdout=log, stderr=log,
                            env={"WORKER_KEY": key, "PATH": os.environ["PATH"]})


def wait_for(client, run_id, done, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        d = client.get(f"/api/v1/runs/{run_id}").json()
        if done(d):
            return d
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not get there: {d}")


def test_a_killed_worker_loses_its_lease_and_another_finishes(server, admin, make_user, tmp_path):
    _, dev = make_user("developer")
    agent_type = unique("remote-type-")
    assert admin.post("/api/v1/agent-types", json={"name": agent_type}).status_code == 201
    capability = unique("cap")
    agent, key = remote_agent(admin, dev, agent_type, capability)
    name = unique("remote-flow-")
    assert dev.post("/api/v1/workflows", json={"name": name, "tasks": [
        {"id": "work", "capability": capability, "input": {"requirements": "Users can log in"},
         "retry": {"max_attempts": 3, "initial": "100ms", "jitter": 0}}]}).status_code == 201
    run = dev.post("/api/v1/runs", json={"workflow": name}).json()

    # The first worker's program hangs; it is killed with kill -9 while it holds the task.
    slow = start_worker(server, tmp_path, agent, key,
                        [sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        d = wait_for(dev, run["id"], lambda d: d["tasks"][0]["status"] == "running")
        first = d["tasks"][0]
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
    finally:
        if slow.poll() is None:
            slow.kill()
    # A second worker, whose program works, takes the task once the lease ran out.
    fast = start_worker(server, tmp_path, agent, key,
                        ["/usr/bin/python3", str(AGENTS / "analyze.py")])
    try:
        d = wait_for(dev, run["id"], lambda d: d["status"] in ("succeeded", "failed"))
    finally:
        fast.send_signal(signal.SIGTERM)
        assert fast.wait(30) == 0
    assert d["status"] == "succeeded", d
    task = d["tasks"][0]
    assert task["attempt"] == 2 and task["agent_id"] == agent["id"]
    assert [a["status"] for a in task["attempts"]] == ["timed_out", "succeeded"]
    assert [f["name"] for f in task["output"]["features"]] == ["users_can_log_in"]
    # The workers said they were alive: the agent is known online.
    assert dev.get(f"/api/v1/agents/{agent['id']}").json()["last_heartbeat"] is not None

    # The killed worker's attempt is fenced off; only the agent's own key acts for it.
    agent_client = server.client(api_key=key)
    r = agent_client.post(f"/api/v1/tasks/{first['id']}/complete",
                          json={"attempt": 1, "lease_owner": "remote:" + agent["id"], "output": {}})
    assert r.status_code == 409 and "no longer holds its lease" in r.json()["detail"]
    _, stranger = make_user("developer")
    r = stranger.post(f"/api/v1/agents/{agent['id']}/claims", json={"max": 1})
    assert r.status_code == 403
    r = agent_client.post(f"/api/v1/agents/{agent['id']}/claims", json={"max": 0})
    assert r.status_code == 400
    r = agent_client.post(f"/api/v1/agents/{agent['id']}/claims", json={"wait_ms": 200})
    assert r.status_code == 200 and r.json()["items"] == []


def test_the_sdlc_example_through_the_cli_with_remote_workers(server, admin, tmp_path):
    agent_type = unique("sdlc-remote-")
    assert admin.post("/api/v1/agent-types", json={"name": agent_type}).status_code == 201
    # The example's workflow, with capability names of this test only.
    suffix = unique("")
    definition = json.loads((ROOT / "examples/workflows/sdlc.json").read_text())
    definition["name"] = "sdlc" + suffix
    workers = []
    try:
        for task in definition["tasks"]:
            task["capability"] += suffix
            script = {"analyze": "analyze", "generate": "codegen", "test": "test",
                      "deploy": "deploy"}[task["id"]]
            agent, key = remote_agent(admin, admin, agent_type, task["capability"])
            workers.append(start_worker(server, tmp_path, agent, key,
                                        ["/usr/bin/python3", str(AGENTS / f"{script}.py")],
                                        lease_ms=30000))
        path = tmp_path / "sdlc.json"
        path.write_text(json.dumps(definition))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCYCLE_")}
        env.update(DEVCYCLE_SERVER=server.url, DEVCYCLE_TOKEN=server.login()["access_token"],
                   NO_COLOR="1")
        r = subprocess.run([BINARY, "workflows", "apply", "-f", str(path)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([BINARY, "runs", "start", definition["name"], "--watch",
                            "--interval-ms", "100", "--input",
                            json.dumps({"requirements": "Users can sign up\nUsers can log in"})],
                           env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "deploy  succeeded" in r.stdout and r.stdout.splitlines()[-1].endswith("succeeded")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            assert w.wait(30) == 0
