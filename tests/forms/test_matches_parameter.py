"""`matchesParameter`: a text field whose value must equal a batch parameter — the
patient's chain-of-identity (COI) id scanned at every hand-off of an autologous therapy.
A mismatch refuses the whole step; the expected id is never shown."""

from __future__ import annotations

import pytest

from forms import FormDefinitionError, FormRejected, compile_form, load_form, render_data


def coi_form(**props):
    return {
        "type": "default",
        "id": "coi_check",
        "components": [
            {
                "type": "textfield",
                "key": "coi_scan",
                "label": "Patient COI",
                "validate": {"required": True, "pattern": "COI-[0-9]{6}"},
                "properties": {"matchesParameter": "coi_id", "critical": "true", **props},
            },
            {"type": "number", "key": "bags", "label": "Bags", "properties": {"hardMin": "1"}},
        ],
    }


def test_matching_id_is_accepted_and_recorded():
    step = compile_form(coi_form()).validate({"coi_scan": "COI-000123", "bags": 2}, parameters={"coi_id": "COI-000123"})
    assert step.values["coi_scan"] == "COI-000123"
    assert load_form(coi_form()).fields[0].matches_parameter == "coi_id"
    assert render_data(coi_form())[0]["matches_parameter"] == "coi_id"


def test_mismatch_is_refused_without_showing_the_expected_id():
    with pytest.raises(FormRejected) as caught:
        compile_form(coi_form()).validate({"coi_scan": "COI-999999", "bags": 2}, parameters={"coi_id": "COI-000123"})
    (message,) = caught.value.field_errors["coi_scan"]
    assert "does not match" in message and "coi_id" in message
    assert "COI-000123" not in message
    assert caught.value.http_status == 422


def test_batch_without_the_parameter_is_refused():
    with pytest.raises(FormRejected) as caught:
        compile_form(coi_form()).validate({"coi_scan": "COI-000123"}, parameters={})
    assert "no parameter 'coi_id'" in caught.value.field_errors["coi_scan"][0]


def test_validating_without_parameters_is_a_programming_error():
    with pytest.raises(TypeError, match="parameters="):
        compile_form(coi_form()).validate({"coi_scan": "COI-000123"})


@pytest.mark.parametrize(
    "component",
    [
        {"type": "number", "key": "n", "properties": {"matchesParameter": "coi_id"}},
        {"type": "textfield", "key": "t", "properties": {"matchesParameter": "not a name"}},
        {"type": "textfield", "key": "t", "properties": {"matchesParameter": "coi_id", "fieldKind": "attachment"}},
    ],
)
def test_misplaced_or_malformed_property_is_refused_at_load(component):
    with pytest.raises(FormDefinitionError, match="matchesParameter"):
        load_form({"type": "default", "id": "bad", "components": [component]})
