"""One correction reaches every later use of the value (the GMP rule, ``engine.record``):
the batch record, the steps API, the training of the trend models and the scoring of a
later step against history - while the original value stays in the record.

The history is built so that each use can tell the corrected value from the original:
16 earlier batches weighed 99.0-99.7 g, then 100.6-101.0 g, except one weighing recorded
as 85.00 g (a transcription error) and corrected to 100.80 g through the engine.

* training: the robust centre is the median, 100.15 g as corrected, 99.65 g as recorded;
* scoring: a new batch at 100.70 g is the 9th point in a row above the centre (rule 2)
  only if the corrected 100.80 g is in the history; the recorded 85.00 g breaks the run.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from analytics import UnivariateMonitor, catalogue, training
from analytics.batch_record import as_number, recent_values, step_points
from analytics.history import HistoryStep, write_history
from analytics.jobs import install
from engine import batches, jobs, users
from engine.models import TrendModel, utcnow
from web.app import create_app

from .trend_recipe import OPERATOR, RECIPE, import_trend_recipe, live_step

LOW = [99.0, 99.4, 99.2, 99.6, 99.1, 99.5, 99.3, 99.7]
HIGH = [100.6, 100.9, 100.7, 85.0, 101.0, 100.65, 100.85, 100.75]
WRONG, RIGHT = "85.00", 100.8
CORRECTED_BATCH = "C-012"  # the batch whose weighing is corrected (the 4th of HIGH)


def _history():
    rng = np.random.default_rng(11)
    start = utcnow() - timedelta(days=40)
    return [
        {
            "batch_id": f"C-{i + 1:03d}",
            "started_at": start + timedelta(days=2 * i),
            "steps": [
                HistoryStep(
                    "weigh",
                    {"mass_g": f"{mass:.2f}", "temp_c": f"{20 + 0.3 * rng.standard_normal():.2f}"},
                    float(30 * np.exp(0.1 * rng.standard_normal())),
                )
            ],
        }
        for i, mass in enumerate(LOW + HIGH)
    ]


def _fitted(masses):
    return UnivariateMonitor(alpha=training.ALPHA).fit(np.array(masses)[:, None]).limits()


def test_one_correction_reaches_record_api_training_and_scoring(rt):
    import_trend_recipe(rt)
    # not reviewed: a reviewed batch record can no longer be corrected
    write_history(rt, RECIPE, _history(), reviewed=False)
    users.create_user(rt, "sup.fix", "Sup Fix", ["supervisor"], by="test", password="sup-fix-password-1")
    users.create_user(rt, OPERATOR, "Trend Operator", ["operator"], by="test", password="trend-operator-pw-1")
    assert batches.steps(rt, CORRECTED_BATCH)[0]["values"]["mass_g"] == WRONG

    batches.correct_step(
        rt,
        CORRECTED_BATCH,
        1,
        "mass_g",
        RIGHT,
        reason="transcription error: the scale printout reads 100.80 g",
        signer=users.person(rt, "sup.fix"),
    )

    # the batch record: corrected value current, the original kept
    step = batches.steps(rt, CORRECTED_BATCH)[0]
    assert as_number(step["current_values"]["mass_g"]) == RIGHT
    assert step["values"]["mass_g"] == WRONG
    assert [(c["field"], c["old"]) for c in step["corrections"]] == [("mass_g", WRONG)]

    # the steps API
    token = users.create_token(rt, "sup.fix", "tests", by="test")
    client = create_app(runtime=rt).test_client()
    r = client.get(f"/api/batches/{CORRECTED_BATCH}/steps", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.json
    assert as_number(r.json[0]["current_values"]["mass_g"]) == RIGHT and r.json[0]["values"]["mass_g"] == WRONG

    # training: the model is fitted on the values as corrected
    corrected = [RIGHT if m == float(WRONG) else m for m in LOW + HIGH]
    recorded = LOW + HIGH
    assert _fitted(corrected)["centre"] != pytest.approx(_fitted(recorded)["centre"])  # the test can tell
    training.train(rt, RECIPE, user="qa.lead", released_only=False)
    model = {m["parameter"]: m for m in catalogue.list_models(rt, RECIPE)}["mass_g"]
    assert model["training_batches"] == 16
    # 16 batches: the centre is the mean (robust centres need 30), of the corrected values
    assert model["limits"]["centre"] == pytest.approx(float(np.mean(corrected)))
    for key in ("centre", "lower", "upper", "scale"):
        assert model["limits"][key] == pytest.approx(_fitted(corrected)[key][0])
    with rt.transaction() as s:
        points = {p.batch_id: p for p in step_points(s, RECIPE, bpmn_id="weigh")}
        assert as_number(points[CORRECTED_BATCH].values["mass_g"]) == RIGHT
        card = s.scalars(select(TrendModel).where(TrendModel.parameter == "mass_g", TrendModel.active.is_(True))).one()
        assert CORRECTED_BATCH in card.card["training_batch_ids"]

    # scoring: a later step is scored against the history as corrected
    install(rt)
    live_step(rt, "C-NEW", {"mass_g": 100.70, "temp_c": 20.0})
    with rt.transaction() as s:
        new = next(p for p in step_points(s, RECIPE, bpmn_id="weigh") if p.batch_id == "C-NEW")
        history = [as_number(v["mass_g"]) for v in recent_values(s, RECIPE, "weigh", 20, before=new)]
    assert history == corrected
    assert jobs.run_due(rt) >= 1
    raised = batches.exceptions(rt, "C-NEW")
    rules = {(e["parameter"], e["details"]["rule"]) for e in raised}
    assert ("mass_g", 2) in rules, raised  # 9th in a row above the centre, with 100.80 (not 85.00) in the run
    assert ("mass_g", 1) not in rules
