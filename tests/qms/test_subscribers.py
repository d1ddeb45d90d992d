"""Subscribers over API and CLI: administrators only, hostile input refused with a code,
the secret shown once and never again — not by the API, the CLI, the audit trail or a log."""

from __future__ import annotations

import logging
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine import users
from engine.models import AuditEvent, EventSubscriber, IdempotentRequest, Job
from engine.qms import secrets, subscribers
from tests.support import PASSWORD

from .helpers import SECRET

BODY = {"name": "lake", "url": "https://lake.example/in", "event_types": ["batch.*", "qms.*"], "kind": "webhook"}


@pytest.fixture
def admin(runtime, client):
    users.create_user(runtime, "ada", "Ada Admin", ["admin"], by="test", password=PASSWORD)
    return {"Authorization": "Bearer " + users.create_token(runtime, "ada", "t", by="test")}


def test_only_an_administrator_manages_subscribers(client, anon, admin):
    assert anon.get("/api/subscribers").status_code == 401
    assert client.get("/api/subscribers").status_code == 403  # alice: operator, supervisor, qa, service
    assert client.post("/api/subscribers", json=BODY).get_json()["code"] == "forbidden"
    assert client.get("/api/subscribers", headers=admin).status_code == 200


def test_secret_shown_once_never_again_nor_audited_nor_logged(runtime, client, admin, caplog):
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/subscribers", json=BODY, headers=admin)
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and secrets.check(secret)
    sid = created["id"]
    seen = [
        client.get("/api/subscribers", headers=admin).get_data(as_text=True),
        client.get(f"/api/subscribers/{sid}", headers=admin).get_data(as_text=True),
        client.patch(f"/api/subscribers/{sid}", json={"url": "https://lake2.example/in"}, headers=admin).get_data(
            as_text=True
        ),
        client.delete(f"/api/subscribers/{sid}", headers=admin).get_data(as_text=True),
    ]
    assert all(
        secret not in text and '"secret_set": true' in text.replace('"secret_set":true', '"secret_set": true')
        for text in seen
    )
    rotated = client.patch(f"/api/subscribers/{sid}", json={"new_secret": True}, headers=admin).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    with runtime.transaction() as s:
        row = s.get(EventSubscriber, sid)
        assert secret not in row.secret_encrypted and rotated["secret"] not in row.secret_encrypted
        assert secrets.SecretBox(runtime.settings).open(row.secret_encrypted) == rotated["secret"]
        entries = s.scalars(select(AuditEvent).where(AuditEvent.object_type == "subscriber")).all()
        text = " ".join(f"{e.old} {e.new} {e.reason}" for e in entries)
        assert "secret set" in text
        assert [e.action for e in entries][:1] == ["subscriber.added"]
        assert any(e.field == "enabled" and e.new == "false" for e in entries) or any(
            e.field == "enabled" for e in entries
        )
        for dump in (text, *(str(r.response) for r in s.scalars(select(IdempotentRequest)))):
            assert secret not in dump and rotated["secret"] not in dump
    assert secret not in caplog.text and rotated["secret"] not in caplog.text


def test_never_hard_deleted(runtime, client, admin):
    sid = client.post("/api/subscribers", json=BODY, headers=admin).get_json()["id"]
    out = client.delete(f"/api/subscribers/{sid}", headers=admin).get_json()
    assert out["enabled"] is False
    assert client.get(f"/api/subscribers/{sid}", headers=admin).get_json()["name"] == "lake"


