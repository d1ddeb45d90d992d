"""Every operation template and master recipe of the library runs start to end on the
engine (SQLite and PostgreSQL) the way a nominal batch does (``analytics.nominal.run_batch``:
every step signed, its values in the middle of their limits, loops going round a few
times, timers and service tasks run by the job executor) — and raises no exception.
Autologous cell therapy checks the patient's chain of identity (COI) at every hand-off:
a mismatch is refused with 422 and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

import workflows
from analytics.nominal import LIBRARY_LOOPS, Crew, Systems, run_batch, valid_values
from engine import batches, recipes
from engine.bpmn import parse_recipe
from engine.errors import InvalidInput
from engine.users import Person
from forms import load_form
from web import demo

RUNNABLE = sorted(e.key for e in workflows.library() if e.kind in ("template", "recipe"))
COI = "COI-004711"
CREW = Crew(
    operator=Person("op.anna", "Anna Operator", ("operator",)),
    operator_witness=Person("op.otto", "Otto Operator", ("operator",)),
    supervisor=Person("sup.carl", "Carl Supervisor", ("supervisor",)),
    qa=Person("qa.quinn", "Quinn QA", ("qa",)),
    qa_witness=Person("qa.rita", "Rita QA", ("qa",)),
    lot_for=demo.lot_for,
    equipment_for=demo.equipment_for,
)
PARAMETERS = {"hold_time": "PT1S", "n_filters": 2, "sample_point": "day 7", "process_order": "1000456789"}
#: values a nominal run needs beyond the middle of each field's limits: the mAb inoculation's
#: calculated seeding density depends on three fields (7.00 x 107.7 / 1508 = 0.500)
EXTRA = {"pr_inoculate": {"inoc_n1_vcd": "7.00", "inoculum_transferred_l": "107.7", "post_inoc_volume_l": "1508"}}


def coi_fields(entry) -> dict[str, list[str]]:
    """BPMN id of each user task -> its fields that must match the batch's coi_id."""
    found: dict[str, list[str]] = {}
    for task in parse_recipe(entry.files).user_tasks:
        form = load_form(entry.forms[task.form_key])
        keys = [f.key for f in form.fields if f.matches_parameter == "coi_id"]
        if keys:
            found[task.element_id] = keys
    return found


def scanned_coi(entry, coi: str) -> dict[str, dict[str, Any]]:
    """What the operator scans at each COI hand-off: the label in hand."""
    fields = coi_fields(entry)
    return {bpmn_id: {**EXTRA.get(bpmn_id, {}), **dict.fromkeys(keys, coi)} for bpmn_id, keys in fields.items()}


def imported(rt, key: str):
    entry = workflows.get(key)
    demo.stock(rt, entry.forms.values())
    recipes.import_recipe(rt, entry.files, forms=entry.forms, user="qa.lead", approve=True)
    return entry


def test_the_library_has_the_promised_breadth():
    templates = [k for k in RUNNABLE if k.startswith("tpl_")]
    assert len(templates) >= 25
    for key in (
        "tpl_media_prep",
        "tpl_buffer_prep",
        "tpl_seed_passage",
        "tpl_n1_transfer",
        "tpl_bioreactor_daily_sampling",
        "tpl_bolus_feed",
        "tpl_harvest_clarification",
        "tpl_protein_a_capture",
        "tpl_low_ph_viral_inactivation",
        "tpl_aex_flow_through",
        "tpl_cex_bind_elute",
        "tpl_ufdf",
        "tpl_viral_filtration",
        "tpl_bulk_fill",
        "tpl_ph_meter_calibration",
        "tpl_balance_daily_check",
        "tpl_cip",
        "tpl_sip",
        "tpl_line_clearance",
        "tpl_formulation",
        "tpl_aseptic_filling",
        "tpl_visual_inspection",
        "tpl_apheresis_receipt",
        "tpl_tcell_activation",
        "tpl_transduction",
        "tpl_cell_expansion",
        "tpl_cell_harvest",
        "tpl_cryopreservation",
    ):
        assert key in templates, key
    for key in ("mab_upstream", "mab_downstream", "cart_autologous"):
        assert workflows.get(key).kind == "recipe"


def test_master_recipes_are_composed_from_the_templates():
    ds = workflows.get("mab_downstream")
    called = [t.called for t in _calls(ds)]
    assert called == [
        "tpl_protein_a_capture",
        "tpl_low_ph_viral_inactivation",
        "tpl_aex_flow_through",
        "tpl_cex_bind_elute",
        "tpl_ufdf",
        "tpl_viral_filtration",
        "tpl_bulk_fill",
    ]
    for key in called:  # the template's own file and forms, unchanged
        template = workflows.get(key)
        (name, data), *_ = template.files.items()
        assert ds.files[name] == data
        assert all(ds.forms[k] == v for k, v in template.forms.items())
    cart = workflows.get("cart_autologous")
    assert [t.called for t in _calls(cart)] == [
        "tpl_apheresis_receipt",
        "tpl_tcell_activation",
        "tpl_transduction",
        "tpl_cell_expansion",
        "tpl_cell_harvest",
        "tpl_cryopreservation",
    ]
    # COI at every hand-off: the start, every unit procedure, and the record review
    tasks = {t.element_id for t in parse_recipe(cart.files).user_tasks}
    checked = set(coi_fields(cart))
    assert tasks == checked
    assert {"car_batch_start", "tpl_apr_receive", "tpl_tac_activate", "tpl_trd_transduce", "tpl_tex_count"} <= checked
    assert {"tpl_thv_harvest", "tpl_cry_fill", "tpl_cry_freeze", "car_record_review"} <= checked


