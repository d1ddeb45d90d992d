"""A task that needs a qualification, through the API on a real recipe (SQLite and
PostgreSQL): refused before any password to a performer or witness without a current
one (no failed sign-in counted), an expiry during the batch stops the next step, and My
tasks says why a task is not yet someone's instead of hiding it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import batches, qualifications, users
from engine.errors import BatchlineError
from engine.models import AuditEvent, User
from engine.users import Person
from tests.quals.recipe import DATA, QUAL, install
from tests.support import PASSWORD

WRONG = "not the password"


@pytest.fixture
def batch(client, runtime):
    """Batch AS-1 of the aseptic recipe; ``op`` and ``op2`` are operators, ``tr`` a trainer."""
    install(runtime)
    users.create_user(runtime, "op2", "Op Two", ["operator"], by="test", password=PASSWORD)
    users.create_user(runtime, "tr", "Tess Trainer", ["trainer"], by="test", password=PASSWORD)
    r = client.post("/api/batches", json={"recipe": "aseptic_steps", "batch_id": "AS-1"})
    assert r.status_code == 201, r.json
    return client


def grant(client, who: str, until) -> None:
    body = {
        "qualification": QUAL,
        "valid_until": until.isoformat(),
        "signature": {"username": "tr", "password": PASSWORD},
    }
    r = client.post(f"/api/people/{who}/qualifications", json=body, headers=client.auth["tr"])
    assert r.status_code == 201, r.json


def task_id(client, bpmn_id: str) -> str:
    return next(t["id"] for t in client.get("/api/batches/AS-1/tasks").json if t["bpmn_id"] == bpmn_id)


def complete(client, who: str, bpmn_id: str, password=PASSWORD, witness=None):
    body = {"data": DATA, "signature": {"username": who, "password": password}}
    if witness:
        body["witness"] = {"username": witness[0], "password": witness[1]}
    return client.post(
        f"/api/batches/AS-1/tasks/{task_id(client, bpmn_id)}/complete", json=body, headers=client.auth[who]
    )


def failures(runtime, who: str) -> tuple[int, int]:
    """The account's failed-sign-in count, and the audited sign-in failures for it."""
    with runtime.transaction() as s:
        count = s.scalar(select(User.failed_logins).where(User.username == who))
        audited = s.scalars(select(AuditEvent).where(AuditEvent.user == who, AuditEvent.action.like("%fail%")))
        return count, len(list(audited))


def test_without_the_qualification_the_step_is_refused_before_the_password(batch, runtime):
    r = complete(batch, "op", "gown", password=WRONG)
    assert r.status_code == 403 and r.json["code"] == "qualification_missing", r.json
    assert QUAL in r.json["message"] and "not held" in r.json["message"]
    assert r.json["details"]["qualification"] == QUAL and r.json["details"]["status"] == "missing"
    assert failures(runtime, "op") == (0, 0)  # the password was never read
    grant(batch, "op", qualifications.today() + timedelta(days=30))
    assert complete(batch, "op", "gown", password=WRONG).status_code == 401  # now it is read
    assert complete(batch, "op", "gown").status_code == 200


def test_a_witness_without_the_qualification_is_refused_before_their_password(batch, runtime):
    grant(batch, "op", qualifications.today() + timedelta(days=30))
    assert complete(batch, "op", "gown").status_code == 200
    r = complete(batch, "op", "transfer", witness=("op2", WRONG))
    assert r.status_code == 403 and r.json["code"] == "qualification_missing", r.json
    assert r.json["details"]["as"] == "witness" and r.json["details"]["username"] == "op2"
    assert "op2 may not witness" in r.json["message"]
    assert failures(runtime, "op2") == (0, 0) and failures(runtime, "op") == (0, 0)
    grant(batch, "op2", qualifications.today() + timedelta(days=30))
    r = complete(batch, "op", "transfer", witness=("op2", PASSWORD))
    assert r.status_code == 200, r.json
    assert [s["username"] for s in r.json["step"]["signatures"]] == ["op", "op2"]


def test_an_expiry_during_the_batch_takes_effect_at_the_next_step(batch, runtime, monkeypatch):
    today = qualifications.today()
    grant(batch, "op", today)  # valid through today
    grant(batch, "op2", today + timedelta(days=30))
    assert complete(batch, "op", "gown").status_code == 200
    monkeypatch.setattr(qualifications, "today", lambda: today + timedelta(days=1))  # midnight passes
    r = complete(batch, "op", "transfer", witness=("op2", PASSWORD))
    assert r.status_code == 403 and r.json["code"] == "qualification_missing"
    assert f"needs {QUAL} (expired {today.isoformat()})" in r.json["message"]
    assert r.json["details"]["valid_until"] == today.isoformat() and r.json["details"]["status"] == "expired"
    mine = {t["bpmn_id"]: t for t in batch.get("/api/tasks", headers=batch.auth["op"]).json}
    assert mine["transfer"]["blocked"] == f"needs {QUAL} (expired {today.isoformat()})"
    # the supervisor (a qualified operator stand-in) is not affected by op's expiry
    grant(batch, "sv", today + timedelta(days=30))
    r = complete(batch, "sv", "transfer", witness=("op2", PASSWORD))
    assert r.status_code == 200, r.json


def test_the_step_path_checks_it_again_without_the_api(batch, runtime):
    """The engine refuses it under the batch lock too (a caller that skips the early check)."""
    tid = task_id(batch, "gown")
    op = Person("op", "Op", ("operator",))
    with pytest.raises(BatchlineError) as exc:
        batches.complete_task(runtime, "AS-1", tid, DATA, user="op", signer=op, actor=op)
    assert exc.value.code == "qualification_missing"
    grant(batch, "op", qualifications.today() + timedelta(days=1))
    assert batches.complete_task(runtime, "AS-1", tid, DATA, user="op", signer=op, actor=op).status == 200


def test_my_tasks_shows_why_a_task_is_not_mine_yet(batch, runtime):
    mine = batch.get("/api/tasks", headers=batch.auth["op"]).json
    (gown,) = [t for t in mine if t["bpmn_id"] == "gown"]
    assert gown["blocked"] == f"needs {QUAL} (not held)" and gown["qual"] == [QUAL]
    grant(batch, "op", qualifications.today() + timedelta(days=3))
    (gown,) = [t for t in batch.get("/api/tasks", headers=batch.auth["op"]).json if t["bpmn_id"] == "gown"]
    assert gown["blocked"] is None
    r = batch.post(
        "/api/people/op/qualifications/revoke",
        json={"qualification": QUAL, "reason": "retraining", "signature": {"username": "tr", "password": PASSWORD}},
        headers=batch.auth["tr"],
    )
    assert r.status_code == 200, r.json
    (gown,) = [t for t in batch.get("/api/tasks", headers=batch.auth["op"]).json if t["bpmn_id"] == "gown"]
    assert gown["blocked"] == f"needs {QUAL} (revoked)"
    assert complete(batch, "op", "gown").json["code"] == "qualification_missing"


def test_a_task_without_qual_needs_no_qualification(batch, runtime):
    for who in ("op", "op2"):
        grant(batch, who, qualifications.today() + timedelta(days=3))
    assert complete(batch, "op", "gown").status_code == 200
    assert complete(batch, "op", "transfer", witness=("op2", PASSWORD)).status_code == 200
    r = batch.post(
        "/api/people/op/qualifications/revoke",
        json={"qualification": QUAL, "reason": "x", "signature": {"username": "tr", "password": PASSWORD}},
        headers=batch.auth["tr"],
    )
    assert r.status_code == 200
    assert complete(batch, "op", "label").status_code == 200  # label names no qual
