"""MQTT subscribers over API and CLI: administrators only, wrong or hostile input refused
with a code naming the field, the broker password never answered, logged or audited."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import users
from engine.models import AuditEvent, EventSubscriber, IdempotentRequest
from engine.qms import secrets
from tests.support import PASSWORD

PW = "broker-Pa55word-never-shown"
BODY = {
    "name": "plant-bus",
    "kind": "mqtt",
    "url": "mqtt://127.0.0.1:1883",
    "topic_prefix": "plant1/batchline",
    "event_types": ["batch.*"],
    "username": "batchline",
    "password": PW,
}


@pytest.fixture
def admin(runtime, client):
    users.create_user(runtime, "ada", "Ada Admin", ["admin"], by="test", password=PASSWORD)
    return {"Authorization": "Bearer " + users.create_token(runtime, "ada", "t", by="test")}


def test_only_administrators(client, admin):
    assert client.post("/api/subscribers", json=BODY, headers=client.auth["op"]).status_code == 403
    assert client.post("/api/subscribers", json=BODY).status_code == 403  # alice: no admin
    assert client.post("/api/subscribers", json=BODY, headers=admin).status_code == 201


def test_password_never_answered_audited_or_logged(runtime, client, admin, caplog):
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/subscribers", json=BODY, headers={**admin, "Idempotency-Key": "k-1"})
    assert r.status_code == 201, r.get_json()
    out = r.get_json()
    assert out["password_set"] is True and out["secret_set"] is False and "secret" not in out
    assert out["topic_prefix"] == "plant1/batchline" and out["username"] == "batchline"
    sid = out["id"]
    texts = [
        r.get_data(as_text=True),
        client.post("/api/subscribers", json=BODY, headers={**admin, "Idempotency-Key": "k-1"}).get_data(as_text=True),
        client.get("/api/subscribers", headers=admin).get_data(as_text=True),
        client.get(f"/api/subscribers/{sid}", headers=admin).get_data(as_text=True),
        client.patch(f"/api/subscribers/{sid}", json={"password": PW + "2"}, headers=admin).get_data(as_text=True),
        client.patch(f"/api/subscribers/{sid}", json={"topic_prefix": "plant2/bl"}, headers=admin).get_data(
            as_text=True
        ),
    ]
    assert all(PW not in t for t in texts)
    with runtime.transaction() as s:
        row = s.get(EventSubscriber, sid)
        assert PW not in row.password_encrypted
        assert secrets.SecretBox(runtime.settings).open(row.password_encrypted) == PW + "2"
        entries = s.scalars(select(AuditEvent).where(AuditEvent.object_type == "subscriber")).all()
        trail = " ".join(f"{e.field} {e.old} {e.new}" for e in entries)
        assert "password set" in trail and "topic_prefix plant1/batchline plant2/bl" in trail
        stored = " ".join(str(x.response) + x.request_hash for x in s.scalars(select(IdempotentRequest)))
        assert PW not in trail and PW not in stored
    assert PW not in caplog.text


BAD = [
    ({"url": "http://127.0.0.1:1883"}, "subscriber_url_invalid"),
    ({"url": "mqtt://"}, "subscriber_url_invalid"),
    ({"url": "mqtt://u:p@127.0.0.1:1883"}, "subscriber_url_invalid"),
    ({"url": "mqtt://127.0.0.1:99999"}, "subscriber_url_invalid"),
    ({"url": "mqtt://127.0.0.1:1883/plant1"}, "subscriber_url_invalid"),
    ({"url": "mqtt://127.0.0.1:1883?x=1"}, "subscriber_url_invalid"),
    ({"url": "mqtt://127.0.0.1:1883 "}, "subscriber_url_invalid"),
    ({"topic_prefix": "plant1/+/x"}, "topic_prefix_invalid"),
    ({"topic_prefix": "plant1/#"}, "topic_prefix_invalid"),
    ({"topic_prefix": "$SYS/broker"}, "topic_prefix_invalid"),
    ({"topic_prefix": "/plant1"}, "topic_prefix_invalid"),
    ({"topic_prefix": "plant1/"}, "topic_prefix_invalid"),
    ({"topic_prefix": "plant1//x"}, "topic_prefix_invalid"),
    ({"topic_prefix": "plant 1"}, "topic_prefix_invalid"),
    ({"topic_prefix": "a/" * 20 + "b"}, "topic_prefix_invalid"),
    ({"topic_prefix": "plant\x00"}, "text_invalid"),  # refused before the field is read
    ({"topic_prefix": None}, "topic_prefix_invalid"),
    ({"username": "has space"}, "mqtt_username_invalid"),
    ({"username": None}, "mqtt_username_invalid"),  # a password without a user
    ({"password": "bad\nline"}, "mqtt_password_invalid"),
    ({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "secret_invalid"),
    ({"kind": "amqp"}, None),
    ({"event_types": []}, None),
]


@pytest.mark.parametrize(("change", "code"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_refused_with_a_clear_error(client, admin, change, code):
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    r = client.post("/api/subscribers", json=body, headers=admin)
    assert r.status_code in (400, 422), r.get_json()
    answer = r.get_json()
    if code:
        assert answer["code"] == code, answer
        assert answer["message"]


@pytest.mark.parametrize("field", ["topic_prefix", "username", "password"])
def test_mqtt_fields_refused_on_webhooks(client, admin, field):
    body = {"name": "hook", "url": "https://lake.example/in", "event_types": ["*"], field: "plant1"}
    r = client.post("/api/subscribers", json=body, headers=admin)
    assert r.status_code == 422 and r.get_json()["code"] == "subscriber_field_invalid"
    assert field in r.get_json()["message"]


@pytest.mark.parametrize("value", [5, ["a"], {"a": 1}, True])
def test_wrong_types(client, admin, value):
    for field in ("topic_prefix", "username", "password", "url"):
        r = client.post("/api/subscribers", json={**BODY, field: value}, headers=admin)
        assert r.status_code == 422, (field, r.get_json())


def test_change_checks_against_the_kind(client, admin):
    sid = client.post("/api/subscribers", json=BODY, headers=admin).get_json()["id"]
    r = client.patch(f"/api/subscribers/{sid}", json={"url": "https://lake.example/in"}, headers=admin)
    assert r.status_code == 422 and r.get_json()["code"] == "subscriber_url_invalid"
    r = client.patch(f"/api/subscribers/{sid}", json={"new_secret": True}, headers=admin)
    assert r.status_code == 422 and r.get_json()["code"] == "secret_invalid"
    r = client.patch(f"/api/subscribers/{sid}", json={"topic_prefix": "a/#"}, headers=admin)
    assert r.status_code == 422 and r.get_json()["code"] == "topic_prefix_invalid"


def test_concurrent_adds_of_one_name_make_one(app, runtime, admin):
    answers: list[int] = []

    def post():
        with app.test_client() as c:
            answers.append(c.post("/api/subscribers", json=BODY, headers=admin).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers.count(201) == 1 and all(a in (201, 409) for a in answers), answers
    with runtime.transaction() as s:
        assert len(s.scalars(select(EventSubscriber)).all()) == 1


def test_cli_add_change_list(runtime, monkeypatch):
    from web.cli import CliContext, main

    users.create_user(runtime, "ada", "Ada Admin", ["admin"], by="test", password=PASSWORD)
    monkeypatch.setenv("BATCHLINE_PASSWORD", PASSWORD)
    runner = CliRunner()

    def run(*args, env=None):
        return runner.invoke(
            main, list(args), obj=CliContext(runtime=runtime), env={"BATCHLINE_USER": "ada", **(env or {})}
        )

    added = run(
        "--json", "subscribers", "add", "bus", "--kind", "mqtt", "--url", "mqtt://127.0.0.1:1883",
        "--topic-prefix", "plant1/batchline", "--username", "bl", "--events", "batch.*,qms.*",
        env={"BATCHLINE_MQTT_PASSWORD": PW},
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    out = json.loads(added.stdout)
    assert out["password_set"] is True and out["topic_prefix"] == "plant1/batchline" and PW not in added.output
    bad = run(
        "subscribers", "add", "bus2", "--kind", "mqtt", "--url", "mqtt://h:1", "--topic-prefix", "x/#", "--events", "*"
    )
    assert bad.exit_code != 0 and "topic_prefix" in bad.output
    changed = run("--json", "subscribers", "change", "bus", "--topic-prefix", "plant2/batchline")
    assert changed.exit_code == 0, changed.output
    assert json.loads(changed.stdout)["topic_prefix"] == "plant2/batchline"
    listed = run("subscribers", "list")
    assert listed.exit_code == 0 and "plant2/batchline" in listed.output and PW not in listed.output
