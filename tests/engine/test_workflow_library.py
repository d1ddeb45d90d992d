"""The workflow library (workflows/): every entry parses, validates and names forms that
load; every diagram can be drawn; and every entry runs start to end on the engine (SQLite
and PostgreSQL) with in-limit values — the mAb upstream recipe checked in detail."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from typing import Any

import defusedxml.ElementTree as DefusedET
import pytest

import workflows
from engine import batches, jobs, runner
from engine.bpmn import parse_recipe, validate_recipe
from engine.connectors import Completed
from engine.errors import NotFound
from engine.models import Batch, Job, utcnow
from engine.quality.operations import OPERATIONS
from engine.users import Person
from forms import load_form
from tests.support import approved_recipe
from web import demo

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
BPMNDI = "{http://www.omg.org/spec/BPMN/20100524/DI}"
# setup.cfg [options.package_data] workflows = ... (the library must stay inside it)
PACKAGE_DATA = [
    "recipes/*/*.bpmn",
    "recipes/*/forms/*.json",
    "templates/*.bpmn",
    "templates/forms/*.json",
    "qa/*.bpmn",
    "qa/*.json",
    "qa/forms/*.json",
]
LIBRARY = workflows.library()
BY_KEY = {e.key: e for e in LIBRARY}


# --- static checks ---------------------------------------------------------------------


def test_library_has_the_recipes_templates_and_qa_flows():
    assert len(BY_KEY) == len(LIBRARY), "library keys must be unique"
    kinds = {e.key: e.kind for e in LIBRARY}
    assert kinds["mab_upstream"] == "recipe"
    assert BY_KEY["mab_upstream"].title == "mAb upstream — 2000 L fed-batch"
    for key in ("tpl_sample_and_wait_for_lims", "tpl_charge_material", "tpl_hold_time"):
        assert kinds[key] == "template"
    for key in ("qa_recipe_approval", "qa_deviation", "qa_batch_release"):
        assert kinds[key] == "qa"
    assert set(BY_KEY["mab_upstream"].files) == {
        "mab_upstream.bpmn",
        "up_media_prep.bpmn",
        "up_seed_train.bpmn",
        "up_production.bpmn",
        "up_harvest.bpmn",
    }


def test_every_library_file_is_package_data():
    root = resources.files("workflows")
    found = []

    def walk(folder, prefix):
        for item in folder.iterdir():
            path = f"{prefix}{item.name}"
            if item.is_dir():
                if item.name != "__pycache__":
                    walk(item, path + "/")
            elif item.name.endswith((".bpmn", ".json")):
                found.append(path)

    walk(root, "")
    assert found
    outside = [p for p in found if not any(fnmatch.fnmatchcase(p, pat) for pat in PACKAGE_DATA)]
    assert outside == [], "files the wheel would not contain"


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_entry_validates_and_its_forms_load(key):
    entry = BY_KEY[key]
    assert validate_recipe(entry.files) == []
    assert validate_recipe(entry.files, process_id=key) == []
    parsed = parse_recipe(entry.files)
    assert parsed.process_id == key
    for task in parsed.user_tasks:
        assert task.form_key, f"{task.element_id} names no form"
        assert task.instructions and task.instructions.strip(), f"{task.element_id} has no instructions"
        assert task.form_key in entry.forms, f"{task.element_id}: form {task.form_key} missing"
    used = {t.form_key for t in parsed.user_tasks}
    assert set(entry.forms) == used, "forms nobody uses, or used but missing"
    ids = [t.element_id for t in parsed.user_tasks]
    assert len(ids) == len(set(ids)), "user task ids must be unique across the recipe's files"
    for form_id, definition in entry.forms.items():
        assert load_form(definition).id == form_id
    for service in parsed.service_tasks:  # a connector an install has, or the engine's own operations
        assert service.operator.split(".")[0] in {"erp", "lims", "BR-101"} or service.operator in OPERATIONS


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_diagram_covers_every_element(key):
    """bpmn-js draws only what has DI: every flow node a shape, every flow an edge."""
    for name, data in BY_KEY[key].files.items():
        root = DefusedET.fromstring(data)
        shapes = {s.get("bpmnElement") for s in root.iter(f"{BPMNDI}BPMNShape")}
        edges = {e.get("bpmnElement") for e in root.iter(f"{BPMNDI}BPMNEdge")}
        planes = {p.get("bpmnElement") for p in root.iter(f"{BPMNDI}BPMNPlane")}
        for proc in root.iter(f"{BPMN}process"):
            assert proc.get("isExecutable") == "true"
            assert proc.get("id") in planes, f"{name}: no diagram for {proc.get('id')}"
            for el in proc:
                tag = el.tag.replace(BPMN, "")
                if tag in ("documentation", "extensionElements"):
                    continue
                if tag == "sequenceFlow":
                    assert el.get("id") in edges, f"{name}: flow {el.get('id')} not drawn"
                else:
                    assert el.get("id") in shapes, f"{name}: {tag} {el.get('id')} not drawn"


def test_mab_recipe_uses_the_isa88_structure_and_bpmn_features():
    entry = BY_KEY["mab_upstream"]
    parsed = parse_recipe(entry.files)
    root = DefusedET.fromstring(entry.files["mab_upstream.bpmn"])
    called = [c.get("calledElement") for c in root.iter(f"{BPMN}callActivity")]
    assert called == ["up_media_prep", "up_seed_train", "up_production", "up_harvest"]
    assert 25 <= len(parsed.user_tasks) <= 40
    assert {t.operator for t in parsed.service_tasks} == {"erp.confirm_consumption", "lims.sample", "BR-101.run_phase"}
    lims = next(t for t in parsed.service_tasks if t.operator == "lims.sample")
    assert lims.result_variable == "lims_sample"
    assert [(t.kind, t.expression) for t in parsed.timers] == [("duration", "hold_time")]
    (message,) = parsed.messages
    assert message.message == "lims_result" and message.correlation_properties == {"sample_id": "sample_id"}
    all_xml = b"".join(entry.files.values())
    for feature in (
        b"standardLoopCharacteristics",
        b"multiInstanceLoopCharacteristics",
        b"parallelGateway",
        b"exclusiveGateway",
        b"scriptTask",
        b"spiffworkflow:instructionsForEndUser",
    ):
        assert feature in all_xml, feature
    forms = entry.forms
    props = [c.get("properties", {}) for d in forms.values() for c in _components(d["components"])]
    assert any(p.get("fieldKind") == "materialLot" and p.get("material") == "MED-CD-CHO" for p in props)
    assert any(p.get("fieldKind") == "equipment" and p.get("equipmentClass") == "bioreactor" for p in props)
    assert any("calculation" in p for p in props)
    assert any(p.get("witnessRequired") == "true" for p in props)
    inoculation = load_form(forms["mab_pr_inoculation"])
    assert inoculation.witness_required and inoculation.witness_role == "Supervisor"
    assert load_form(forms["mab_record_review"]).signature_meaning == "Reviewed"


def _components(components):
    for c in components:
        yield c
        yield from _components(c.get("components", []))


# --- running entries on the engine ------------------------------------------------------

PATTERN_SAMPLES = {
    "[0-9]{10}": "1000456789",
    "S-[0-9]{6}": "S-004711",
    "DEV-[0-9]{6}": "DEV-000042",
    "DEV-[0-9]{4}-[0-9]{4}": "DEV-2025-0042",
    "CC-[0-9]{6}": "CC-000123",
    "CAPA-[0-9]{6}": "CAPA-000007",
    "[0-9]{1,4}": "17",
    "COI-[0-9]{6}": "COI-000123",  # a patient's chain-of-identity id: the batch parameter coi_id below
}


lot_id, equipment_id = demo.lot_for, demo.equipment_for  # what the demo plant stocks


def in_limit_number(field) -> Decimal:
    """The middle of the tightest limits given: no alert or action finding."""
    lim = field.limits
    lows = [lim[n] for n in ("hardMin", "actionLow", "alertLow") if n in lim]
    highs = [lim[n] for n in ("alertHigh", "actionHigh", "hardMax") if n in lim]
    low, high = (max(lows) if lows else None), (min(highs) if highs else None)
    if low is not None and high is not None:
        value = (low + high) / 2
    elif low is not None:
        value = low + 1
    elif high is not None:
        value = high - 1 if high >= 1 else high
    else:
        value = Decimal(1)
    return value.quantize(Decimal(1).scaleb(-(field.decimals or 0)))


#: the people of the run-throughs (already authenticated: the engine trusts its caller)
ANNA = Person("op.anna", "Anna Operator", ("operator",))
CARL = Person("sup.carl", "Carl Supervisor", ("supervisor",))
DANA = Person("sup.dana", "Dana Supervisor", ("supervisor",))
QUINN = Person("qa.quinn", "Quinn QA", ("qa",))


def signers(task) -> tuple[Person, Person | None]:
    """Who signs a task: its role's person, plus a supervisor witness when the form asks."""
    signer = {"supervisor": CARL, "qa": QUINN}.get(task["role"], ANNA)
    form = load_form(task["form_definition"]) if task["form_definition"] else None
    witness = None
    if form is not None and form.witness_required:
        witness = DANA if signer is CARL else CARL
        if form.witness_role and form.witness_role.lower() == "qa":
            witness = QUINN if signer is not QUINN else Person("qa.rita", "Rita QA", ("qa",))
    return signer, witness


