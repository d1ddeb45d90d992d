"""How a recipe says what it consumes and produces: a material-lot field's
``quantityField`` (checked when the form is loaded) and a task's ``produces`` /
``producedQuantity`` / ``producedLot`` properties (checked at recipe import)."""

from __future__ import annotations

import pytest

import workflows
from engine import recipes
from engine.bpmn import RecipeInvalid
from engine.bpmn.properties import Produces, parse_produces
from forms import FormDefinitionError, load_form


def form(lot_properties: dict, quantity: dict | None = None) -> dict:
    components = [
        {
            "type": "textfield",
            "key": "lot",
            "label": "Lot",
            "properties": {"fieldKind": "materialLot", **lot_properties},
        },
    ]
    if quantity is not None:
        components.append({"label": "Quantity", "key": "qty", **quantity})
    components.append({"type": "number", "key": "other", "label": "Other", "properties": {"unit": "L"}})
    return {"type": "default", "id": "f", "components": components}


def test_a_quantity_field_pairs_a_lot_with_its_quantity():
    loaded = load_form(
        form({"material": "M", "quantityField": "qty"}, {"type": "number", "properties": {"unit": "kg"}})
    )
    assert loaded.field("lot").quantity_field == "qty"
    assert load_form(form({"material": "M"})).field("lot").quantity_field is None


@pytest.mark.parametrize(
    ("lot", "quantity", "problem"),
    [
        ({"quantityField": "nope"}, None, "quantityField refers to unknown field 'nope'"),
        ({"quantityField": "qty"}, {"type": "textfield"}, "quantityField 'qty' must be a number field with a unit"),
        ({"quantityField": "qty"}, {"type": "number"}, "quantityField 'qty' must be a number field with a unit"),
        ({"quantityField": "1; DROP"}, None, "'quantityField' must name the number field"),
        ({"quantityField": "x" * 200}, None, "'quantityField' must name the number field"),
    ],
)
def test_a_bad_quantity_field_is_refused(lot, quantity, problem):
    with pytest.raises(FormDefinitionError) as err:
        load_form(form({"material": "M", **lot}, quantity))
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_one_quantity_field_serves_one_lot():
    definition = form({"material": "M", "quantityField": "other"})
    definition["components"].append(
        {
            "type": "textfield",
            "key": "lot2",
            "label": "Lot 2",
            "properties": {"fieldKind": "materialLot", "material": "M", "quantityField": "other"},
        }
    )
    with pytest.raises(FormDefinitionError) as err:
        load_form(definition)
    assert any("already the quantity of 'lot'" in p for p in err.value.problems)


def test_a_quantity_field_on_an_equipment_scan_is_refused():
    definition = form({"material": "M"})
    definition["components"][0]["properties"] = {
        "fieldKind": "equipment",
        "equipmentClass": "x",
        "quantityField": "other",
    }
    with pytest.raises(FormDefinitionError) as err:
        load_form(definition)
    assert any("'quantityField' does not apply to a equipment field" in p for p in err.value.problems)


def test_produces_properties_are_parsed():
    assert parse_produces({}) is None
    assert parse_produces({"produces": "MAB-01-HCCF", "producedQuantity": "v"}) == Produces("MAB-01-HCCF", "v")
    assert parse_produces({"produces": "DS", "producedQuantity": "q", "producedLot": "lot"}).lot_field == "lot"


@pytest.mark.parametrize(
    "properties",
    [
        '<spiffworkflow:property name="produces" value="MAB-01-HCCF" />',  # no quantity
        '<spiffworkflow:property name="produces" value="bad code!" />'
        '<spiffworkflow:property name="producedQuantity" value="v" />',
        '<spiffworkflow:property name="producedQuantity" value="hccf_volume_l" />',  # no material
        '<spiffworkflow:property name="produces" value="M" />'
        '<spiffworkflow:property name="producedQuantity" value="v" />'
        '<spiffworkflow:property name="producedLot" value="1 lot" />',
    ],
)
def test_a_bad_produces_is_refused_at_import(rt, properties):
    entry = workflows.get("mab_upstream")
    good = (
        b'<spiffworkflow:property name="produces" value="MAB-01-HCCF" />\n'
        b'          <spiffworkflow:property name="producedQuantity" value="hccf_volume_l" />'
    )
    assert good in entry.files["up_harvest.bpmn"]
    files = {**entry.files, "up_harvest.bpmn": entry.files["up_harvest.bpmn"].replace(good, properties.encode())}
    with pytest.raises(RecipeInvalid) as err:
        recipes.import_recipe(rt, files, forms=entry.forms, user="qa.lead")
    assert [p.code for p in err.value.problems] == ["produces_invalid"]
    assert err.value.problems[0].element_id == "hv_hccf"
