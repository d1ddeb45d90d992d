"""Qualifications in the engine: grant, renew, revoke and expiry as append-only signed
rows; who may record them; names checked at recipe import. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from engine import audit, qualifications, recipes, users
from engine.bpmn import RecipeInvalid
from engine.errors import BatchlineError
from engine.models import AuditEvent, Qualification
from engine.users import Person
from tests.quals.recipe import FORMS, bpmn
from tests.support import PASSWORD

TRAINER = Person("tr.ann", "Ann Trainer", ("trainer",))
QA = Person("qa.bob", "Bob QA", ("qa",))


@pytest.fixture
def people(rt):
    for name, roles in (("op.x", ["operator"]), ("tr.ann", ["trainer"]), ("qa.bob", ["qa"])):
        users.create_user(rt, name, name, roles, by="test", password=PASSWORD)
    return rt


def test_grant_renew_revoke_and_the_current_state(people, monkeypatch):
    rt = people
    today = qualifications.today()
    first = qualifications.grant(rt, "op.x", "aseptic-gowning", today + timedelta(days=10), signer=TRAINER)
    assert first.status == 201 and first.body["meaning"] == "Qualified" and first.body["granted_by"] == "tr.ann"
    record = qualifications.list_for(rt, "op.x")
    assert record["qualifications"] == [
        {
            "qualification": "aseptic-gowning",
            "status": "current",
            "current": True,
            "valid_until": (today + timedelta(days=10)).isoformat(),
            "granted_by": "tr.ann",
            "signed_at": first.body["signed_at"],
        }
    ]
    # a renewal is a new row; the newest decides
    qualifications.grant(rt, "op.x", "aseptic-gowning", today + timedelta(days=400), signer=QA, reason="TR-17")
    record = qualifications.list_for(rt, "op.x")
    assert record["qualifications"][0]["valid_until"] == (today + timedelta(days=400)).isoformat()
    assert len(record["history"]) == 2
    # the day after valid_until it is expired, not gone
    monkeypatch.setattr(qualifications, "today", lambda: today + timedelta(days=401))
    assert qualifications.list_for(rt, "op.x")["qualifications"][0]["status"] == "expired"
    monkeypatch.setattr(qualifications, "today", lambda: today + timedelta(days=400))
    assert qualifications.list_for(rt, "op.x")["qualifications"][0]["status"] == "current"  # through its last day
    revoked = qualifications.revoke(rt, "op.x", "aseptic-gowning", signer=TRAINER, reason="failed media fill")
    assert revoked.body["action"] == "revoked" and revoked.body["meaning"] == "Revoked"
    record = qualifications.list_for(rt, "op.x")
    assert record["qualifications"][0]["status"] == "revoked" and len(record["history"]) == 3
    with pytest.raises(BatchlineError) as exc:
        qualifications.revoke(rt, "op.x", "aseptic-gowning", signer=TRAINER, reason="again")
    assert exc.value.code == "qualification_not_held"


def test_every_entry_is_audited_bound_and_append_only(people):
    rt = people
    qualifications.grant(rt, "op.x", "aseptic-gowning", qualifications.today() + timedelta(days=5), signer=TRAINER)
    with rt.transaction() as s:
        events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "qualification.grant")))
        assert [(e.user, e.object_id, e.field) for e in events] == [("tr.ann", "op.x", "aseptic-gowning")]
    with rt.transaction() as s:
        result = audit.verify(s)
    assert result.ok, result.problems
    assert result.record_rows >= 1  # the qualification row is checked against its entry
    with pytest.raises(Exception, match="append_only"):
        with rt.transaction() as s:
            s.execute(text("UPDATE qualification SET valid_until = NULL"))
    with pytest.raises(Exception, match="append_only"):
        with rt.transaction() as s:
            s.execute(text("DELETE FROM qualification"))


@pytest.mark.parametrize(
    "signer, username, code",
    [
        (Person("op.y", "Op Y", ("operator",)), "op.x", "forbidden"),  # operators record nothing
        (Person("sv.y", "Sv Y", ("supervisor",)), "op.x", "forbidden"),
        (Person("adm", "Adm", ("admin",)), "op.x", "forbidden"),
        (Person("tr.ann", "Ann", ("trainer", "operator")), "tr.ann", "self_qualification"),
        (TRAINER, "nobody.here", "user_not_found"),
    ],
)
def test_who_may_record(people, signer, username, code):
    with pytest.raises(BatchlineError) as exc:
        qualifications.grant(people, username, "aseptic-gowning", qualifications.today(), signer=signer)
    assert exc.value.code == code
    with people.transaction() as s:
        assert s.scalar(select(Qualification.id)) is None


@pytest.mark.parametrize(
    "name, until, code",
    [
        ("Aseptic Gowning", "2030-01-01", "qualification_invalid"),
        ("x" * 65, "2030-01-01", "qualification_invalid"),
        ("a;DROP TABLE user", "2030-01-01", "qualification_invalid"),
        ("-gown", "2030-01-01", "qualification_invalid"),
        (12, "2030-01-01", "qualification_invalid"),
        ("gown", "yesterday", "valid_until_invalid"),
        ("gown", "2001-01-01", "valid_until_invalid"),
        ("gown", "9999-12-31", "valid_until_invalid"),
        ("gown", 20300101, "valid_until_invalid"),
    ],
)
def test_hostile_names_and_dates_are_refused(people, name, until, code):
    with pytest.raises(BatchlineError) as exc:
        qualifications.grant(people, "op.x", name, until, signer=TRAINER)
    assert exc.value.code == code


def test_a_repeated_grant_with_its_key_is_answered_once(people):
    until = qualifications.today() + timedelta(days=30)
    a = qualifications.grant(people, "op.x", "gown", until, signer=TRAINER, idempotency_key="k-1")
    b = qualifications.grant(people, "op.x", "gown", until, signer=TRAINER, idempotency_key="k-1")
    assert b.replayed and b.body == a.body
    with pytest.raises(BatchlineError) as exc:
        qualifications.grant(people, "op.x", "gown", until + timedelta(days=1), signer=TRAINER, idempotency_key="k-1")
    assert exc.value.code == "idempotency_key_reused"
    with people.transaction() as s:
        assert len(list(s.scalars(select(Qualification.id)))) == 1


@pytest.mark.parametrize("qual", ["Aseptic Gowning", "gown,,cleanroom", "a" * 70])
def test_a_recipe_naming_a_malformed_qualification_is_refused_at_import(rt, qual):
    with pytest.raises(RecipeInvalid) as err:
        recipes.import_recipe(rt, {"aseptic.bpmn": bpmn(qual)}, forms=FORMS, user="qa.lead")
    problems = [p for p in err.value.problems if p.code == "qual_invalid"]
    assert {p.element_id for p in problems} == {"gown", "transfer"}
    assert "qualification name" in problems[0].message


def test_a_recipe_naming_qualifications_imports(rt):
    recipes.import_recipe(rt, {"aseptic.bpmn": bpmn("aseptic-gowning, grade-b.entry")}, forms=FORMS, user="qa.lead")