def in_limit_values(definition: dict[str, Any]) -> dict[str, Any]:
    """Valid values for every input of a form (calculated fields are left to the server)."""
    values: dict[str, Any] = {}
    for field in load_form(definition).fields:
        if field.calculation is not None:
            continue
        if field.kind == "number":
            values[field.key] = str(in_limit_number(field))
        elif field.kind == "materialLot":
            values[field.key] = lot_id(field.material)
        elif field.kind == "equipment":
            values[field.key] = equipment_id(field.equipment_class)
        elif field.kind == "checkbox":
            values[field.key] = True
        elif field.kind == "checklist":
            values[field.key] = [o.value for o in field.options]
        elif field.kind in ("select", "radio"):
            values[field.key] = field.options[0].value
        elif field.kind == "datetime":
            values[field.key] = {"date": "2025-03-01", "time": "08:00"}.get(field.subtype, "2025-03-01T08:00:00+00:00")
        elif field.kind == "textfield":
            values[field.key] = PATTERN_SAMPLES[field.pattern] if field.pattern else "ok"
        elif field.kind == "textarea":
            values[field.key] = "As planned."
        else:
            raise AssertionError(f"no test value for {field.kind} field {field.key}")
    return values


def register_lots_and_equipment(rt, forms: dict[str, dict[str, Any]]) -> None:
    """Released lots and clean, calibrated equipment for everything the forms scan
    (engine.step_values.RegistryLookups reads these tables)."""
    demo.stock(rt, forms.values())


