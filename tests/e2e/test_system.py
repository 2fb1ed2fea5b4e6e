"""Health, readiness, metrics, the OpenAPI document, Swagger UI, routing errors."""

import json

from conftest import SPEC_PATH, problem


def test_health_and_readiness(server):
    c = server.client()
    assert c.get("/healthz").json() == {"status": "ok"}
    assert c.get("/readyz").json() == {"status": "ready"}


def test_openapi_document_is_the_one_in_the_repo(server):
    r = server.client().get("/openapi.json")
    assert r.status_code == 200
    assert r.json() == json.loads(SPEC_PATH.read_text())
    assert r.json()["openapi"].startswith("3.1")


def test_swagger_ui_is_served_locally(server):
    c = server.client()
    page = c.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui-bundle.js" in page.text and "/openapi.json" in page.text
    bundle = c.get("/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert bundle.headers["Content-Type"].startswith("text/javascript")
    problem(c.get("/docs/..%2F..%2Fetc%2Fpasswd"), 404)
    problem(c.get("/docs/.hidden"), 404)


def test_metrics(server, admin):
    admin.get("/api/v1/agents")
    text = server.client().get("/metrics").text
    assert 'devcycle_build_info{version="0.1.0"} 1' in text
    assert 'devcycle_http_requests_total{method="GET",route="/api/v1/agents",status="200"}' in text
    assert 'devcycle_http_request_duration_seconds_bucket{method="GET",route="/api/v1/agents"' in text
    assert 'devcycle_tasks_open{status="ready"}' in text
    assert 'devcycle_agents{status="online"}' in text


def test_unknown_route_and_wrong_method(server, admin):
    problem(admin.get("/api/v1/nothing-here", validate=False), 404, "not_found")
    r = admin.request("PUT", "/api/v1/agents", validate=False)
    problem(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_malformed_percent_encoding_in_path(server):
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /docs/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"percent-encoding" in answer
