"""What the recipe-version tests share: versions of the test recipes with known changes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from engine import recipes
from tests.support import RECIPES, read_recipe

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"


def signed_forms() -> dict:
    return recipes.load_forms_dir(RECIPES / "signed_forms")


def signed_v2() -> tuple[dict[str, bytes], dict]:
    """The signed recipe with the glucose hard maximum raised and a labelling task added."""
    text = (RECIPES / "signed.bpmn").read_text()
    text = text.replace(
        '<bpmn:sequenceFlow id="f3" sourceRef="transfer" targetRef="end"/>',
        '<bpmn:userTask id="label_bottle" name="Label the bottle"/>\n'
        '    <bpmn:sequenceFlow id="f3" sourceRef="transfer" targetRef="label_bottle"/>\n'
        '    <bpmn:sequenceFlow id="f4" sourceRef="label_bottle" targetRef="end"/>',
    )
    forms = copy.deepcopy(signed_forms())
    for comp in forms["weigh_form"]["components"]:
        if comp.get("key") == "mass_g":
            comp["properties"]["hardMax"] = "1200"
    return {"signed.bpmn": text.encode()}, forms


def import_signed(rt, *, approve: bool = True):
    v1 = recipes.import_recipe(rt, read_recipe("signed.bpmn"), forms=signed_forms(), user="qa.lead", approve=approve)
    files, forms = signed_v2()
    v2 = recipes.import_recipe(rt, files, forms=forms, user="qa.lead", approve=approve)
    return v1, v2


def call_activity_versions(rt, *, start: tuple[str, str] | None = None, upto: int = 2):
    """mab_mini v1 (tests/recipes), v2 (a task added inside seed expansion and harvest),
    v3 (thaw_vial renamed: a batch waiting there does not map). ``start`` (batch id,
    supervisor): a batch started on v1 while it is the effective version — once v2 is
    approved, v1 is superseded and starts nothing new. ``upto``: the newest version made
    (the newest is the effective one: a batch moves only to an approved or effective one)."""
    v1 = recipes.import_recipe(rt, read_recipe("call_activities.bpmn"), user="qa.lead", approve=True)
    if start is not None:
        from engine import batches

        batches.start_batch(rt, "mab_mini", start[0], user=start[1], version=1)
    v2 = recipes.import_recipe(
        rt, {"call_activities.bpmn": (HERE / "ca_v2.bpmn").read_bytes()}, user="qa.lead", approve=True
    )
    return v1, v2, (import_v3(rt) if upto >= 3 else None)


def import_v3(rt):
    """mab_mini v3 (thaw_vial renamed), approved: the effective version from now on."""
    return recipes.import_recipe(
        rt, {"call_activities.bpmn": (HERE / "ca_v3.bpmn").read_bytes()}, user="qa.lead", approve=True
    )


def template_library(rt):
    """Template tpl_count v1 and v2 (approved), recipe A (template in its own file) and
    recipe B (template in the recipe's file, called twice), both embedding v1."""
    t1 = recipes.import_recipe(
        rt, {"tpl_count.bpmn": (TEMPLATES / "tpl_count_v1.bpmn").read_bytes()}, user="qa.lead", approve=True
    )
    t2 = recipes.import_recipe(
        rt, {"tpl_count.bpmn": (TEMPLATES / "tpl_count_v2.bpmn").read_bytes()}, user="qa.lead", approve=True
    )
    a = recipes.import_recipe(
        rt,
        {
            "rec_a.bpmn": (TEMPLATES / "rec_a.bpmn").read_bytes(),
            "tpl_count.bpmn": (TEMPLATES / "tpl_count_v1.bpmn").read_bytes(),
        },
        user="qa.lead",
        approve=True,
        process_id="rec_a",
    )
    b = recipes.import_recipe(
        rt, {"rec_b.bpmn": (TEMPLATES / "rec_b.bpmn").read_bytes()}, user="qa.lead", approve=True, process_id="rec_b"
    )
    return t1, t2, a, b


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
