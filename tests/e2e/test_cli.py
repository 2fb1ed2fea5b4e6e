"""The `devcycle` CLI against a real server: output in both formats, exit codes,
the stored credentials."""

import json
import os
import stat
import subprocess

import pytest

from conftest import BINARY, unique


@pytest.fixture()
def cli(server, tmp_path):
    """Runs `devcycle ARGS...` with a config dir of its own; returns (exit code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCYCLE_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["DEVCYCLE_SERVER"] = server.url
    env["NO_COLOR"] = "1"

    def run(*args, stdin=None, extra_env=None):
        p = subprocess.run([BINARY, *args], input=stdin, capture_output=True, text=True,
                           env={**env, **(extra_env or {})}, timeout=60)
        return p.returncode, p.stdout, p.stderr

    run.config = tmp_path / "config" / "devcycle" / "credentials.json"
    return run


@pytest.fixture()
def logged_in(cli, make_user):
    user, _ = make_user("developer")
    password = "correct horse battery " + user["username"]
    code, out, err = cli("login", "--username", user["username"], "--password-stdin",
                         stdin=password + "\n")
    assert code == 0, err
    assert f"as {user['username']}" in out
    return cli, user


def test_login_stores_tokens_privately_and_logout_forgets_them(logged_in):
    cli, user = logged_in
    mode = stat.S_IMODE(os.stat(cli.config).st_mode)
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(os.stat(cli.config.parent).st_mode) == 0o700
    stored = json.loads(cli.config.read_text())
    assert stored["username"] == user["username"] and stored["access_token"]

    code, out, _ = cli("whoami", "-o", "json")
    assert code == 0 and json.loads(out)["username"] == user["username"]
    code, out, _ = cli("whoami")
    assert code == 0 and "role:" in out and "developer" in out

    assert cli("logout")[0] == 0
    assert not cli.config.exists()
    code, _, err = cli("whoami")
    assert code == 77 and "not logged in" in err


def test_bad_logins_and_usage_have_their_exit_codes(cli, server):
    code, _, err = cli("login", "--username", "admin", "--password-stdin", stdin="wrong\n")
    assert code == 77 and "HTTP 401" in err
    code, _, err = cli("login", "--username", "admin")  # no terminal, no password
    assert code == 64 and "password" in err
    assert cli("frobnicate")[0] == 64
    assert cli("runs")[0] == 64
    assert cli("runs", "ls", "-o", "yaml")[0] == 64
    code, _, err = cli("whoami", extra_env={"DEVCYCLE_SERVER": "http://127.0.0.1:1"})
    assert code == 77  # nobody logged in there
    code, _, err = cli("runs", "ls", extra_env={"DEVCYCLE_SERVER": "http://127.0.0.1:1",
                                                "DEVCYCLE_TOKEN": "x"})
    assert code == 69 and "cannot reach" in err
    code, _, err = cli("runs", "ls", extra_env={"DEVCYCLE_SERVER": "ftp://x"})
    assert code == 64 and "server" in err
    code, out, _ = cli("--help")
    assert code == 0 and "runs" in out and "serve" in out


def test_workflows_and_a_watched_run_end_to_end(logged_in, tmp_path):
    cli, user = logged_in
    name = unique("cli-flow-")
    definition = {"name": name, "tasks": [{"id": "nap", "sleep": "100ms"},
                                          {"id": "after", "sleep": "100ms", "depends_on": ["nap"]}]}
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(definition))
    code, out, _ = cli("workflows", "validate", "-f", str(path))
    assert code == 0 and out.strip().endswith("valid")
    code, out, _ = cli("workflows", "apply", "-f", str(path))
    assert code == 0 and out.strip() == f"workflow {name} version 1"
    code, out, _ = cli("workflows", "ls")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "VERSION", "UPDATED"]
    assert any(line.startswith(name) for line in out.splitlines())
    code, out, _ = cli("workflows", "get", name)
    assert code == 0 and json.loads(out)["tasks"][0]["id"] == "nap"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "Bad Name", "tasks": []}))
    code, out, _ = cli("workflows", "validate", "-f", str(bad))
    assert code == 65 and "error: $.name" in out
    code, _, err = cli("workflows", "apply", "-f", str(bad))
    assert code == 65 and "HTTP 400" in err
    assert cli("workflows", "apply", "-f", str(tmp_path / "missing.json"))[0] == 66

    # Start and follow it: each task's changes, then the outcome as the exit code.
    code, out, err = cli("runs", "start", name, "--label", "via=cli", "--watch",
                         "--interval-ms", "50")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("run ") and lines[-1].endswith("succeeded")
    assert "after  succeeded" in out
    run_id = lines[0].split()[1]

    code, out, _ = cli("runs", "get", run_id, "-o", "json")
    detail = json.loads(out)
    assert code == 0 and detail["status"] == "succeeded" and detail["labels"] == {"via": "cli"}
    code, out, _ = cli("runs", "get", run_id)
    assert "status:" in out and "TASK" in out
    code, out, _ = cli("runs", "ls", "--workflow", name, "-o", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [run_id]
    code, out, _ = cli("runs", "ls", "--workflow", name)
    assert out.splitlines()[0].split()[:3] == ["ID", "WORKFLOW", "STATUS"]
    assert cli("runs", "get", "01a00000-0000-7000-8000-000000000000")[0] == 66
    code, _, err = cli("runs", "start", name, "--input", "not json")
    assert code == 64

    # The same idempotency key returns the same run.
    first = json.loads(cli("runs", "start", name, "--idempotency-key", "k1", "-o", "json")[1])
    again = json.loads(cli("runs", "start", name, "--idempotency-key", "k1", "-o", "json")[1])
    assert first["id"] == again["id"]


def test_a_failed_run_exits_1_and_cancel_and_retry_work(logged_in, tmp_path):
    cli, _ = logged_in
    name = unique("cli-gate-")
    path = tmp_path / "gate.json"
    path.write_text(json.dumps({"name": name, "tasks": [
        {"id": "approve", "signal": "approve", "timeouts": {"start_to_close": "1h"}}]}))
    assert cli("workflows", "apply", "-f", str(path))[0] == 0
    code, out, _ = cli("runs", "start", name, "-o", "json")
    run_id = json.loads(out)["id"]
    code, out, _ = cli("runs", "cancel", run_id)
    assert code == 0 and out.strip() == f"run {run_id} cancelled"
    code, out, _ = cli("runs", "watch", run_id, "-o", "json")
    assert code == 1
    events = [json.loads(line) for line in out.splitlines() if line.startswith('{"')]
    assert {"task": "approve", "status": "cancelled"}.items() <= events[0].items()
    code, out, _ = cli("runs", "retry", run_id)
    assert code == 0 and "running" in out
    code, _, err = cli("runs", "retry", run_id)
    assert code == 65 and "HTTP 400" in err


def test_agents_and_completion(logged_in, server):
    cli, _ = logged_in
    code, out, _ = cli("agents", "ls")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "NAME", "TYPE"]
    code, out, _ = cli("agents", "ls", "-o", "json")
    assert code == 0 and isinstance(json.loads(out), list)
    assert cli("agents", "get", "nope")[0] == 66
    code, out, _ = cli("completion", "bash")
    assert code == 0 and "complete -F _devcycle devcycle" in out
    code, out, _ = cli("completion", "zsh")
    assert code == 0 and out.startswith("#compdef devcycle")
    assert cli("completion", "fish")[0] == 64


def test_keys_secrets_and_users(logged_in, cli, server):
    cli_dev, user = logged_in
    code, out, _ = cli_dev("keys", "create", "ci-key", "--role", "viewer", "-o", "json")
    key = json.loads(out)
    assert code == 0 and key["secret"] and key["role"] == "viewer"
    code, out, _ = cli_dev("keys", "ls")
    assert code == 0 and key["id"] in out and key["secret"] not in out
    # The key works as DEVCYCLE_TOKEN, and a viewer may not start runs.
    code, out, _ = cli_dev("whoami", "-o", "json", extra_env={"DEVCYCLE_TOKEN": key["secret"]})
    assert code == 0 and json.loads(out)["role"] == "viewer"
    assert cli_dev("keys", "revoke", key["id"])[0] == 0
    code, _, _ = cli_dev("whoami", extra_env={"DEVCYCLE_TOKEN": key["secret"]})
    assert code == 77

    name = "CLI_" + unique("s").upper().replace("-", "_")
    code, out, _ = cli_dev("secrets", "set", name, stdin="s3cret-value\n")
    assert code == 0 and out.strip() == f"secret {name} version 1"
    code, out, _ = cli_dev("secrets", "ls", "-o", "json")
    assert name in [s["name"] for s in json.loads(out)] and "s3cret-value" not in out
    assert cli_dev("secrets", "set", name, stdin="")[0] == 64
    assert cli_dev("secrets", "rm", name)[0] == 0
    assert cli_dev("secrets", "rm", name)[0] == 66

    # Users are an admin's: a developer gets 77, the admin may list and create.
    assert cli_dev("users", "ls")[0] == 77
    admin_env = {"DEVCYCLE_TOKEN": server.login()["access_token"]}
    new = unique("cliuser")
    code, out, err = cli("users", "create", new, "--email", f"{new}@example.com",
                         stdin="a long enough password\n", extra_env=admin_env)
    assert code == 0, err
    code, out, _ = cli("users", "ls", "-o", "json", extra_env=admin_env)
    assert new in [u["username"] for u in json.loads(out)]
    code, _, err = cli("users", "create", new, "--email", f"{new}@example.com",
                       stdin="a long enough password\n", extra_env=admin_env)
    assert code == 65 and "HTTP 409" in err
    code, _, err = cli("dlq", "ls", "--topic", "nothing", "--group", "nobody", extra_env=admin_env)
    assert code == 0, err


def test_logs_follow_ends_with_the_task(logged_in, tmp_path):
    cli, _ = logged_in
    name = unique("cli-logs-")
    path = tmp_path / "logs.json"
    path.write_text(json.dumps({"name": name, "tasks": [{"id": "nap", "sleep": "200ms"}]}))
    assert cli("workflows", "apply", "-f", str(path))[0] == 0
    run = json.loads(cli("runs", "start", name, "-o", "json")[1])
    task_id = json.loads(cli("runs", "get", run["id"], "-o", "json")[1])["tasks"][0]["id"]
    code, out, err = cli("logs", task_id, "-f", "--interval-ms", "50")
    assert code == 0, err  # a timer writes no lines; -f returns once it fired
    detail = json.loads(cli("runs", "get", run["id"], "-o", "json")[1])
    assert detail["tasks"][0]["status"] == "succeeded"
    assert cli("logs", "01a00000-0000-7000-8000-000000000000")[0] == 66


def test_admin_backup_while_serving_and_restore(logged_in, server, tmp_path):
    import sqlite3
    cli, _ = logged_in
    name = unique("cli-backup-")
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"name": name, "tasks": [{"id": "a", "sleep": "1s"}]}))
    assert cli("workflows", "apply", "-f", str(path))[0] == 0
    live = f"sqlite://{server.dir.name}/devcycle.db"
    backup = tmp_path / "backup.db"
    code, out, err = cli("admin", "backup", str(backup), "--database", live)
    assert code == 0, err
    assert out.strip() == f"backed up {live} to {backup}"
    code, _, err = cli("admin", "backup", str(backup), "--database", live)
    assert code == 65 and "exists" in err

    # Restoring over the running server's database is refused; into a new place it works.
    code, _, err = cli("admin", "restore", str(backup), "--database", live)
    assert code == 69 and "in use" in err, err
    restored = tmp_path / "restored.db"
    code, _, err = cli("admin", "restore", str(backup), "--database", f"sqlite://{restored}")
    assert code == 0, err
    with sqlite3.connect(restored) as db:
        names = [r[0] for r in db.execute("SELECT name FROM workflows")]
    assert name in names

    not_ours = tmp_path / "other.db"
    sqlite3.connect(not_ours).close()
    code, _, err = cli("admin", "restore", str(not_ours), "--database", f"sqlite://{restored}")
    assert code == 64 and "not a DevCycle database" in err
    code, _, err = cli("admin", "backup", str(tmp_path / "x.db"), "--database",
                       "postgresql://db.example/devcycle")
    assert code == 64 and "pg_dump" in err
    assert cli("admin", "restore", str(tmp_path / "missing.db"))[0] == 66


def test_yaml_definitions(logged_in, tmp_path):
    cli, _ = logged_in
    name = unique("cli-yaml-")
    path = tmp_path / "flow.yaml"
    path.write_text(f"""# a comment
name: {name}
description: "from YAML"
tasks:
  - id: nap
    sleep: 100ms
    priority: 5
  - id: after
    sleep: "100ms"
    depends_on: [nap]
    input: {{n: 3, ok: true, ratio: 0.5, none: null, quoted: "3"}}
""")
    code, out, err = cli("workflows", "apply", "-f", str(path))
    assert code == 0, err
    code, out, _ = cli("workflows", "get", name)
    tasks = json.loads(out)["tasks"]
    assert tasks[0]["priority"] == 5
    assert tasks[1]["input"] == {"n": 3, "ok": True, "ratio": 0.5, "none": None, "quoted": "3"}
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    code, _, err = cli("workflows", "validate", "-f", str(bad))
    assert code == 65 and "bad.yml:" in err
