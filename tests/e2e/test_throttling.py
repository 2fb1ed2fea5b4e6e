"""Issue #20: failed authentications are limited per client address, a flood
of wrong-password logins cannot keep a correct one out, and what the server
says about methods and stale cookies is true. Each client below speaks from
its own loopback address (127.0.0.0/8 is all this host's), as callers from
many machines would."""

import concurrent.futures
import threading
import time

import requests
import requests.adapters

from conftest import Server, problem, unique

FORGED_KEY = "dck_0123456789ab_" + "x" * 43


class FromAddress(requests.adapters.HTTPAdapter):
    """Connects from a given local address."""

    def __init__(self, address: str, **kw):
        self.address = address
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kw)


def client_from(server, address: str, **kw):
    c = server.client(**kw)
    c.session.mount("http://", FromAddress(address))
    return c


def forge(token: str) -> str:
    """The token with one signature character changed (every bit of it counts)."""
    at = token.rindex(".") + 20
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


def test_forged_credentials_are_answered_429_past_the_limit_genuine_ones_never():
    server = Server(env={"DEVCYCLE_CREDENTIAL_FAILURES_PER_ADDRESS": "5"})
    try:
        token = server.login()["access_token"]
        attacker = "127.0.0.2"
        guesses = [
            client_from(server, attacker, api_key=FORGED_KEY),
            client_from(server, attacker, token=forge(token)),
            client_from(server, attacker, token="not.a.token"),
            client_from(server, attacker, api_key="dck_" + "f" * 12 + "_" + "y" * 43),
            client_from(server, attacker, token="x" * 40),
        ]
        for guess in guesses:
            problem(guess.get("/api/v1/agents"), 401, "unauthenticated")
        r = client_from(server, attacker, api_key=FORGED_KEY).get("/api/v1/agents")
        problem(r, 429, "resource_exhausted")
        assert int(r.headers["Retry-After"]) >= 1
        assert "from this address" in r.json()["detail"]
        # A genuine credential from the same address (a colleague behind the
        # same proxy) is never refused for it, nor a login.
        assert client_from(server, attacker, token=token).get("/api/v1/agents").status_code == 200
        r = client_from(server, attacker).post(
            "/api/v1/auth/login", json={"login": "admin", "password": server.admin_password})
        assert r.status_code == 200, r.text
        # Other addresses are unaffected.
        problem(client_from(server, "127.0.0.3", api_key=FORGED_KEY).get("/api/v1/agents"), 401)
    finally:
        assert server.stop() == 0, server.log()


def test_an_address_at_its_limit_of_failed_logins_is_refused_before_it_queues(server, admin):
    guesser = client_from(server, "127.0.0.5")
    for i in range(50):
        r = guesser.post("/api/v1/auth/login", json={"login": unique("nobody-"), "password": "no"})
        problem(r, 401)
    r = guesser.post("/api/v1/auth/login",
                     json={"login": "admin", "password": server.admin_password})
    body = problem(r, 429, "resource_exhausted")
    assert "from this address" in body["detail"] and int(r.headers["Retry-After"]) >= 1
    events = admin.get("/api/v1/audit", params={"action": "login.throttled", "limit": 10}).json()
    assert any(e.get("client_address") == "127.0.0.5" for e in events["items"]), events


def test_expired_and_revoked_tokens_do_not_count_against_an_address():
    server = Server(env={"DEVCYCLE_CREDENTIAL_FAILURES_PER_ADDRESS": "3"})
    try:
        office = "127.0.0.4"
        pair = server.login()
        client_from(server, office, token=pair["access_token"]).post(
            "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
        for _ in range(6):
            problem(client_from(server, office, token=pair["access_token"]).get("/api/v1/agents"),
                    401)
        problem(client_from(server, office, api_key=FORGED_KEY).get("/api/v1/agents"), 401)
    finally:
        assert server.stop() == 0, server.log()


def test_a_correct_login_gets_through_a_flood_of_wrong_ones():
    # One hashing thread and the default queue of 32 places, against 100
    # addresses that each keep a wrong-password login in flight. Before,
    # the queue was first come, first served: the correct login got 503.
    server = Server()
    stop = threading.Event()
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def flood(i: int) -> None:
        c = client_from(server, f"127.0.1.{i + 10}", validate=False)
        n = 0
        while not stop.is_set():
            n += 1
            r = c.post("/api/v1/auth/login",
                       json={"login": f"guess-{i}-{n}", "password": "wrong horse"})
            with lock:
                answers[r.status_code] = answers.get(r.status_code, 0) + 1

    try:
        with concurrent.futures.ThreadPoolExecutor(100) as pool:
            floods = [pool.submit(flood, i) for i in range(100)]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until every flooder has been answered
                with lock:
                    if answers.get(401, 0) >= 40 and answers.get(503, 0) >= 100:
                        break
                time.sleep(0.05)
            r = client_from(server, "127.0.2.1").post(
                "/api/v1/auth/login", json={"login": "admin", "password": server.admin_password})
            stop.set()
            for f in floods:
                f.result()
        assert r.status_code == 200, r.text
        assert r.json()["access_token"]
        # The flood was real: the queue was full and turned flooders away.
        assert answers.get(503, 0) >= 100 and answers.get(401, 0) >= 40, answers
    finally:
        stop.set()
        assert server.stop() == 0, server.log()


def test_allow_lists_only_the_methods_the_path_has(server, admin):
    # /workflows/validate is its own path: never the workflow named "validate".
    for method in ("GET", "DELETE"):
        r = admin.request(method, "/api/v1/workflows/validate", validate=False)
        problem(r, 405, "method_not_allowed")
        assert r.headers["Allow"] == "POST"
    r = admin.request("PUT", f"/api/v1/agents/{unique('a')}", validate=False)
    problem(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET, PATCH, DELETE"
    r = admin.request("POST", "/api/v1/workflows/some-name", validate=False)
    assert r.headers["Allow"] == "GET"


def test_a_session_cookie_that_no_longer_works_is_cleared(server):
    stale = "dcs_0190a0b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b_" + "z" * 43
    r = server.client().get("/api/v1/agents", headers={"Cookie": f"devcycle_session={stale}"})
    problem(r, 401, "unauthenticated")
    cleared = [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("devcycle_session=")]
    assert cleared and "Max-Age=0" in cleared[0], r.headers