class Systems:
    """Test ERP and LIMS: record the calls; LIMS answers with a sample id and the test
    later delivers the result message for it. The engine's quality operations are recorded
    too: a QA flow run here has no subject (tests/quality runs them on real subjects)."""

    def __init__(self, rt):
        self.erp_calls: list = []
        self.lims_calls: list = []
        self.operations: list = []
        self.pending_samples: list[str] = []
        rt.connectors.register("erp", self.erp)
        rt.connectors.register("lims", self.lims)
        for name in OPERATIONS:
            rt.connectors.register(name, self.operation)

    def operation(self, call):
        self.operations.append(call)
        return Completed({})

    def erp(self, call):
        self.erp_calls.append(call)
        return Completed({"document": f"MAT-{len(self.erp_calls):04d}"})

    def lims(self, call):
        self.lims_calls.append(call)
        sample_id = f"S-{call.batch_id}-{len(self.lims_calls)}"
        self.pending_samples.append(sample_id)
        return Completed({"sample_id": sample_id})


Overrides = dict[str, Callable[[int], dict[str, Any]]]


def run_to_end(
    rt,
    entry,
    batch_id: str,
    systems: Systems,
    *,
    parameters: dict[str, Any] | None = None,
    overrides: Overrides | None = None,
    until: str | None = None,
    findings: dict[str, list] | None = None,
    start: bool = True,
    timeout: float = 60.0,
) -> dict[str, int]:
    """Drive a batch as operators, workers and LIMS would until it completes (or task
    ``until`` is ready): complete every ready task with in-limit values (plus overrides by
    BPMN id and iteration), run due jobs, deliver LIMS results. A step must raise no
    exception unless ``findings`` expects it: {bpmn_id: [(severity, parameter), ...]}."""
    overrides, findings = overrides or {}, findings or {}
    if start:
        batches.start_batch(rt, entry.key, batch_id, user="op.anna", parameters=parameters or {})
    done: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while batches.get_batch(rt, batch_id)["state"] != "complete":
        assert time.monotonic() < deadline, f"{batch_id} stuck; steps so far: {done}"
        assert jobs.incidents(rt) == [], jobs.incidents(rt)
        tasks = batches.ready_tasks(rt, batch_id)
        if until is not None and any(t["bpmn_id"] == until for t in tasks):
            return done
        if tasks:
            task = tasks[0]
            bpmn_id = task["bpmn_id"]
            values = in_limit_values(task["form_definition"])
            if bpmn_id in overrides:
                values.update(overrides[bpmn_id](done.get(bpmn_id, 0)))
            signer, witness = signers(task)
            outcome = batches.complete_task(
                rt, batch_id, task["id"], values, user=signer.username, signer=signer, witness=witness
            )
            raised = [(e["category"].removeprefix("limit."), e["parameter"]) for e in outcome.body["exceptions"]]
            assert raised == findings.get(bpmn_id, []), (bpmn_id, outcome.body["exceptions"])
            done[bpmn_id] = done.get(bpmn_id, 0) + 1
            continue
        if systems.pending_samples:
            sample_id = systems.pending_samples[0]
            try:
                batches.deliver_message(
                    rt, "lims_result", {"sample_id": sample_id, "titre": 4.8, "bioburden": 0}, user="svc.lims"
                )
                systems.pending_samples.pop(0)
                continue
            except NotFound:
                pass  # not waiting for it yet
        if jobs.run_due(rt) == 0:
            time.sleep(0.05)
    return done


