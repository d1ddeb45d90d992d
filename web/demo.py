"""``batchline demo``: a plant to try Batchline on, on the embedded SQLite default.

Creates the demo people (their passwords are printed: demo only), registers the material
master (units, kinds), released and counted material lots and clean equipment for
everything the library's forms scan, imports the workflow library (imported by one QA
person, approved by another), writes 30 earlier reviewed mAb batches as demo history (with
simulated bioreactor time series) and trains the out-of-trend models on them
(``analytics.history``; Quinn trains, Rita approves the training run with her e-signature,
so the models score), connects the simulated ERP and LIMS, puts the default exception
rules in force (imported and approved by two QA people) with a completed batch awaiting
QA's review (``web.demo_review``), and starts a mAb batch so there is something to do at
once; when serving, a simulated bioreactor feeds that batch equipment samples
(``start_equipment_feed``)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from engine import batches, recipe_lifecycle, recipes, users
from engine.models import Batch, Equipment, Material, MaterialLot, RecipeVersion, User, utcnow
from engine.runtime import Runtime
from engine.users import Person
from engine.vocabulary import BatchState, RecipeStatus

#: demo people: user id -> (printed name, roles, password). Demo only.
PEOPLE = {
    "op.anna": ("Anna Operator", ["operator"], "anna-demo-2026"),
    "op.ben": ("Ben Operator", ["operator"], "ben-demo-2026"),
    "sup.carl": ("Carl Supervisor", ["supervisor"], "carl-demo-2026"),
    "qa.quinn": ("Quinn QA", ["qa"], "quinn-demo-2026"),
    "qa.rita": ("Rita QA", ["qa"], "rita-demo-2026"),
    #: a third QA person: author ≠ reviewer ≠ approver in QA's recipe approval flow
    "qa.sofia": ("Sofia QA", ["qa"], "sofia-demo-2026"),
    "admin": ("Plant Administrator", ["admin"], "plant-demo-2026"),
}
DEMO_BATCH = "MAB-DEMO-001"
#: earlier mAb batches written as demo history for the out-of-trend models
HISTORY_BATCHES = 30

log = logging.getLogger("batchline.demo")


def lot_for(material: str) -> str:
    return f"LOT-{material}-001"


def equipment_for(equipment_class: str) -> str:
    return f"{equipment_class.upper()}-01"


#: the demo's material master: code -> (name, unit, kind, quantity of its demo lot). The
#: mAb chain is counted (cell bank vials, media and feeds, HCCF, drug substance); a
#: material not listed gets a lot counted in pieces, by its code's kind.
MATERIALS: dict[str, tuple[str, str, str, float]] = {
    "WCB-CHO-MAB01": ("CHO working cell bank, mAb-01", "vial", "cell_bank", 20),
    "MED-CD-CHO": ("Chemically defined CHO medium powder", "kg", "media", 500),
    "FEED-CD-A": ("Feed A powder", "kg", "media", 300),
    "FEED-CD-B": ("Feed B powder", "kg", "media", 40),
    "CHEM-NAHCO3": ("Sodium bicarbonate", "kg", "raw_material", 100),
    "MAB-01-HCCF": ("Harvested cell culture fluid, mAb-01", "L", "intermediate", 5000),
    "DS-MAB-01": ("mAb-01 drug substance", "kg", "drug_substance", 100),
    "BUF-PBS-CHASE": ("PBS chase buffer", "L", "buffer", 2000),
    "BUF-ELU-PROA": ("Protein A elution buffer", "L", "buffer", 2000),
    "BUF-DF-HIS": ("Histidine diafiltration buffer", "L", "buffer", 2000),
}
#: kinds by a material code's prefix, for the codes ``MATERIALS`` does not list
KIND_BY_PREFIX = {
    "MED": "media",
    "FEED": "media",
    "BUF": "buffer",
    "CHEM": "raw_material",
    "CHM": "raw_material",
    "WCB": "cell_bank",
    "DS": "drug_substance",
    "VEC": "raw_material",
    "RGT": "raw_material",
}
#: a demo lot expires this long after it is registered
LOT_SHELF_LIFE = timedelta(days=365)


def material_master(code: str) -> tuple[str, str, str, float]:
    """(name, unit, kind, demo lot quantity) of a material code."""
    if code in MATERIALS:
        return MATERIALS[code]
    kind = KIND_BY_PREFIX.get(code.split("-", 1)[0], "consumable")
    return code, "pcs", kind, 1000


def stock(rt: Runtime, forms) -> tuple[set[str], set[str]]:
    """A released lot of every material and a clean unit of every equipment class the
    forms scan (named by ``lot_for`` / ``equipment_for``), and the material master they
    belong to (``MATERIALS``): units, kinds, lot quantities and expiry."""
    from forms import scanned

    materials, classes = scanned(forms)
    now = utcnow()
    with rt.transaction() as s:
        for material in sorted(materials | set(MATERIALS)):
            name, unit, kind, quantity = material_master(material)
            if s.get(Material, material) is None:
                s.add(Material(material_id=material, name=name, unit=unit, kind=kind, description="demo master data"))
            if material in materials and s.get(MaterialLot, lot_for(material)) is None:
                s.add(
                    MaterialLot(
                        lot_id=lot_for(material),
                        material=material,
                        status="released",
                        quantity=quantity,
                        unit=unit,
                        expires_at=now + LOT_SHELF_LIFE,
                    )
                )
        for cls in sorted(classes):
            if s.get(Equipment, equipment_for(cls)) is None:
                s.add(Equipment(equipment_id=equipment_for(cls), equipment_class=cls, status="clean"))
    return materials, classes


def setup(rt: Runtime) -> dict[str, Any]:
    """Idempotent: running the demo twice reuses what is there."""
    import workflows

    with rt.transaction() as s:
        have_users = s.scalar(select(func.count()).select_from(User)) > 0
    if not have_users:
        for username, (name, roles, password) in PEOPLE.items():
            users.create_user(rt, username, name, roles, by="demo", password=password)
        users.create_user(rt, "svc.lims", "LIMS interface", ["service"], by="demo", kind="service")

    library = workflows.library()
    materials, classes = stock(rt, [d for entry in library for d in entry.forms.values()])

    # a fresh installation: no approval flow is effective yet, so Rita approves each library
    # entry directly with her e-signature (Quinn imported them) — QA's own approval flow
    # last: from then on every new version goes through it
    imported = []
    name, roles, _ = PEOPLE["qa.rita"]
    rita = Person("qa.rita", name, tuple(roles))
    for entry in sorted(library, key=lambda e: e.key == recipe_lifecycle.APPROVAL_FLOW):
        rv = recipes.import_recipe(rt, entry.files, forms=entry.forms, user="qa.quinn", recipe=entry.key)
        if rv.status in (RecipeStatus.DRAFT, RecipeStatus.IN_REVIEW):
            approve_entry(rt, rv, rita)
        imported.append(entry.key)

    # earlier, reviewed mAb batches (demo data, audited as such) and the out-of-trend
    # models trained on them, so the trend pages show real limits at once
    from analytics.history import seed_demo_history
    from analytics.jobs import install

    install(rt)
    history = seed_demo_history(rt, "mab_upstream", n_batches=HISTORY_BATCHES)
    approve_demo_models(rt, "mab_upstream")

    # QA's review by exception: the default exception rules in force (Quinn imports, Rita
    # approves) and a completed batch waiting for review with its exceptions
    from . import demo_review

    rules_version = demo_review.approve_default_rules(rt, PEOPLE)
    demo_review.create_review_batch(rt, PEOPLE, lot_for, equipment_for)

    with rt.transaction() as s:
        exists = s.scalars(select(Batch.id).where(Batch.batch_id == DEMO_BATCH)).first() is not None
    if not exists:
        batches.start_batch(
            rt, "mab_upstream", DEMO_BATCH, user="sup.carl",
            parameters={"batch_id": DEMO_BATCH, "hold_time": "PT30S", "bioreactor_automation": True},
        )  # fmt: skip
    with rt.transaction() as s:
        approved = s.scalar(
            select(func.count()).select_from(RecipeVersion).where(RecipeVersion.status == RecipeStatus.EFFECTIVE)
        )
    return {
        "recipes": imported,
        "approved": approved,
        "batch": DEMO_BATCH,
        "review_batch": demo_review.REVIEW_BATCH,
        "rules_version": rules_version,
        "history_batches": len(history["written"]),
        "lots": {m: lot_for(m) for m in sorted(materials)},
        "equipment": {c: equipment_for(c) for c in sorted(classes)},
    }


def approve_entry(rt: Runtime, rv: RecipeVersion, rita: Person) -> None:
    """Approve a library entry Quinn imported: directly by Rita while no approval flow is
    effective (a fresh demo); once QA's flow is in force (the demo runs again after the
    library changed), through it: Quinn submits, Rita reviews, Sofia approves."""
    from analytics.nominal import valid_values
    from engine import jobs
    from forms import load_form

    with rt.transaction() as s:
        flow = recipe_lifecycle.effective_version(s, recipe_lifecycle.APPROVAL_FLOW)
    if flow is None:
        recipe_lifecycle.approve(rt, rv.id, signer=rita, reason="demo library: reviewed")
        return
    if rv.status == RecipeStatus.DRAFT:
        recipe_lifecycle.submit(rt, rv.id, user="qa.quinn", comment="demo library changed")
    answers = {"ra_review": ("qa.rita", {"qa_decision": "approve"}), "ra_approve": ("qa.sofia", {})}
    for _ in range(20):
        jobs.run_due(rt)  # the flow starts, and approves the version, through the job executor
        with rt.transaction() as s:
            if s.get(RecipeVersion, rv.id).status not in (RecipeStatus.DRAFT, RecipeStatus.IN_REVIEW):
                return
            process = s.scalars(
                select(Batch.batch_id)
                .where(Batch.subject_type == "recipe_version", Batch.subject_id == str(rv.id))
                .where(Batch.state == BatchState.RUNNING)
                .order_by(Batch.id.desc())
            ).first()
        tasks = batches.ready_tasks(rt, process) if process else []
        if not tasks:
            continue
        task = tasks[0]
        username, values = answers[task["bpmn_id"]]
        name, roles, _ = PEOPLE[username]
        signer = Person(username, name, tuple(roles))
        form = load_form(task["form_definition"])
        data = {**valid_values(form, None), **values}
        batches.complete_task(rt, str(process), task["id"], data, user=username, signer=signer)
    raise RuntimeError(f"{rv.recipe} v{rv.version} was not approved through QA's flow")


def approve_demo_models(rt: Runtime, recipe: str) -> int | None:
    """Models score only once QA approved their training run: Quinn trained them on the
    demo history, so Rita approves the newest pending run with her e-signature through
    the same function as the API, audited (``analytics.model_review``)."""
    from analytics import model_review

    pending = model_review.newest_pending(rt, recipe)
    if pending is None:
        return None
    name, roles, _ = PEOPLE["qa.rita"]
    model_review.approve(
        rt,
        pending,
        signer=Person("qa.rita", name, tuple(roles)),
        reason="demo: evaluation report reviewed (held-out false alarms, limits, training batches)",
    )
    return pending


def start_equipment_feed(
    rt: Runtime, stop: threading.Event, *, every: float = 3.0, drift_onset: float = 40.0
) -> threading.Thread:
    """A background thread that, once the demo batch's production unit procedure runs,
    sends its bioreactor a simulated sample (one hour of maturity since that start) every
    ``every`` seconds, as equipment would over the API; from ``drift_onset`` hours the
    dissolved-O2 sensor drifts slowly (+0.5 % of its mean reading per hour), so a trend
    exception appears a few minutes into production. Resumes where an earlier run
    stopped; waits while the batch is held, ends when it is not running."""
    thread = threading.Thread(
        target=_feed, args=(rt, stop, every, drift_onset), name="batchline-equipment-feed", daemon=True
    )
    thread.start()
    return thread


def _feed(rt: Runtime, stop: threading.Event, every: float, drift_onset: float) -> None:
    from analytics import equipment
    from analytics.history import EQUIPMENT_UP
    from analytics.simulator import Fault
    from engine.errors import Conflict

    _, reference = equipment.simulated_samples(HISTORY_BATCHES, 7)  # the demo history's feed start
    (samples,), _ = equipment.simulated_samples(
        1, 2026, reference=reference, faults=[Fault("sensor_drift", drift_onset, 0.005, "dissolved_o2")]
    )
    # the production bioreactor's run starts with the production unit procedure: nothing is
    # sent while the batch is still in seed train or media prep (samples are scored only
    # while their unit procedure runs, ``analytics.equipment.scoring``)
    while equipment.running_since(rt, DEMO_BATCH, EQUIPMENT_UP) is None:
        if stop.wait(every) or batches.get_batch(rt, DEMO_BATCH)["state"] in (BatchState.COMPLETE, BatchState.ABORTED):
            return
    i = equipment.sample_count(rt, DEMO_BATCH, EQUIPMENT_UP)
    while i < len(samples) and not stop.wait(every):
        try:
            equipment.record_samples(rt, DEMO_BATCH, EQUIPMENT_UP, "BIOREACTOR-01", [samples[i]])
            i += 1
        except Conflict as exc:
            if exc.details.get("state") != BatchState.HELD:
                return
        except Exception:  # the database went away for a moment: try again
            log.exception("equipment feed: sample %s not sent", i)


#: values that complete the demo batch's first task (the batch-start form), for the
#: "try this" commands ``batchline demo`` prints
FIRST_TASK = "up_batch_start"
FIRST_TASK_VALUES = {
    "process_order": "4500012345",
    "suite_id": equipment_for("cleanroom_suite"),
    "line_clearance": True,
    "room_status_ok": True,
}


def first_task(rt: Runtime) -> tuple[str, dict[str, Any]] | None:
    """The demo batch's first task (its BPMN id, which ``batch complete`` takes) and
    values that complete it, while it still waits."""
    from datetime import UTC, datetime

    for task in batches.ready_tasks(rt, DEMO_BATCH):
        if task["bpmn_id"] == FIRST_TASK:
            now = datetime.now(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
            return task["bpmn_id"], {**FIRST_TASK_VALUES, "batch_start_time": now}
    return None


def connect_simulators(rt: Runtime) -> None:
    from integrations.simulated import SimulatedErp, SimulatedLims

    rt.connectors.register("erp", SimulatedErp())
    rt.connectors.register("lims", SimulatedLims(runtime=rt))
