"""Models are GMP records: a training run has an evaluation report, its models score only
after a QA person other than the trainer approves it with an e-signature, once;
retraining makes new pending versions while the approved ones keep scoring."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select, text

from analytics import catalogue, model_review, training
from analytics.findings import findings
from analytics.history import write_history
from analytics.jobs import install
from engine import audit, jobs
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import AuditEvent, TrendModel
from engine.permissions import Forbidden
from tests.support import person

from .trend_recipe import RECIPE, history, import_trend_recipe, live_step, train_and_approve, trained_plant


def _plant(rt, n: int = 20):
    import_trend_recipe(rt)
    write_history(rt, RECIPE, history(n), user="demo")


def _scoring(rt) -> list[TrendModel]:
    with rt.transaction() as s:
        return catalogue.active_models(s, RECIPE, "weigh")


def test_a_training_run_is_pending_with_its_report(rt):
    _plant(rt)
    result = training.train(rt, RECIPE, user="qa.lead")
    assert result["status"] == "pending" and isinstance(result["training_id"], int)
    assert _scoring(rt) == []  # nothing scores before QA approves
    assert catalogue.list_models(rt, RECIPE) == []

    run = model_review.get_training(rt, result["training_id"])
    assert run["status"] == "pending" and run["trained_by"] == "qa.lead" and run["decision"] is None
    report = run["report"]
    assert len(report["batches"]) == 20 and report["released_only"] is True
    models = {(m["parameter"], m["kind"]): m for m in report["models"]}
    mass = models[("mass_g", "UnivariateMonitor")]
    assert mass["features"] == [{"step": "weigh", "parameter": "mass_g", "unit": "g", "kind": "value"}]
    assert mass["training_batches"] == 20 and mass["training_batch_ids"][0] == "H-001"
    assert mass["limits"]["lower"] < 100 < mass["limits"]["upper"]
    newest = mass["evaluation"]["newest"]
    assert newest["held_out_batches"] == 5 and newest["held_out_batch_ids"] == [f"H-0{i}" for i in range(16, 21)]
    assert 0 <= newest["false_alarm_rate"] <= 1 and newest["false_alarms"] == len(newest["false_alarm_batch_ids"])
    lobo = mass["evaluation"]["cross_validated"]
    assert lobo["held_out"] == 20 and lobo["false_alarm_rate"] is not None
    duration = models[(None, "DurationMonitor")]
    assert duration["features"][0]["kind"] == "duration" and duration["features"][0]["unit"] == "min"
    assert report["summary"]["models"] == 3 and report["summary"]["evaluated"] == 3
    assert not any(m["active"] for m in report["models"])


def test_held_out_false_alarms_are_measured_not_assumed(rt):
    """A shift in the newest batches shows up as held-out false alarms in the report
    (the limits were fitted without them)."""
    import_trend_recipe(rt)
    specs = history(20)
    for b in specs[-5:]:
        b["steps"][0].values["mass_g"] = "108.00"
    write_history(rt, RECIPE, specs, user="demo")
    result = training.train(rt, RECIPE, user="qa.lead")
    report = model_review.get_training(rt, result["training_id"])["report"]
    mass = next(m for m in report["models"] if m["parameter"] == "mass_g")
    assert mass["evaluation"]["newest"]["false_alarm_rate"] == 1.0
    assert report["summary"]["worst_false_alarm_rate"] == 1.0


def test_not_enough_history_is_reported_per_parameter(rt):
    import_trend_recipe(rt)
    specs = history(12)
    for b in specs[:6]:
        del b["steps"][0].values["temp_c"]  # temperature recorded on only 6 batches
    write_history(rt, RECIPE, specs, user="demo")
    result = training.train(rt, RECIPE, user="qa.lead")
    report = model_review.get_training(rt, result["training_id"])["report"]
    assert [(m["parameter"], m["kind"]) for m in report["models"]] == [
        (None, "DurationMonitor"),
        ("mass_g", "UnivariateMonitor"),
    ]
    assert report["not_enough_history"] == [
        {"bpmn_id": "weigh", "parameter": "temp_c", "reason": "6 values, at least 8 needed"}
    ]


def test_approval_activates_audits_and_scores(rt):
    _plant(rt)
    result = training.train(rt, RECIPE, user="qa.lead")
    decided = model_review.approve(rt, result["training_id"], signer=person("qa.rita"), reason="report checked")
    assert decided["status"] == "approved"
    assert decided["decision"]["meaning"] == "Approved" and decided["decision"]["printed_name"] == "Qa.Rita"
    assert len(_scoring(rt)) == 3
    assert {m["training_id"] for m in catalogue.list_models(rt, RECIPE)} == {result["training_id"]}
    with rt.transaction() as s:
        entry = s.scalars(select(AuditEvent).where(AuditEvent.action == "analytics.training.approved")).one()
        new = json.loads(entry.new)
        assert entry.user == "qa.rita" and entry.object_id == str(result["training_id"]) and entry.reason
        assert new["signature"] == {"username": "qa.rita", "printed_name": "Qa.Rita", "meaning": "Approved"}
        assert new["report_hash"] == decided["report_hash"] and len(new["models"]) == 3
        assert audit.verify(s).ok


def test_the_trainer_cannot_approve_and_only_qa_decides(rt):
    _plant(rt)
    run = training.train(rt, RECIPE, user="qa.lead")["training_id"]
    with pytest.raises(Forbidden) as refused:
        model_review.approve(rt, run, signer=person("qa.lead"), reason="mine")
    assert refused.value.code == "trainer_cannot_approve"
    with pytest.raises(Forbidden):
        model_review.approve(rt, run, signer=person("sup.carl"), reason="not QA")
    with pytest.raises(InvalidInput):
        model_review.approve(rt, run, signer=person("qa.rita"), reason="  ")
    with pytest.raises(InvalidInput):
        model_review.approve(rt, run, signer=person("qa.rita"), reason="x" * 2001)
    with pytest.raises(NotFound):
        model_review.approve(rt, 999999, signer=person("qa.rita"), reason="none")
    assert _scoring(rt) == []


def test_a_decision_is_made_once(rt):
    _plant(rt)
    run = training.train(rt, RECIPE, user="qa.lead")["training_id"]
    model_review.approve(rt, run, signer=person("qa.rita"), reason="ok")
    for act in (model_review.approve, model_review.reject):
        with pytest.raises(Conflict) as again:
            act(rt, run, signer=person("qa.sofia"), reason="again")
        assert again.value.code == "training_decided"
    with rt.transaction() as s:
        assert len(list(s.scalars(select(AuditEvent).where(AuditEvent.action.like("analytics.training.%"))))) == 1


def test_concurrent_approvals_one_wins(rt):
    _plant(rt)
    run = training.train(rt, RECIPE, user="qa.lead")["training_id"]
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def approve(who):
        start.wait()
        try:
            model_review.approve(rt, run, signer=person(who), reason="at once")
            outcomes.append("approved")
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=approve, args=(w,)) for w in ("qa.rita", "qa.sofia")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["approved", "training_decided"]
    assert len(_scoring(rt)) == 3


def test_retraining_keeps_the_approved_models_scoring_until_the_new_run_is_approved(rt):
    first = trained_plant(rt)
    v1 = {m.id for m in _scoring(rt)}
    second = training.train(rt, RECIPE, user="qa.other")
    assert {m.id for m in _scoring(rt)} == v1  # pending: version 1 goes on scoring
    with pytest.raises(Conflict) as older:
        model_review.approve(rt, first["training_id"], signer=person("qa.x"), reason="old")
    assert older.value.code == "training_decided"
    third = training.train(rt, RECIPE, user="qa.other")
    with pytest.raises(Conflict) as overtaken:  # run 2 is older than run 3
        model_review.approve(rt, second["training_id"], signer=person("qa.rita"), reason="old")
    assert overtaken.value.code == "training_superseded"
    model_review.reject(rt, third["training_id"], signer=person("qa.rita"), reason="too few batches")
    assert {m.id for m in _scoring(rt)} == v1  # rejected: never scores
    model_review.approve(rt, second["training_id"], signer=person("qa.rita"), reason="report checked")
    now = _scoring(rt)
    assert {m.version for m in now} == {2} and not ({m.id for m in now} & v1)
    statuses = {r["id"]: r["status"] for r in model_review.list_trainings(rt, RECIPE)}
    assert statuses == {
        first["training_id"]: "approved",
        second["training_id"]: "approved",
        third["training_id"]: "rejected",
    }


def test_a_finding_leads_to_its_model_and_approval(rt):
    trained_plant(rt)
    live_step(rt, "B-HIGH", {"mass_g": 106, "temp_c": 20.0})
    jobs.run_due(rt)
    finding = findings(rt, RECIPE)["findings"][0]
    model = model_review.get_model(rt, finding["details"]["model_id"])
    assert model["version"] == finding["details"]["model_version"]
    assert model["training"]["status"] == "approved" and model["training"]["decision"]["username"] == "qa.approver"


def test_pending_models_do_not_score(rt):
    _plant(rt)
    training.train(rt, RECIPE, user="qa.lead")
    install(rt)
    from engine import users

    users.create_user(rt, "op.trend", "Trend Operator", ["operator"], by="test", password="trend-operator-pw-1")
    live_step(rt, "B-HIGH", {"mass_g": 106, "temp_c": 20.0})
    jobs.run_due(rt)
    assert findings(rt, RECIPE)["findings"] == []


def test_runs_and_decisions_are_append_only(rt):
    _plant(rt)
    run = train_and_approve(rt, RECIPE)["training_id"]
    for statement in (
        "UPDATE trend_training_decision SET decision = 'rejected'",
        "DELETE FROM trend_training_decision",
        "UPDATE trend_training SET report_hash = 'x'",
    ):
        with pytest.raises(Exception, match="append_only"):
            with rt.transaction() as s:
                s.execute(text(statement))
    assert model_review.get_training(rt, run)["status"] == "approved"


class _NotEnoughHistory(ValueError):
    """Stands in for the monitors' ``NotEnoughHistory`` (analytics.base, when present)."""


