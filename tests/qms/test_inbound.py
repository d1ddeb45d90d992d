"""POST /api/qms/events: only a message signed with a QMS subscriber's secret, fresh, and
seen for the first time changes anything; everything else changes nothing."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from engine import users
from engine.models import AuditEvent, BatchException, OutboxEvent, QmsDeviation, QmsInboundEvent
from engine.qms import subscribers

from .helpers import SECRET, add_qms, batch_with_exceptions, message, signed

URL = "/api/qms/events"


@pytest.fixture
def setup(runtime):
    ids = batch_with_exceptions(runtime, 2)
    add_qms(runtime)
    return runtime, ids


def counts(rt) -> tuple[int, int, int]:
    with rt.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(QmsInboundEvent)),
            s.scalar(select(func.count()).select_from(QmsDeviation)),
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action.like("qms.%"))),
        )


def test_a_signed_opening_links_the_deviation_audited_and_evented(setup, anon):
    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0])
    r = anon.post(URL, data=body, headers=signed(body))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["deviation"]["number"] == "DEV-2026-0001" and r.get_json()["replayed"] is False
    with rt.transaction() as s:
        dev = s.scalars(select(QmsDeviation)).one()
        assert (dev.exception_id, dev.qms, dev.status) == (ids[0], "demo-qms", "open")
        entry = s.scalars(select(AuditEvent).where(AuditEvent.action == "qms.deviation.opened")).one()
        assert (entry.object_type, entry.object_id, entry.field) == ("batch", "B-QMS", f"exception {ids[0]}")
        assert entry.user == "qms:demo-qms" and "DEV-2026-0001" in entry.new
        assert s.scalars(select(OutboxEvent).where(OutboxEvent.type == "org.batchline.qms.deviation.updated")).one()
        stored = s.scalars(select(QmsInboundEvent)).one()
        assert stored.body == body.decode()


def test_status_change_and_closing_close_the_exception(setup, anon):
    rt, ids = setup
    for type_, extra in [
        ("deviation.opened", {}),
        ("deviation.status_changed", {"status": "investigation"}),
        ("deviation.closed", {"capa": "CAPA-2026-0007"}),
    ]:
        body = message(type_, "B-QMS", ids[1], **extra)
        assert anon.post(URL, data=body, headers=signed(body)).status_code == 200
    with rt.transaction() as s:
        dev = s.scalars(select(QmsDeviation)).one()
        assert (dev.status, dev.capa) == ("closed", "CAPA-2026-0007")
        assert s.get(BatchException, ids[1]).status == "closed"
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.field == f"exception {ids[1]}")).all()
        assert actions == [
            "exception.raised",
            "qms.deviation.opened",
            "qms.deviation.status_changed",
            "qms.deviation.closed",
            "exception.closed",
        ]


def test_a_replayed_webhook_id_has_no_second_effect(setup, anon):
    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0])
    headers = signed(body, msg_id="msg_replay")
    assert anon.post(URL, data=body, headers=headers).status_code == 200
    before = counts(rt)
    again = anon.post(URL, data=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["replayed"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    # the same id, freshly signed, with another body: still the first message's effect only
    other = message("deviation.closed", "B-QMS", ids[0], capa="CAPA-X")
    assert anon.post(URL, data=other, headers=signed(other, msg_id="msg_replay")).get_json()["replayed"] is True
    assert counts(rt) == before == (1, 1, 1)


def test_the_same_news_under_a_new_id_changes_nothing_more(setup, anon):
    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0])
    for _ in range(3):
        assert anon.post(URL, data=body, headers=signed(body)).status_code == 200
    assert counts(rt)[1:] == (1, 1)


@pytest.mark.parametrize(
    "spoil",
    [
        "bad_secret",
        "stale",
        "future",
        "tampered_body",
        "no_id",
        "no_timestamp",
        "no_signature",
        "garbage_signature",
        "v2_only",
        "timestamp_text",
    ],
)
def test_a_bad_stale_or_missing_signature_is_401_and_nothing_is_stored(setup, anon, spoil):
    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0])
    headers = signed(body)
    if spoil == "bad_secret":
        headers = signed(body, "whsec_" + "A" * 32)
    elif spoil == "stale":
        headers = signed(body, ts=int(time.time()) - 301)
    elif spoil == "future":
        headers = signed(body, ts=int(time.time()) + 301)
    elif spoil == "tampered_body":
        body = body.replace(b"DEV-2026-0001", b"DEV-2026-0666")
    elif spoil.startswith("no_"):
        del headers["webhook-" + spoil[3:]]
    elif spoil == "garbage_signature":
        headers["webhook-signature"] = "v1,%%%not-base64 ,,, v1"
    elif spoil == "v2_only":
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    elif spoil == "timestamp_text":
        headers["webhook-timestamp"] = "1e99"
    r = anon.post(URL, data=body, headers=headers)
    assert r.status_code == 401, r.get_json()
    assert r.get_json()["code"] in ("signature_invalid", "signature_stale")
    assert set(r.get_json()) == {"code", "message", "details"}
    assert counts(rt) == (0, 0, 0)


def test_a_service_token_is_no_substitute_for_the_secret(setup, client):
    """A person holding a bearer token of role service cannot forge the QMS's answer."""
    rt, ids = setup
    users.create_user(rt, "erp", "ERP", ["service"], by="test", kind="service")
    token = users.create_token(rt, "erp", "stolen", by="test")
    body = message("deviation.opened", "B-QMS", ids[0])
    r = client.post(URL, data=body, headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    assert r.status_code == 401
    assert counts(rt) == (0, 0, 0)


def test_a_disabled_qms_is_not_believed(setup, anon):
    rt, ids = setup
    subscribers.disable(rt, "demo-qms", by="admin.x")
    body = message("deviation.opened", "B-QMS", ids[0])
    assert anon.post(URL, data=body, headers=signed(body)).status_code == 401
    assert counts(rt) == (0, 0, 0)


def test_a_webhook_subscribers_secret_does_not_sign_qms_answers(setup, anon):
    rt, ids = setup
    other = "whsec_" + "B" * 32
    subscribers.add(rt, name="lake", url="https://lake.example/in", event_types=["*"], secret=other, by="admin.x")
    body = message("deviation.opened", "B-QMS", ids[0])
    assert anon.post(URL, data=body, headers=signed(body, other)).status_code == 401


def test_unknown_exception_404_and_nothing_stored(setup, anon):
    rt, ids = setup
    for batch_id, exc_id in [("B-QMS", 999_999), ("B-OTHER", ids[0])]:
        body = message("deviation.opened", batch_id, exc_id)
        r = anon.post(URL, data=body, headers=signed(body))
        assert r.status_code == 404 and r.get_json()["code"] == "exception_not_found"
    assert counts(rt) == (0, 0, 0)


@pytest.mark.parametrize(
    "body,content_type,status,code",
    [
        (b"not json", "text/plain", 422, "payload_invalid"),
        (b"not json", "application/json", 400, "json_invalid"),  # the app-wide check, before anything
        (b"[1, 2]", "application/json", 422, "payload_invalid"),
        (b'{"type": "deviation.opened"}', "application/json", 422, "validation_error"),
        (b'{"type": "deviation.eaten", "data": {}}', "application/json", 422, "validation_error"),
        (
            b'{"type": "deviation.opened", "data": {"exception": {"batch_id": "B-QMS", "id": "1"}, "deviation": 5}}',
            "application/json",
            422,
            "validation_error",
        ),
        (
            b'{"type": "deviation.closed", "data": {"exception": {"batch_id": "B-QMS", "id": 1}, "deviation": "D"}}',
            "application/json",
            422,
            "validation_error",
        ),
        (
            b'{"type": "deviation.opened", "data": {"exception": {"batch_id": "B", "id": 99999999999},'
            b' "deviation": "D"}}',
            "application/json",
            422,
            "validation_error",
        ),
        (
            b'{"type": "deviation.opened", "data": {"exception": {"batch_id": "B", "id": 1}, "deviation": "'
            + b"D" * 500
            + b'"}}',
            "application/json",
            422,
            "validation_error",
        ),
        (b'{"type": "\\u0000"}', "text/plain", 422, "payload_invalid"),
    ],
)
def test_signed_but_malformed_is_refused_with_a_code(setup, anon, body, content_type, status, code):
    rt, _ = setup
    headers = {**signed(body), "content-type": content_type}
    r = anon.post(URL, data=body, headers=headers)
    assert (r.status_code, r.get_json()["code"]) == (status, code), r.get_json()
    assert set(r.get_json()) == {"code", "message", "details"}
    assert counts(rt) == (0, 0, 0)


def test_oversize_is_413(setup, anon):
    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0], note="x" * 70_000)
    r = anon.post(URL, data=body, headers=signed(body))
    assert r.status_code == 413 and r.get_json()["code"] == "request_too_large"
    assert counts(rt) == (0, 0, 0)


def test_another_number_for_a_linked_exception_is_409(setup, anon):
    rt, ids = setup
    first = message("deviation.opened", "B-QMS", ids[0])
    anon.post(URL, data=first, headers=signed(first))
    second = message("deviation.opened", "B-QMS", ids[0], number="DEV-2026-0002")
    r = anon.post(URL, data=second, headers=signed(second))
    assert r.status_code == 409 and r.get_json()["code"] == "deviation_mismatch"
    assert counts(rt) == (1, 1, 1)


def test_concurrent_copies_of_one_message_count_once(setup, app):
    import threading

    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0])
    headers = signed(body, msg_id="msg_race")
    results = []

    def post():
        results.append(app.test_client().post(URL, data=body, headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code in (200, 409, 503) for code in results) and 200 in results
    assert counts(rt) == (1, 1, 1)


def test_secret_unused_in_anything_stored(setup, anon):
    """The inbound message is stored, the secret that signed it is not (anywhere)."""
    rt, ids = setup
    body = message("deviation.opened", "B-QMS", ids[0])
    anon.post(URL, data=body, headers=signed(body))
    with rt.transaction() as s:
        for row in s.scalars(select(AuditEvent)):
            assert SECRET not in f"{row.old}{row.new}{row.reason}"
