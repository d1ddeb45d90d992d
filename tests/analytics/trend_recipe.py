"""Shared setup for the trend analytics tests (no tests here): a one-step recipe with a
form of two numbers, a controlled history written straight into the batch record, and
a live batch whose step is completed through the real step path."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, timedelta

import numpy as np

import engine.models as models
from analytics import model_review
from analytics.history import HistoryStep, write_history
from analytics.jobs import install
from analytics.training import train
from engine import batches, users
from engine.models import utcnow
from tests.support import approved_recipe, person

RECIPE = "trend_weigh"
BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    targetNamespace="https://batchline.example/tests" id="defs_trend">
  <bpmn:process id="trend_weigh" name="Weigh (trended)" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="weigh" name="Weigh glucose">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formKey" value="weigh_trend"/>
        </spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="weigh"/>
    <bpmn:sequenceFlow id="f2" sourceRef="weigh" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
FORM = {
    "type": "default",
    "id": "weigh_trend",
    "schemaVersion": 16,
    "components": [
        {"id": "Text_1", "type": "text", "text": "Weigh **100 g**.", "properties": {"signatureMeaning": "Performed"}},
        {
            "id": "Field_mass",
            "type": "number",
            "key": "mass_g",
            "label": "Mass",
            "validate": {"required": True},
            "properties": {
                "unit": "g",
                "decimals": "2",
                "hardMin": "0",
                "hardMax": "1000",
                "alertLow": "90",
                "alertHigh": "110",
                "actionLow": "80",
                "actionHigh": "120",
                "critical": "true",
            },
        },
        {
            "id": "Field_temp",
            "type": "number",
            "key": "temp_c",
            "label": "Room temperature",
            "validate": {"required": True},
            "properties": {"unit": "°C", "decimals": "2", "hardMin": "0", "hardMax": "60"},
        },
    ],
}
OPERATOR = "op.trend"


def import_trend_recipe(rt, user: str = "qa.lead"):
    return approved_recipe(rt, {"trend_weigh.bpmn": BPMN}, forms={"weigh_trend": FORM}, user=user, recipe=RECIPE)


def history(n: int = 20, seed: int = 3, *, last_above: int = 0, reviewed_prefix: str = "H-"):
    """n batches: mass ~ N(100, 1) g, temperature ~ N(20, 0.3) °C, step ~ 30 min × e^N(0, 0.1);
    the last ``last_above`` masses sit just above the centre (for the run-rule test)."""
    rng = np.random.default_rng(seed)
    start = utcnow() - timedelta(days=2 * n + 2)
    out = []
    for i in range(n):
        mass = 100 + rng.standard_normal()
        if i >= n - last_above:
            mass = 100.9 + 0.05 * rng.random()
        values = {"mass_g": f"{mass:.2f}", "temp_c": f"{20 + 0.3 * rng.standard_normal():.2f}"}
        minutes = float(30 * np.exp(0.1 * rng.standard_normal()))
        out.append(
            {
                "batch_id": f"{reviewed_prefix}{i + 1:03d}",
                "started_at": start + timedelta(days=2 * i),
                "steps": [HistoryStep("weigh", values, minutes)],
            }
        )
    return out


def train_and_approve(rt, recipe: str = RECIPE, *, user: str = "qa.lead", approver: str = "qa.approver", **options):
    """Train a recipe's models and approve the run as a second QA person (e-signed
    through ``analytics.model_review.approve``, as QA does): only approved models score.
    Returns the training result (``training_id`` set when something was trained)."""
    result = train(rt, recipe, user=user, **options)
    if result["training_id"] is not None:
        model_review.approve(rt, result["training_id"], signer=person(approver), reason="evaluation report reviewed")
    return result


def trained_plant(rt, n: int = 20, *, last_above: int = 0):
    """Recipe, history and approved models; the scoring job handler installed; an operator."""
    import_trend_recipe(rt)
    write_history(rt, RECIPE, history(n, last_above=last_above), user="demo")
    result = train_and_approve(rt, RECIPE, user="qa.lead")
    install(rt)
    users.create_user(rt, OPERATOR, "Trend Operator", ["operator"], by="test", password="trend-operator-pw-1")
    return result


@contextmanager
def clock_moved(minutes: float):
    """The engine's clock (``engine.models.utcnow``: record and task times) ``minutes``
    off the real one, as ``bench/review.py``'s plant clock does."""
    real = models.datetime

    class Moved(real):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz=None):
            at = real.now(UTC) + timedelta(minutes=minutes)
            return at if tz is not None else at.replace(tzinfo=None)

    models.datetime = Moved
    try:
        yield
    finally:
        models.datetime = real


def live_step(rt, batch_id: str, values: dict, *, minutes: float = 30.0, opened: bool = False):
    """Start a batch ``minutes`` ago (its task became ready then) and record its weighing
    step now; ``opened``: the task was opened when it became ready."""
    with clock_moved(-minutes):
        batches.start_batch(rt, RECIPE, batch_id, user="sup", parameters={})
        task = batches.ready_tasks(rt, batch_id)[0]
        if opened:
            batches.open_task(rt, batch_id, task["id"], user=OPERATOR)
    signer = users.person(rt, OPERATOR)
    return batches.complete_task(rt, batch_id, task["id"], values, user=OPERATOR, signer=signer)