def test_idempotency_key_replays_without_the_secret(runtime, client, admin):
    h = {**admin, "Idempotency-Key": "sub-1"}
    first = client.post("/api/subscribers", json={**BODY, "secret": SECRET}, headers=h)
    again = client.post("/api/subscribers", json={**BODY, "secret": SECRET}, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["secret"] == SECRET and again.get_json().get("secret") is None
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == first.get_json()["id"]
    other = client.post("/api/subscribers", json={**BODY, "name": "lake2"}, headers=h)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert len(client.get("/api/subscribers", headers=admin).get_json()) == 1


def test_concurrent_creation_of_one_name_makes_one(runtime, app, admin):
    codes = []

    def post():
        codes.append(app.test_client().post("/api/subscribers", json=BODY, headers=admin).status_code)

    threads = [threading.Thread(target=post) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(201) == 1 and set(codes) <= {201, 409, 503}
    with runtime.transaction() as s:
        assert len(s.scalars(select(EventSubscriber)).all()) == 1


@pytest.mark.parametrize(
    "change,code",
    [
        ({"url": "ftp://lake.example/"}, "subscriber_url_invalid"),
        ({"url": "https://user:pw@lake.example/"}, "subscriber_url_invalid"),
        ({"url": "https://lake.example:99999/"}, "subscriber_url_invalid"),
        ({"url": "https://la ke.example/"}, "subscriber_url_invalid"),
        ({"url": "https://" + "a" * 2100}, "validation_error"),
        ({"url": 5}, "validation_error"),
        ({"name": "../etc"}, "validation_error"),
        ({"name": "x" * 101}, "validation_error"),
        ({"name": "bad\u0000name"}, "text_invalid"),
        ({"event_types": []}, "validation_error"),
        ({"event_types": "qms.*"}, "validation_error"),
        ({"event_types": ["qms.*; drop table"]}, "validation_error"),
        ({"event_types": ["x"] * 51}, "validation_error"),
        ({"kind": "email"}, "validation_error"),
        ({"secret": "plain-text-secret-of-sufficient-length"}, "secret_invalid"),
        ({"secret": "whsec_" + "A" * 12 + "=" * 20}, "secret_invalid"),
        ({"secret": "whsec_" + "QUFB" * 30}, "validation_error"),
        ({"name": None}, "validation_error"),
        ({"extra": 1}, "validation_error"),
    ],
)
def test_hostile_input_is_refused_with_a_code(runtime, client, admin, change, code):
    body = {**BODY, **change}
    r = client.post("/api/subscribers", json=body, headers=admin)
    assert r.status_code in (400, 422), r.get_json()
    assert r.get_json()["code"] == code and set(r.get_json()) == {"code", "message", "details"}
    with runtime.transaction() as s:
        assert s.scalars(select(EventSubscriber)).first() is None


def test_patch_refuses_bad_input_and_unknown_ids(runtime, client, admin):
    sid = client.post("/api/subscribers", json=BODY, headers=admin).get_json()["id"]
    assert client.patch(f"/api/subscribers/{sid}", json={"enabled": "yes"}, headers=admin).status_code == 422
    assert client.patch(f"/api/subscribers/{sid}", json={"url": "javascript:x"}, headers=admin).status_code == 422
    assert client.patch("/api/subscribers/999", json={}, headers=admin).get_json()["code"] == "subscriber_not_found"
    assert client.delete("/api/subscribers/99999999999", headers=admin).status_code == 404


def test_emit_schedules_a_delivery_for_matching_enabled_subscribers(runtime):
    from engine import outbox

    a, _ = subscribers.add(runtime, name="a", url="https://a.example/", event_types=["qms.*"], by="admin.x")
    b, _ = subscribers.add(runtime, name="b", url="https://b.example/", event_types=["batch.completed"], by="admin.x")
    subscribers.add(runtime, name="c", url="https://c.example/", event_types=["org.batchline.qms.*"], by="admin.x")
    subscribers.disable(runtime, "c", by="admin.x")
    with runtime.transaction() as s:
        event = outbox.emit(s, runtime.settings, "qms.deviation.requested", "B-1", {})
        s.flush()
        seq = event.seq
    with runtime.transaction() as s:
        jobs = [j.payload for j in s.scalars(select(Job).where(Job.kind == "deliver"))]
    assert jobs == [{"seq": seq, "subscriber": a["id"]}]
    assert b["id"] not in [j["subscriber"] for j in jobs]


def test_cli_add_list_disable(runtime, monkeypatch):
    from web.cli import CliContext, main

    users.create_user(runtime, "ada", "Ada Admin", ["admin"], by="test", password=PASSWORD)
    users.create_user(runtime, "opx", "Op X", ["operator"], by="test", password=PASSWORD)
    monkeypatch.setenv("BATCHLINE_PASSWORD", PASSWORD)
    runner = CliRunner()

    def run(*args, user="ada", env=None):
        return runner.invoke(
            main, list(args), obj=CliContext(runtime=runtime), env={"BATCHLINE_USER": user, **(env or {})}
        )

    added = run(
        "--json", "subscribers", "add", "qms", "--url", "http://127.0.0.1:8765/", "--events", "qms.*", "--kind", "qms"
    )
    assert added.exit_code == 0, added.output
    import json as _json

    secret = _json.loads(added.stdout)["secret"]
    assert secret.startswith("whsec_")
    listed = run("subscribers", "list")
    assert listed.exit_code == 0 and "qms" in listed.output and secret not in listed.output
    given = run(
        "subscribers",
        "add",
        "lake",
        "--url",
        "https://lake.example/",
        "--events",
        "*",
        env={"BATCHLINE_SUBSCRIBER_SECRET": SECRET},
    )
    assert given.exit_code == 0 and SECRET in given.output
    refused = run("subscribers", "list", user="opx")
    assert refused.exit_code == 2 and "forbidden" in refused.output
    disabled = run("--json", "subscribers", "disable", "qms")
    assert disabled.exit_code == 0 and _json.loads(disabled.stdout)["enabled"] is False
    assert run("subscribers", "disable", "nope").exit_code == 2