def test_a_monitor_that_cannot_hold_its_rate_is_reported_not_trained(rt, monkeypatch):
    from analytics import model_report
    from analytics.univariate import UnivariateMonitor

    def refuse(self, X, y=None, groups=None):
        raise _NotEnoughHistory(f"{len(X)} batches cannot hold a 0.27 % false-alarm rate; 370 are needed")

    monkeypatch.setattr(model_report, "NOT_ENOUGH", (_NotEnoughHistory,))
    monkeypatch.setattr(UnivariateMonitor, "fit", refuse)
    _plant(rt)
    result = training.train(rt, RECIPE, user="qa.lead")
    report = model_review.get_training(rt, result["training_id"])["report"]
    assert [m["kind"] for m in report["models"]] == ["DurationMonitor"]
    assert {(s["parameter"], s["reason"].split(";")[0]) for s in report["not_enough_history"]} == {
        ("mass_g", "20 batches cannot hold a 0.27 % false-alarm rate"),
        ("temp_c", "20 batches cannot hold a 0.27 % false-alarm rate"),
    }


def test_the_monitors_own_held_out_statistics_are_used_when_kept(rt, monkeypatch):
    import numpy as np

    from analytics.duration import DurationMonitor

    fit = DurationMonitor.fit

    def fit_with_cv(self, X, y=None, groups=None):
        fit(self, X)
        self.cv_statistic_ = np.r_[np.full(len(X) - 2, 0.5), 5.0, 5.0]  # two held-out rows beyond the limit
        return self

    monkeypatch.setattr(DurationMonitor, "fit", fit_with_cv)
    _plant(rt)
    result = training.train(rt, RECIPE, user="qa.lead")
    report = model_review.get_training(rt, result["training_id"])["report"]
    duration = next(m for m in report["models"] if m["kind"] == "DurationMonitor")
    cv = duration["evaluation"]["cross_validated"]
    assert cv["method"].startswith("the monitor's held-out statistics") and cv["false_alarms"] == 2
    assert cv["false_alarm_rate"] == 0.1