def daily_ipc(i: int) -> dict[str, Any]:
    day = (3, 7, 14)[i]
    return {"culture_day": day, "harvest_criteria_met": day == 14, "ipc_vcd": ("4.1", "14.6", "18.2")[i]}


MAB_OVERRIDES: Overrides = {
    "st_passage": lambda i: {"passage_number": i + 1, "ready_for_n2": i == 1},
    "pr_daily_ipc": daily_ipc,
    # the seeding density is calculated from these three: 7.00 x 107.7 / 1508 = 0.500
    "pr_inoculate": lambda i: {"inoc_n1_vcd": "7.00", "inoculum_transferred_l": "107.7", "post_inoc_volume_l": "1508"},
}


def test_mab_upstream_runs_start_to_complete(rt):
    entry = BY_KEY["mab_upstream"]
    register_lots_and_equipment(rt, entry.forms)
    systems = Systems(rt)
    approved_recipe(rt, entry.files, forms=entry.forms, user="qa.lead")
    done = run_to_end(
        rt,
        entry,
        "MAB-0001",
        systems,
        overrides=MAB_OVERRIDES,
        parameters={"batch_id": "MAB-0001", "hold_time": "PT1S"},
    )

    parsed = parse_recipe(entry.files)
    expected = {t.element_id for t in parsed.user_tasks} - {"st_supervisor_decision"}  # viability was fine
    assert set(done) == expected
    assert done["st_passage"] == 2 and done["pr_daily_ipc"] == 3  # standard loops
    assert done["hv_filter_flush"] == 3  # multi-instance: n_harvest_filters defaults to 3
    assert sum(done.values()) == 30

    record = batches.steps(rt, "MAB-0001")
    kinds = [s["kind"] for s in record]
    assert kinds.count("timer") == 1 and kinds.count("message") == 1 and kinds.count("service_task") == 3
    inoculation = next(s for s in record if s["bpmn_id"] == "pr_inoculate")
    assert inoculation["values"]["seeding_density"] == "0.500"  # calculated on the server
    assert inoculation["units"]["seeding_density"] == "10^6 cells/mL"

    # data crossed the parallel join and the call-activity boundaries into the service tasks
    media, filters = systems.erp_calls
    assert media.operator == "erp.confirm_consumption"
    assert media.params == {
        "order": "1000456789",
        "material": "MED-CD-CHO",
        "lot": lot_id("MED-CD-CHO"),
        "quantity": 27.0,
        "unit": "kg",
    }
    assert filters.params["lot"] == lot_id("FLT-DEPTH-D0HC") and filters.params["quantity"] == 3
    (lims,) = systems.lims_calls
    assert lims.operator == "lims.sample"
    assert lims.params["batch"] == "MAB-0001" and lims.params["sample_point"] == "pre-harvest"


