"""Direct agent messages with receipts, and the dead-letter queue."""

import pytest

from conftest import field_errors, problem, unique


@pytest.fixture(scope="module")
def agents(admin, make_user):
    admin.post("/api/v1/agent-types", json={"name": "messenger"})
    user, dev = make_user("developer")
    sender = dev.post("/api/v1/agents", json={"name": unique("sender-"), "type": "messenger"}).json()
    recipient = admin.post("/api/v1/agents", json={"name": unique("recipient-"),
                                                  "type": "messenger"}).json()
    return dev, sender, recipient


def test_send_receive_read(server, admin, agents):
    dev, sender, recipient = agents
    sent = dev.post(f"/api/v1/agents/{sender['id']}/messages",
                    json={"recipient": recipient["id"], "message_type": "review.request",
                          "payload": {"pr": 42}})
    assert sent.status_code == 201, sent.text
    m = sent.json()
    assert m["status"] == "sent" and m["payload"] == {"pr": 42} and m["delivered_at"] is None

    # Only the recipient's side reads its inbox; receiving marks delivered.
    problem(dev.post(f"/api/v1/agents/{recipient['id']}/messages/receive"), 403)
    inbox = admin.post(f"/api/v1/agents/{recipient['id']}/messages/receive", json={"limit": 10}).json()
    assert [x["id"] for x in inbox["items"]] == [m["id"]]
    assert inbox["items"][0]["status"] == "delivered"
    assert admin.post(f"/api/v1/agents/{recipient['id']}/messages/receive").json()["items"] == []

    # The sender may look at it but not mark it read.
    problem(dev.post(f"/api/v1/agents/{sender['id']}/messages/{m['id']}/read"), 403)
    read = admin.post(f"/api/v1/agents/{recipient['id']}/messages/{m['id']}/read")
    assert read.status_code == 200 and read.json()["status"] == "read" and read.json()["read_at"]
    assert dev.get(f"/api/v1/agents/{sender['id']}/messages/{m['id']}").json()["status"] == "read"

    body = problem(dev.post(f"/api/v1/agents/{sender['id']}/messages",
                            json={"recipient": recipient["id"], "message_type": "Bad Type!"}), 400)
    assert "message_type" in body["detail"]
    body = problem(dev.post(f"/api/v1/agents/{sender['id']}/messages", json={"payload": 1}), 400)
    assert set(field_errors(body)) == {"recipient", "message_type"}
    problem(dev.post(f"/api/v1/agents/{sender['id']}/messages",
                     json={"recipient": "00000000-0000-0000-0000-000000000000",
                           "message_type": "x"}), 404)


def test_dead_letter_queue_is_for_admins(admin, make_user):
    empty = admin.get("/api/v1/dlq", params={"topic": "devcycle.tasks.build", "group": "workers"})
    assert empty.status_code == 200 and empty.json()["items"] == []
    body = problem(admin.get("/api/v1/dlq"), 400)
    assert set(field_errors(body)) == {"query.topic", "query.group"}
    redriven = admin.post("/api/v1/dlq/redrive", json={"topic": "devcycle.tasks.build",
                                                       "group": "workers"})
    assert redriven.json() == {"redriven": 0}
    _, dev = make_user("developer")
    problem(dev.get("/api/v1/dlq", params={"topic": "t", "group": "g"}), 403)
    problem(dev.post("/api/v1/dlq/redrive", json={"topic": "t", "group": "g"}), 403)
    problem(admin.get("/api/v1/dlq", params={"topic": "bad topic!", "group": "g"}), 400)
