"""Training from the batch record: per step and numeric parameter a univariate model,
per step a duration model; versioned, audited, stored as model cards (no pickle)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from analytics import UnivariateMonitor, catalogue, dumps, loads, model_review, training
from analytics.history import write_history
from analytics.store import ModelCard
from engine import audit
from engine.errors import NotFound
from engine.models import AuditEvent, TrendModel
from tests.support import person

from .trend_recipe import RECIPE, history, import_trend_recipe, trained_plant


def test_training_from_history(rt):
    result = trained_plant(rt)
    assert result["batches"] == 20 and result["recipe_version"] == 1
    kinds = sorted((m["bpmn_id"], m["parameter"], m["kind"]) for m in result["models"])
    assert kinds == [
        ("weigh", "", "DurationMonitor"),
        ("weigh", "mass_g", "UnivariateMonitor"),
        ("weigh", "temp_c", "UnivariateMonitor"),
    ]
    models = {(m["parameter"], m["kind"]): m for m in catalogue.list_models(rt, RECIPE)}
    mass = models[("mass_g", "UnivariateMonitor")]
    assert mass["critical"] is True and mass["unit"] == "g" and mass["training_batches"] == 20
    assert 99 < mass["limits"]["centre"] < 101 and mass["limits"]["lower"] < 99 < 101 < mass["limits"]["upper"]
    assert mass["limits"]["rules"] == [1, 2, 3, 4]
    duration = models[(None, "DurationMonitor")]
    assert duration["unit"] == "min" and 25 < duration["limits"]["centre"] < 35
    assert models[("temp_c", "UnivariateMonitor")]["critical"] is False


def test_released_only_means_complete_and_reviewed(rt):
    import_trend_recipe(rt)
    write_history(rt, RECIPE, history(12), reviewed=False)
    result = training.train(rt, RECIPE, user="qa.lead")  # nothing reviewed: nothing to learn from
    assert result["models"] == []
    assert result["batches"] == 0
    result = training.train(rt, RECIPE, user="qa.lead", released_only=False)
    assert result["batches"] == 12 and len(result["models"]) == 3


def test_too_little_history_trains_nothing(rt):
    import_trend_recipe(rt)
    write_history(rt, RECIPE, history(5))
    result = training.train(rt, RECIPE, user="qa.lead")
    assert result["models"] == [] and "at least" in result["skipped"][0]["reason"]


def test_retraining_is_versioned_and_audited(rt):
    trained_plant(rt)
    second = training.train(rt, RECIPE, user="qa.other")
    assert {m["version"] for m in second["models"]} == {2}
    # pending: version 1 (approved) keeps scoring until QA approves the new run
    pending = catalogue.list_models(rt, RECIPE, active_only=False)
    assert sorted((m["parameter"] or "", m["version"], m["active"]) for m in pending) == [
        ("", 1, True),
        ("", 2, False),
        ("mass_g", 1, True),
        ("mass_g", 2, False),
        ("temp_c", 1, True),
        ("temp_c", 2, False),
    ]
    model_review.approve(rt, second["training_id"], signer=person("qa.lead"), reason="report reviewed")
    every = catalogue.list_models(rt, RECIPE, active_only=False)
    assert sorted((m["parameter"] or "", m["version"], m["active"]) for m in every) == [
        ("", 1, False),
        ("", 2, True),
        ("mass_g", 1, False),
        ("mass_g", 2, True),
        ("temp_c", 1, False),
        ("temp_c", 2, True),
    ]
    assert {m["trained_by"] for m in every if m["active"]} == {"qa.other"}
    with rt.transaction() as s:
        entries = list(
            s.scalars(select(AuditEvent).where(AuditEvent.action == "analytics.train").order_by(AuditEvent.id))
        )
        assert [(e.user, e.object_id) for e in entries] == [("qa.lead", RECIPE), ("qa.other", RECIPE)]
        assert json.loads(entries[-1].new)["models"] == 3
        demo = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "demo.history")))
        assert len(demo) == 20
        assert audit.verify(s).ok


def test_model_round_trip(rt):
    trained_plant(rt)
    with rt.transaction() as s:
        row = s.scalars(select(TrendModel).where(TrendModel.parameter == "mass_g", TrendModel.active.is_(True))).one()
        card_data = row.card
    text = json.dumps(card_data)
    assert "pickle" not in text.lower()
    card = ModelCard.from_dict(json.loads(text))
    assert card.kind == "UnivariateMonitor" and card.recipe_id == RECIPE and card.step_id == "weigh"
    assert card.parameter_names == ["mass_g"] and len(card.training_batch_ids) == 20
    again = loads(dumps(card))
    X = np.array([[93.0], [100.0], [106.0]])
    assert (card.monitor().predict(X) == again.monitor().predict(X)).all()
    assert list(card.monitor().predict(X)) == [-1, 1, -1]
    values = [float(b["steps"][0].values["mass_g"]) for b in history(20)]
    fresh = UnivariateMonitor(alpha=training.ALPHA).fit(np.array(values)[:, None])
    assert fresh.limits()["upper"] == pytest.approx(card.limits["upper"])


def test_unknown_recipe(rt):
    with pytest.raises(NotFound):
        training.train(rt, "no_such_recipe", user="qa.lead")
