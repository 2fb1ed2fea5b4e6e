"""End-to-end tests of `devcycle serve`: the real binary on a random loopback
port, driven over HTTP, every response checked against server/openapi.json.

DEVCYCLE_BINARY names the executable (ctest sets it); each server gets a
fresh temporary directory for its database and master key and is stopped
(SIGTERM) by the fixture that started it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("DEVCYCLE_BINARY", str(ROOT / "build/dev/server/devcycle"))
SPEC_PATH = ROOT / "server/openapi.json"


def load_spec() -> OpenAPI:
    # problem+json is JSON: read it as such, so error bodies are checked too.
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    return OpenAPI.from_dict(json.loads(SPEC_PATH.read_text()), config=config)


SPEC = load_spec()


class Server:
    """One `devcycle serve` process."""

    def __init__(self, *flags: str, env: dict | None = None, tls: tuple[str, str] | None = None,
                 database: str | None = None, master_key_file: str | None = None,
                 first_start: bool = True):
        """`first_start`: the database has no users yet, so the server prints
        the admin's password (a second server on a shared database does not)."""
        self.dir = tempfile.TemporaryDirectory(prefix="devcycle-e2e-")
        self.master_key_file = master_key_file or f"{self.dir.name}/devcycle.key"
        args = [BINARY, "serve", "--listen", "127.0.0.1:0",
                "--database", database or f"sqlite://{self.dir.name}/devcycle.db",
                "--master-key-file", self.master_key_file, *flags]
        if tls:
            args += ["--tls-certificate", tls[0], "--tls-key", tls[1]]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DEVCYCLE_")}
        # Logins cost OWASP's minimum (19 MiB) instead of 64 MiB: same code, faster tests.
        full_env["DEVCYCLE_ARGON2_MEMORY_KIB"] = "19456"
        full_env.update(env or {})
        self.stderr_path = pathlib.Path(self.dir.name) / "stderr.log"
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL, text=True, cwd=self.dir.name,
                                     env=full_env)
        self.stdout_lines: list[str] = []
        self.port = 0
        self.admin_password = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.stdout_lines.append(line)
            if m := re.search(r"listening on https?://127\.0\.0\.1:(\d+)", line):
                self.port = int(m.group(1))
            if m := re.match(r"\s+password: (\S+)", line):
                self.admin_password = m.group(1)
            if line.startswith("It is shown only this once"):
                break
            if self.port and not first_start:
                break
        if not self.port:
            self.stop()
            raise RuntimeError("devcycle serve did not start:\n" + "".join(self.stdout_lines) +
                               self.stderr_path.read_text())
        # Drain stdout so the process never blocks on a full pipe.
        threading.Thread(target=lambda: [self.stdout_lines.append(l) for l in self.proc.stdout],
                         daemon=True).start()
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"

    def client(self, token: str | None = None, api_key: str | None = None,
               validate: bool = True) -> "Client":
        return Client(self.url, token=token, api_key=api_key, validate=validate)

    def login(self, login: str = "admin", password: str | None = None) -> dict:
        r = self.client().post("/api/v1/auth/login",
                               json={"login": login, "password": password or self.admin_password})
        assert r.status_code == 200, r.text
        return r.json()

    def admin(self) -> "Client":
        return self.client(token=self.login()["access_token"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode

    def log(self) -> str:
        return self.stderr_path.read_text()


class Client:
    """requests with the base URL and credentials, validating each exchange
    against the OpenAPI document."""

    def __init__(self, base: str, token: str | None = None, api_key: str | None = None,
                 validate: bool = True):
        self.base = base
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        if api_key:
            self.session.headers["X-API-Key"] = api_key
        self.validate = validate

    def request(self, method: str, path: str, **kw) -> requests.Response:
        validate = kw.pop("validate", self.validate)
        r = self.session.request(method, self.base + path, timeout=30, **kw)
        if validate:
            check_against_spec(r)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def check_against_spec(r: requests.Response) -> None:
    """The response must be one the document describes for that operation
    (status, headers, body schema). Requests the document rejects (the tests
    send bad input on purpose) are checked for their response only."""
    req = RequestsOpenAPIRequest(r.request)
    res = RequestsOpenAPIResponse(r)
    try:
        SPEC.validate_response(req, res)
    except Exception as e:  # openapi-core raises one of many classes; report them all alike
        raise AssertionError(
            f"{r.request.method} {r.request.url} -> {r.status_code} does not match "
            f"server/openapi.json: {e!r}\nbody: {r.text[:2000]}") from None


def problem(r: requests.Response, status: int, code: str | None = None) -> dict:
    """Asserts an RFC 9457 problem+json answer and returns it."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:devcycle:problem:")
    assert body["detail"]
    if code:
        assert body["code"] == code, body
    return body


def field_errors(body: dict) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in body.get("errors", [])}


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    assert s.stop() == 0, s.log()


@pytest.fixture(scope="session")
def admin(server) -> Client:
    return server.admin()


_counter = iter(range(1, 1_000_000))


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}{os.getpid()}"


@pytest.fixture(scope="session")
def make_user(server, admin):
    """Creates a user of a role and returns (user json, client logged in as it)."""

    def make(role: str):
        name = unique(role)
        password = "correct horse battery " + name
        r = admin.post("/api/v1/users", json={"email": f"{name}@example.com", "username": name,
                                              "password": password, "role": role})
        assert r.status_code == 201, r.text
        tokens = server.login(name, password)
        return r.json(), server.client(token=tokens["access_token"])

    return make
