"""The reference remote worker: takes the tasks of one DevCycle agent over the
server's REST API and runs each as the program named in this worker's own
configuration. Task input reaches the program on stdin only (JSON), never on
its command line; its stdout (JSON) is the output, each stderr line a task
log line. Standard library only.

    DEVCYCLE_API_KEY=dck_... python3 examples/remote_worker/worker.py worker.toml

worker.toml:

    server = "http://127.0.0.1:8080"
    agent_id = "<the agent's id>"          # its deployed version's executor is "remote"
    api_key_env = "DEVCYCLE_API_KEY"       # where the agent's API key is read from
    command = ["/usr/bin/python3", "/opt/agents/codegen.py"]
    lease_ms = 30000                       # extended every third of it while the program runs
    timeout_s = 300                        # the program is killed after this
    wait_ms = 20000                        # long-poll for tasks
    heartbeat_s = 10                       # how often it tells the registry it is alive

SIGTERM or SIGINT: the task in hand finishes, then the worker exits 0.
Exit codes: 64 a bad configuration, 69 the server cannot be reached at start.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request

stopping = threading.Event()


def log(message):
    print(f"worker: {message}", file=sys.stderr, flush=True)


class Api:
    def __init__(self, server, key):
        self.server = server.rstrip("/")
        self.key = key

    def post(self, path, body, timeout=60):
        req = urllib.request.Request(self.server + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Authorization": f"Bearer {self.key}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, {"detail": text.decode(errors="replace")}


def run_task(api, config, task):
    fence = {"attempt": task["attempt"], "lease_owner": task["lease_owner"]}
    tid = task["task_id"]
    lost = threading.Event()
    with tempfile.TemporaryDirectory(prefix="devcycle-remote-") as work:
        env = {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(config["command"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=work, env=env, start_new_session=True)

        def extend():
            period = config["lease_ms"] / 3000
            while proc.poll() is None and not lost.is_set():
                if lost.wait(period) or proc.poll() is not None:
                    return
                status, _ = api.post(f"/api/v1/tasks/{tid}/lease",
                                     dict(fence, lease_ms=config["lease_ms"]))
                if status == 409:
                    lost.set()  # someone else has it now: stop
                    os.killpg(proc.pid, signal.SIGKILL)

        def forward_logs():
            for line in proc.stderr:
                api.post(f"/api/v1/tasks/{tid}/logs",
                         dict(fence, message=line.decode(errors="replace").rstrip("\n")))

        threads = [threading.Thread(target=extend, daemon=True),
                   threading.Thread(target=forward_logs, daemon=True)]
        for t in threads:
            t.start()
        try:
            out, _ = proc.communicate(json.dumps(task["input"]).encode(),
                                      timeout=config["timeout_s"])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            out = None
        lost_lease = lost.is_set()
        lost.set()
        threads[1].join(5)
        if lost_lease:
            log(f"task {task['task_key']} attempt {task['attempt']}: lease lost, dropped")
            return
        if out is None:
            body, verb = dict(fence, error=f"killed after {config['timeout_s']} s"), "fail"
        elif proc.returncode != 0:
            body, verb = dict(fence, error=f"exited with status {proc.returncode}"), "fail"
        else:
            try:
                body, verb = dict(fence, output=json.loads(out or b"null")), "complete"
            except ValueError:
                body, verb = dict(fence, error="the output is not JSON", retryable=False), "fail"
        status, answer = api.post(f"/api/v1/tasks/{tid}/{verb}", body)
        if status == 409:
            log(f"task {task['task_key']}: {answer.get('detail')}")
        elif status != 200:
            log(f"task {task['task_key']}: {verb} answered {status}: {answer}")
        else:
            log(f"task {task['task_key']} attempt {task['attempt']}: {verb}d")


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 64
    try:
        with open(sys.argv[1], "rb") as f:
            config = tomllib.load(f)
        for field in ("server", "agent_id", "command"):
            if field not in config:
                raise ValueError(f"{field}: missing")
        if not isinstance(config["command"], list) or not config["command"]:
            raise ValueError("command: must be a non-empty list (program and arguments)")
        key = os.environ.get(config.get("api_key_env", "DEVCYCLE_API_KEY"), "")
        if not key:
            raise ValueError(f"api key: set {config.get('api_key_env', 'DEVCYCLE_API_KEY')}")
    except (OSError, ValueError, tomllib.TOMLDecodeError) as e:
        print(f"worker: configuration: {e}", file=sys.stderr)
        return 64
    config.setdefault("lease_ms", 30000)
    config.setdefault("timeout_s", 300)
    config.setdefault("wait_ms", 20000)
    api = Api(config["server"], key)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    log(f"taking tasks of agent {config['agent_id']} from {config['server']}")
    busy = threading.Event()

    def heartbeat():
        # The registry shows the agent online (busy while it works) as long as it beats.
        while not stopping.wait(config.get("heartbeat_s", 10)):
            try:
                api.post(f"/api/v1/agents/{config['agent_id']}/heartbeat",
                         {"load": 1 if busy.is_set() else 0}, timeout=10)
            except OSError:
                pass

    try:
        api.post(f"/api/v1/agents/{config['agent_id']}/heartbeat", {"load": 0}, timeout=10)
    except OSError as e:
        log(f"cannot reach the server: {e}")
        return 69
    threading.Thread(target=heartbeat, daemon=True).start()
    failures = 0
    while not stopping.is_set():
        try:
            status, answer = api.post(f"/api/v1/agents/{config['agent_id']}/claims",
                                      {"max": 1, "lease_ms": config["lease_ms"],
                                       "wait_ms": config["wait_ms"]},
                                      timeout=config["wait_ms"] / 1000 + 30)
        except OSError as e:
            failures += 1
            if failures == 1:
                log(f"cannot reach the server: {e}")
            time.sleep(min(5, 0.2 * failures))
            continue
        failures = 0
        if status != 200:
            log(f"claim answered {status}: {answer}")
            if status in (401, 403, 404):
                return 77
            time.sleep(1)
            continue
        for task in answer["items"]:
            busy.set()
            run_task(api, config, task)
            busy.clear()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