def test_mab_low_n1_viability_goes_to_the_supervisor(rt):
    entry = BY_KEY["mab_upstream"]
    register_lots_and_equipment(rt, entry.forms)
    systems = Systems(rt)
    approved_recipe(rt, entry.files, forms=entry.forms, user="qa.lead")
    overrides = {**MAB_OVERRIDES, "st_n1_count": lambda i: {"n1_viability": "88.0"}}
    run_to_end(
        rt,
        entry,
        "MAB-0002",
        systems,
        overrides=overrides,
        until="st_supervisor_decision",
        findings={"st_n1_count": [("action", "n1_viability")]},  # below the 90 % action limit
        parameters={"batch_id": "MAB-0002", "hold_time": "PT1S"},
    )
    assert {t["bpmn_id"] for t in batches.ready_tasks(rt, "MAB-0002")} == {"st_supervisor_decision"}
    step = batches.steps(rt, "MAB-0002")[-1]
    assert step["bpmn_id"] == "st_n1_count" and step["values"]["n1_viability"] == "88.0"
    # the supervisor decides to proceed: the batch goes on to the production bioreactor
    (task,) = batches.ready_tasks(rt, "MAB-0002")
    values = {**in_limit_values(task["form_definition"]), "seed_rationale": "Recount 91 %, growth normal."}
    signer, witness = signers(task)
    assert signer is CARL
    batches.complete_task(rt, "MAB-0002", task["id"], values, user="sup.carl", signer=signer, witness=witness)
    assert {t["bpmn_id"] for t in batches.ready_tasks(rt, "MAB-0002")} == {"pr_pre_use"}
    # the script task computed the inoculum volume from the N-1 VCD (midpoint 7.5 x 10^6/mL):
    # 0.5 x 1400 L / (7.5 - 0.5) = 100.0 L
    run_to_end(rt, entry, "MAB-0002", systems, overrides=overrides, until="pr_inoculate", start=False)
    with rt.transaction() as s:
        batch = s.query(Batch).filter(Batch.batch_id == "MAB-0002").one()
        live = rt.store.load(s, batch.id, batch.revision)
    (task,) = [t for t in runner.ready_user_tasks(live.workflow) if t.task_spec.bpmn_id == "pr_inoculate"]
    assert task.data["inoculum_volume_l"] == 100.0
    assert task.data["inoculum_instruction"].startswith("Transfer 100.0 L of N-1 culture")


ENTRY_OVERRIDES: dict[str, Overrides] = {
    "qa_deviation": {"dv_triage": lambda i: {"classification": "major"}},  # through investigation and CAPA
}


@pytest.mark.parametrize("key", [k for k in sorted(BY_KEY) if k != "mab_upstream"])
def test_template_and_qa_entries_run_to_complete(rt, key):
    entry = BY_KEY[key]
    register_lots_and_equipment(rt, entry.forms)
    systems = Systems(rt)
    approved_recipe(rt, entry.files, forms=entry.forms, user="qa.lead")
    batch_id = f"{key[:20]}-1"
    params = {
        "batch_id": batch_id,
        "hold_time": "PT1S",
        "n_filters": 2,
        "sample_point": "day 7",
        "process_order": "1000456789",
        "subject_batch": "MAB-0001",  # what a quality process is started with
        "exception_id": 1,
        "coi_id": "COI-000123",  # cell-therapy entries check it at every hand-off
    }
    done = run_to_end(rt, entry, batch_id, systems, parameters=params, overrides=ENTRY_OVERRIDES.get(key))
    assert batches.get_batch(rt, batch_id)["state"] == "complete"
    parsed = parse_recipe(entry.files)
    assert set(done) <= {t.element_id for t in parsed.user_tasks}
    if key == "qa_deviation":
        assert list(done) == ["dv_report", "dv_triage", "dv_investigation", "dv_capa", "dv_closure"]
    if key == "tpl_filter_integrity":
        assert done == {"tpl_integrity_test": 2}
    if key == "qa_batch_release":  # ERP hears of a release through the batch.released event
        assert systems.erp_calls == []
        assert [c.operator for c in systems.operations] == ["batch.release"]
    if key == "qa_deviation":
        assert [(c.operator, c.params.get("decision")) for c in systems.operations] == [
            ("qms.open_deviation", None),
            ("exception.disposition", "close"),
        ]


def test_hold_time_defaults_to_two_minutes(rt):
    """Without a hold_time batch parameter the recipe's default script sets PT2M."""
    entry = BY_KEY["tpl_hold_time"]
    register_lots_and_equipment(rt, entry.forms)
    approved_recipe(rt, entry.files, forms=entry.forms, user="qa.lead")
    batches.start_batch(rt, entry.key, "HOLD-1", user="op.anna")
    (task,) = batches.ready_tasks(rt, "HOLD-1")
    signer, witness = signers(task)
    batches.complete_task(
        rt,
        "HOLD-1",
        task["id"],
        in_limit_values(task["form_definition"]),
        user=signer.username,
        signer=signer,
        witness=witness,
    )
    with rt.transaction() as s:
        (job,) = s.query(Job).filter(Job.kind == "timer", Job.state == "pending").all()
        wait = (job.due_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds()
    assert 100 < wait <= 120
