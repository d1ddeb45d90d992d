"""Every exception source raises through ``engine.quality.exceptions.raise_in``: the
exception has the right category, severity, value and limits, and the batch's exception
list (what GET /api/batches/{id}/exceptions serves) shows it. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import batches, jobs
from engine.batches import events
from engine.errors import Conflict, InvalidInput, RecipeInvalid
from engine.models import Job, utcnow
from engine.users import Person
from engine.vocabulary import JobKind, JobState
from tests.engine.engine_helpers import complete, ready, run_jobs_until
from tests.quality.recipes import CHARGE_FORM, critical_service_bpmn, due_bpmn
from tests.support import approved_recipe


def _load_due(rt, due: str = "PT2H"):
    return approved_recipe(rt, {"late.bpmn": due_bpmn(due)}, forms={"charge_form": CHARGE_FORM}, user="qa.lead")


def _step_due_jobs(rt):
    with rt.transaction() as s:
        rows = s.scalars(select(Job).where(Job.kind == JobKind.STEP_DUE))
        return [(j.id, j.task_id, j.state, dict(j.payload)) for j in rows]


def _make_due_now(rt):
    """As if the task became ready 2 h 30 min ago: its due time passed half an hour ago."""
    past = utcnow() - timedelta(minutes=30)
    with rt.transaction() as s:
        for job in s.scalars(select(Job).where(Job.kind == JobKind.STEP_DUE)):
            job.due_at = past
            job.payload = {**job.payload, "due_at": past.isoformat()}


def _by_category(rt, batch_id, category):
    return [e for e in batches.exceptions(rt, batch_id) if e["category"] == category]


# --- 1. late or overdue step ------------------------------------------------------------


def test_a_step_not_done_by_its_due_time_raises_step_late_once(rt):
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "LT-1", user="sup.sam")
    ((job_id, task_id, state, payload),) = _step_due_jobs(rt)
    assert state == JobState.PENDING and payload["due"] == "PT2H" and task_id == ready(rt, "LT-1")["weigh"]["id"]
    jobs.run_due(rt)
    assert _by_category(rt, "LT-1", "step.late") == []  # not due yet: two hours from now
    _make_due_now(rt)
    run_jobs_until(rt, lambda: bool(_by_category(rt, "LT-1", "step.late")))
    (late,) = _by_category(rt, "LT-1", "step.late")
    assert late["source"] == "timer" and late["raised_by"] == "system"
    assert late["limits"] == {"due": "PT2H"}
    assert 29 <= late["value"] <= 31  # minutes overdue
    assert late["details"]["bpmn_id"] == "weigh" and late["details"]["task_id"] == task_id
    assert late["severity"] == "minor" and late["status"] == "open" and late["details"]["critical"] is False
    # the job ran once and is done; running it again (a retried job) raises nothing more
    batches.lateness.step_due(rt, "LT-1", task_id, payload)
    assert len(_by_category(rt, "LT-1", "step.late")) == 1


def test_a_step_completed_in_time_raises_nothing(rt):
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "LT-2", user="sup.sam")
    complete(rt, "LT-2", "weigh", {"mass": 1})
    _make_due_now(rt)
    jobs.run_due(rt)
    assert [state for _, _, state, _ in _step_due_jobs(rt)] == [JobState.DONE]
    assert _by_category(rt, "LT-2", "step.late") == []


@pytest.mark.parametrize("due", ["2 hours", "PT", "P1M", "PT0S", "P1Y", "PT1.5H", "-PT1H"])
def test_an_invalid_due_is_refused_at_import_naming_the_task(rt, due):
    with pytest.raises(RecipeInvalid) as err:
        _load_due(rt, due)
    (problem,) = [p for p in err.value.problems if p.code == "due_invalid"]
    assert problem.element_id == "weigh" and repr(due.strip()) in problem.message
    assert any(word in problem.message for word in ("ISO-8601", "zero", "year"))


# --- 2. record an event -----------------------------------------------------------------

OP = Person("op.anna", "Anna Operator", ("operator",))


@pytest.mark.parametrize("kind", events.EVENT_KINDS)
def test_an_operator_records_an_event_of_each_kind(rt, kind):
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "EV-1", user="sup.sam")
    task_id = ready(rt, "EV-1")["weigh"]["id"]
    out = events.record_event(rt, "EV-1", kind=kind, description="label torn\nsecond line", task_id=task_id, person=OP)
    assert out.status == 201
    (exc,) = _by_category(rt, "EV-1", f"event.{kind}")
    assert exc["id"] == out.body["exception"]["id"]
    assert exc["source"] == "operator" and exc["raised_by"] == "op.anna"
    assert exc["details"]["description"] == "label torn\nsecond line" and exc["details"]["task_id"] == task_id
    assert "label torn" in exc["message"] and "second line" not in exc["message"]


@pytest.mark.parametrize(
    "kw, code",
    [
        ({"kind": "gossip", "description": "x"}, "kind_invalid"),
        ({"kind": 3, "description": "x"}, "kind_invalid"),
        ({"kind": "process", "description": "   "}, "description_invalid"),
        ({"kind": "process", "description": None}, "description_invalid"),
        ({"kind": "process", "description": "x" * 2001}, "description_invalid"),
        ({"kind": "process", "description": "bell \x07"}, "description_invalid"),
        ({"kind": "process", "description": "x", "step_seq": 99}, "step_seq_invalid"),
        ({"kind": "process", "description": "x", "step_seq": True}, "step_seq_invalid"),
    ],
)
def test_a_bad_event_is_refused_and_nothing_is_raised(rt, kw, code):
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "EV-2", user="sup.sam")
    with pytest.raises(InvalidInput) as err:
        events.record_event(rt, "EV-2", person=OP, **kw)
    assert err.value.code == code
    assert batches.exceptions(rt, "EV-2") == []


def test_an_event_replayed_with_its_key_is_raised_once(rt):
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "EV-3", user="sup.sam")
    first = events.record_event(rt, "EV-3", kind="safety", description="spill", person=OP, idempotency_key="k1")
    again = events.record_event(rt, "EV-3", kind="safety", description="spill", person=OP, idempotency_key="k1")
    assert again.replayed and again.body == first.body
    assert len(batches.exceptions(rt, "EV-3")) == 1
    with pytest.raises(InvalidInput) as err:
        events.record_event(rt, "EV-3", kind="safety", description="other", person=OP, idempotency_key="k1")
    assert err.value.code == "idempotency_key_reused"


# --- 4. correction after signing --------------------------------------------------------


def test_a_correction_of_a_signed_step_raises_correction_after_signing_for_that_step(rt):
    from engine.models import Equipment, MaterialLot
    from engine.quality import release

    with rt.transaction() as s:
        s.add(MaterialLot(lot_id="LOT-1", material="MED-1", status="released"))
        s.add(MaterialLot(lot_id="LOT-2", material="MED-1", status="released"))
        s.add(Equipment(equipment_id="V-1", equipment_class="Vessel", status="clean"))
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "CR-1", user="sup.sam")
    complete(rt, "CR-1", "weigh", {})
    anna = Person("op.anna", "Anna Operator", ("operator",))
    complete(rt, "CR-1", "charge", {"media_lot": "LOT-1", "vessel": "V-1", "volume_l": 10}, signer=anna)
    # which lot was used is not corrected in place (genealogy: engine.lot_corrections)
    with pytest.raises(Conflict) as refused:
        batches.correct_step(rt, "CR-1", 2, "media_lot", "LOT-2", reason="scanned the wrong label", signer=anna)
    assert refused.value.code == "lot_movement_not_correctable"
    batches.correct_step(rt, "CR-1", 2, "volume_l", 12, reason="read the wrong gauge", signer=anna)
    (exc,) = _by_category(rt, "CR-1", "correction.after_signing")
    assert exc["step_seq"] == 2 and exc["parameter"] == "volume_l"
    assert exc["value"] == {"old": "10", "new": "12"}  # as the form records numbers: decimal text
    assert exc["details"]["reason"] == "read the wrong gauge" and exc["details"]["corrector"] == "op.anna"
    assert exc["details"]["signed"] is True
    # the volume is not critical: the rule's severity (minor under the default rules)
    assert exc["details"]["critical"] is False and exc["severity"] == "minor"
    assert exc["source"] == "correction" and exc["status"] == "open"
    # the release check sees the correction as unreviewed, and the exception blocks too
    kinds = {b["kind"] for b in release.blocking(rt, "CR-1")["blocking"]}
    assert "correction" in kinds


# --- 5. incident ------------------------------------------------------------------------


@pytest.mark.parametrize("critical", [True, False])
def test_a_job_out_of_retries_raises_an_incident_exception_critical_when_its_task_is(rt, critical):
    def erp(call):
        raise RuntimeError("connection refused by erp.example:443")

    rt.connectors.register("erp", erp)
    approved_recipe(rt, {"inc.bpmn": critical_service_bpmn(critical)}, user="qa.lead")
    batches.start_batch(rt, "erp_post", "IN-1", user="sup.sam")
    run_jobs_until(rt, lambda: bool(jobs.incidents(rt)))
    (incident,) = jobs.incidents(rt)
    (exc,) = _by_category(rt, "IN-1", "incident")
    assert exc["source"] == "incident" and exc["details"]["incident"] == incident["id"]
    assert exc["details"]["critical"] is critical
    assert "connection refused" in exc["message"]
    assert exc["limits"]["max_attempts"] == exc["value"]["attempts"]
    if critical:
        assert exc["severity"] == "critical"
    else:
        assert exc["severity"] != "critical"


# --- 6. equipment alarm -----------------------------------------------------------------


def test_an_equipment_alarm_raises_equipment_alarm(rt):
    _load_due(rt)
    batches.start_batch(rt, "late_steps", "AL-1", user="sup.sam")
    out = events.record_alarm(
        rt,
        "AL-1",
        source="BR-2000-01",
        tag="TIC-101.PV",
        message="temperature high",
        value=38.2,
        limits={"upper": 37.5},
        severity="critical",
        reporter="svc.scada",
    )
    (exc,) = _by_category(rt, "AL-1", "equipment.alarm")
    assert exc["id"] == out.body["exception"]["id"]
    assert exc["source"] == "equipment" and exc["raised_by"] == "svc.scada"
    assert exc["value"] == 38.2 and exc["limits"] == {"upper": 37.5} and exc["parameter"] == "TIC-101.PV"
    assert exc["severity"] == "critical" and exc["details"]["severity_hint"] == "critical"
