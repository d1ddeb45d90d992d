"""The demo's batch awaiting QA's review (``MAB-DEMO-000``) and the exception rules it is
reviewed under.

``batchline demo`` imports the packaged default exception rules as Quinn (QA) and has
Rita (QA) approve them, then runs one mAb batch through the engine (``analytics.nominal``:
every step signed, values drawn like the demo history) with three things a reviewer
meets: a value beyond its action limit (raised by the step path itself), an operator's
documentation remark (``event.documentation``: the approved rules close it by
themselves, audited as ``system``) and an out-of-trend value — far from the history but
inside its alert limits — raised with the trained model's centre and limits (the
scoring job is not run on this batch: a batch completed in seconds would also raise a
"too short" duration finding for every step). Nobody who reviews it (Quinn or Rita)
performed a step: the demo's operators and supervisor did, with Ben witnessing.
"""

from __future__ import annotations

from typing import Any

from analytics import charts, nominal
from engine import batches
from engine.quality import exceptions as qx
from engine.quality import rules
from engine.runtime import Runtime
from engine.users import Person
from engine.vocabulary import ExceptionSource, JobKind

REVIEW_BATCH = "MAB-DEMO-000"
RECIPE = "mab_upstream"


def approve_default_rules(rt: Runtime, people: dict[str, Any]) -> int:
    """The packaged rules in force: imported by qa.quinn, approved by qa.rita (once)."""
    approved = [r for r in rules.list_rule_sets(rt) if r["status"] == "approved"]
    if approved:
        return approved[0]["version"]
    draft = rules.import_rules(rt, rules.default_content(), user="qa.quinn")
    name, roles, _ = people["qa.rita"]
    return rules.approve(rt, draft["version"], signer=Person("qa.rita", name, tuple(roles)))["version"]


def crew(people: dict[str, Any], lot_for, equipment_for) -> nominal.Crew:
    """The demo people who run a batch: operators, a supervisor, QA (signers by role)."""

    def person(username: str) -> Person:
        name, roles, _ = people[username]
        return Person(username, name, tuple(roles))

    return nominal.Crew(
        operator=person("op.anna"),
        operator_witness=person("op.ben"),
        supervisor=person("sup.carl"),
        qa=person("qa.quinn"),
        qa_witness=person("qa.rita"),
        lot_for=lot_for,
        equipment_for=equipment_for,
    )


def _choices(rt: Runtime) -> tuple[tuple[str, str, str], tuple[str, str, str, dict[str, Any]]]:
    """(task, field, value beyond its action limit) and (task, field, out-of-trend value,
    model limits): the first numeric fields of the recipe that allow them."""
    from engine.recipes import find_version
    from forms import load_form

    with rt.transaction() as s:
        rv = find_version(s, RECIPE, approved=True)
        tasks = [(t["bpmn_id"], rv.forms[t["form"]]) for t in rv.tasks if t.get("form") in rv.forms]
    action = trend = None
    for bpmn_id, definition in tasks:
        for f in load_form(definition).fields:
            if f.kind != "number" or f.calculation is not None:
                continue
            lim = {k: float(v) for k, v in f.limits.items()}
            places = f.decimals or 0
            if action is None and "actionLow" in lim and lim.get("hardMin", -1e9) < lim["actionLow"] - 10**-places:
                low = max(lim.get("hardMin", lim["actionLow"] - 1), lim["actionLow"] - 10**-places * 5)
                action = (bpmn_id, f.key, f"{low:.{places}f}")
                continue
            if trend is None and "alertHigh" in lim and (action is None or action[:2] != (bpmn_id, f.key)):
                try:
                    model = charts.trend(rt, RECIPE, bpmn_id, f.key, limit=1)["model"]
                except Exception:
                    model = None
                upper = (model or {}).get("limits", {}).get("upper")
                if upper is not None and upper < lim["alertHigh"]:
                    value = round(upper + 0.5 * (lim["alertHigh"] - upper), places)
                    if upper < value < lim["alertHigh"]:
                        trend = (bpmn_id, f.key, f"{value:.{places}f}", {**model, "label": f.label or f.key})
    assert action is not None and trend is not None, "the mAb recipe has no field for the demo's exceptions"
    return action, trend