def _calls(entry):
    import defusedxml.ElementTree as DefusedET

    class Call:
        def __init__(self, el):
            self.called = el.get("calledElement")

    root = DefusedET.fromstring(entry.files[f"{entry.key}.bpmn"])
    return [Call(el) for el in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}callActivity")]


@pytest.mark.slow  # ~35 batches on two databases: over a minute in all
@pytest.mark.parametrize("key", RUNNABLE)
def test_entry_runs_start_to_end_with_nominal_values(rt, key):
    entry = imported(rt, key)
    systems = Systems()
    systems.connect(rt)
    batch_id = f"LIB-{key[:24]}"
    done = run_batch(
        rt,
        key,
        batch_id,
        CREW,
        systems,
        loops=LIBRARY_LOOPS,
        parameters={**PARAMETERS, "batch_id": batch_id, "coi_id": COI},
        overrides={**EXTRA, **scanned_coi(entry, COI)},
        timeout=90,
    )
    assert batches.get_batch(rt, batch_id)["state"] == "complete"
    user_tasks = {t.element_id for t in parse_recipe(entry.files).user_tasks}
    assert set(done) <= user_tasks and done
    raised = batches.exceptions(rt, batch_id)
    assert raised == [], [(e["category"], e.get("parameter"), e.get("message")) for e in raised]
    for bpmn_id in ("tpl_sps_passage", "tpl_bds_sample", "tpl_tex_count"):  # standard loops went round
        if bpmn_id in user_tasks:
            assert done[bpmn_id] == (2 if bpmn_id == "tpl_sps_passage" else 3)
    if key in ("tpl_low_ph_viral_inactivation", "mab_downstream"):  # the inactivation hold is a timer
        assert [s["kind"] for s in batches.steps(rt, batch_id)].count("timer") == 1


def _complete_until(rt, batch_id: str, entry, stop: str) -> dict[str, Any]:
    """Complete ready tasks nominally (the right COI) until task ``stop`` is ready; return it."""
    scans = scanned_coi(entry, COI)
    for _ in range(40):
        (task,) = batches.ready_tasks(rt, batch_id)
        if task["bpmn_id"] == stop:
            return task
        form = load_form(task["form_definition"])
        values = {**valid_values(form, CREW), **scans.get(task["bpmn_id"], {})}
        signer, witness = CREW.signers(task, form)
        batches.complete_task(rt, batch_id, task["id"], values, user=signer.username, signer=signer, witness=witness)
    raise AssertionError(f"{stop} never became ready")


@pytest.mark.parametrize("hand_off", ["car_batch_start", "tpl_apr_receive", "tpl_trd_transduce", "tpl_cry_fill"])
def test_a_coi_mismatch_is_refused_and_nothing_is_stored(rt, hand_off):
    entry = imported(rt, "cart_autologous")
    batches.start_batch(rt, "cart_autologous", "CART-1", user="sup.carl", parameters={"coi_id": COI})
    task = _complete_until(rt, "CART-1", entry, hand_off)
    before = batches.steps(rt, "CART-1")
    form = load_form(task["form_definition"])
    (key, *_) = coi_fields(entry)[hand_off]
    values = {**valid_values(form, CREW), **scanned_coi(entry, COI)[hand_off], key: "COI-009999"}  # another patient
    signer, witness = CREW.signers(task, form)
    with pytest.raises(InvalidInput) as refused:
        batches.complete_task(rt, "CART-1", task["id"], values, user=signer.username, signer=signer, witness=witness)
    assert refused.value.status == 422 and refused.value.code == "form_invalid"
    (message,) = refused.value.details["fields"][key]
    assert "does not match" in message and COI not in message  # the right id is not given away
    assert batches.steps(rt, "CART-1") == before
    assert [t["id"] for t in batches.ready_tasks(rt, "CART-1")] == [task["id"]]
    # the right label goes through
    values[key] = COI
    batches.complete_task(rt, "CART-1", task["id"], values, user=signer.username, signer=signer, witness=witness)
    assert len(batches.steps(rt, "CART-1")) == len(before) + 1


def test_a_batch_started_without_a_coi_cannot_record_a_hand_off(rt):
    entry = imported(rt, "cart_autologous")
    batches.start_batch(rt, "cart_autologous", "CART-2", user="sup.carl")
    (task,) = batches.ready_tasks(rt, "CART-2")
    form = load_form(task["form_definition"])
    values = {**valid_values(form, CREW), **scanned_coi(entry, COI)["car_batch_start"]}
    signer, witness = CREW.signers(task, form)
    with pytest.raises(InvalidInput) as refused:
        batches.complete_task(rt, "CART-2", task["id"], values, user=signer.username, signer=signer, witness=witness)
    assert "no parameter 'coi_id'" in refused.value.details["fields"]["car_coi_order"][0]
    assert batches.steps(rt, "CART-2") == []