def create_review_batch(rt: Runtime, people: dict[str, Any], lot_for, equipment_for) -> str | None:
    """Run ``MAB-DEMO-000`` to complete with its three exceptions (once)."""
    if any(b["batch_id"] == REVIEW_BATCH for b in batches.list_batches(rt)):
        return None
    (a_task, a_key, a_value), (t_task, t_key, t_value, model) = _choices(rt)
    drawn = nominal.history_values(rt, RECIPE, 1, seed=2025)[0]
    overrides = {a_task: {a_key: a_value}}
    overrides.setdefault(t_task, {})[t_key] = t_value
    # an earlier batch ran on the plant's second units (``-02``): it leaves them dirty
    # (engine.master_data.equipment_use), the demo batch's ``-01`` units stay clean
    equipment_for = second_units(rt, equipment_for)
    systems = nominal.Systems()
    saved = dict(rt.connectors._connectors)  # the plant's ERP and LIMS come back afterwards
    systems.connect(rt)
    scorer = rt.job_handlers.pop(JobKind.SCORE_STEP, None)
    try:
        nominal.run_batch(
            rt,
            RECIPE,
            REVIEW_BATCH,
            crew(people, lot_for, equipment_for),
            systems,
            drawn=drawn,
            overrides=overrides,
            parameters={"batch_id": REVIEW_BATCH, "hold_time": "PT1S"},
        )
    finally:
        if scorer is not None:
            rt.job_handlers[JobKind.SCORE_STEP] = scorer
        rt.connectors._connectors = saved
    steps = batches.steps(rt, REVIEW_BATCH)
    t_step = next(s for s in steps if s["bpmn_id"] == t_task)
    _raise_documentation(rt, steps)
    limits = model["limits"]
    unit = f" {model['unit']}" if model.get("unit") else ""
    batches.raise_exception(
        rt,
        REVIEW_BATCH,
        source=ExceptionSource.TREND,
        severity="alert",
        step_seq=t_step["seq"],
        parameter=t_key,
        message=(
            f"{model['label']} {t_value}{unit} is out of trend (rule 1: a point beyond the control limits); expected "
            f"{limits['lower']:.4g} to {limits['upper']:.4g}{unit}, centre {limits['centre']:.4g}"
        ),
        details={
            "value": float(t_value),
            "unit": model.get("unit"),
            "centre": limits["centre"],
            "lower": limits["lower"],
            "upper": limits["upper"],
            "limit": limits["upper"] - limits["centre"],
            "rule": 1,
            "rule_description": "a point beyond the control limits",
            "bpmn_id": t_task,
            "model_id": model["id"],
            "model_version": model["version"],
            "critical": False,
        },
    )
    return REVIEW_BATCH


def second_units(rt: Runtime, equipment_for):
    """``equipment_for`` naming each class's second unit (``…-02``), registered clean
    like the first (same class, calibration and connector)."""
    from engine.models import Equipment

    def second(equipment_class: str) -> str:
        first = equipment_for(equipment_class)
        return first[:-3] + "-02" if first.endswith("-01") else first + "-02"

    with rt.transaction() as s:
        for eq in list(s.query(Equipment).filter(Equipment.equipment_id.like("%-01"))):
            if s.get(Equipment, second(eq.equipment_class)) is None and eq.equipment_id == equipment_for(
                eq.equipment_class
            ):
                s.add(
                    Equipment(
                        equipment_id=second(eq.equipment_class),
                        equipment_class=eq.equipment_class,
                        status="clean",
                        calibrated_until=eq.calibrated_until,
                        name=eq.name,
                        location=eq.location,
                        connector=eq.connector,
                    )
                )
    return second


def _raise_documentation(rt: Runtime, steps: list[dict[str, Any]]) -> None:
    """An operator's remark about the record (closed by the approved rules, audited)."""
    from engine.batches.unit_of_work import find_batch

    step = steps[min(3, len(steps) - 1)]
    with rt.transaction() as s:
        qx.raise_in(
            rt,
            s,
            find_batch(s, REVIEW_BATCH),
            category="event.documentation",
            message="Logbook page 14 signed a minute after the step was recorded (time written from the wall clock)",
            raised_by=step["user"],
            step_seq=step["seq"],
        )
