"""Server-side validation of submitted step values: types, limits, lookups, findings."""

import json

import pytest
from marshmallow import Schema

from forms import (
    CompiledForm,
    FormRejected,
    ValidatedStep,
    compile_form,
    load_form,
)
from tests.forms.builders import make_form, number


def rejected(form, data, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(FormRejected) as info:
        form.validate(data, **kwargs)
    assert info.value.code == "form_invalid"
    assert info.value.http_status == 422
    return info.value.field_errors


# --- the sample form, happy path ------------------------------------------------------


def test_valid_inoculation_step(inoculation, submission, lookups):
    step = inoculation.validate(submission, lookups=lookups, batch_id="B-0001")
    assert isinstance(step, ValidatedStep)
    assert step.values["ph"] == "7.05"
    assert step.values["temperature"] == "36.5"
    assert step.values["inoculum_volume"] == "150"
    assert step.values["seeding_density"] == "0.500"
    assert step.values["inoculation_time"] == "2025-03-01T09:15:00+00:00"
    assert step.values["pre_checks"] == ["port_connected", "do_calibrated", "ph_calibrated"]
    assert step.values["line_clearance"] is True
    assert step.values["transfer_printout"] is None  # optional, left empty
    assert step.units["temperature"] == "°C"
    assert step.display["temperature"] == "36.5 °C"
    assert step.display["transfer_method"] == "Peristaltic pump"
    assert step.limit_findings == []
    assert step.signature_meaning == "Performed"
    assert step.witness_required is True and step.witness_role == "Supervisor"
    assert set(step.critical_keys) == {"seed_vcd", "seed_viability", "ph", "temperature"}
    assert step.form_id == "mab_n_stage_inoculation"
    assert step.definition_hash == inoculation.definition.definition_hash
    # every key of the form is present, and the whole step is JSON-safe
    assert set(step.values) == set(inoculation.definition.keys)
    json.dumps(step.to_dict())
    assert ("equipment", "BR-2000-01", "Bioreactor-2000L", "B-0001") in lookups.calls
    assert ("lot", "LOT-MED-0042", "MED-CHO-CD-001") in lookups.calls


def test_generated_schema_is_marshmallow(inoculation):
    assert issubclass(inoculation.schema_class, Schema)
    declared = inoculation.schema_class().fields
    assert set(declared) == set(inoculation.definition.keys)
    assert declared["seeding_density"].metadata["readOnly"] is True


# --- every component type ---------------------------------------------------------------


ALL_TYPES = make_form(
    {"type": "text", "text": "Do **this**."},
    number("amount", unit="g", decimals=2),
    {"type": "textfield", "key": "note", "label": "Note"},
    {"type": "textarea", "key": "essay", "label": "Essay"},
    {
        "type": "select",
        "key": "colour",
        "label": "Colour",
        "values": [{"label": "Red", "value": "red"}, {"label": "Blue", "value": "blue"}],
    },
    {
        "type": "radio",
        "key": "size",
        "label": "Size",
        "values": [{"label": "Small", "value": "s"}, {"label": "Large", "value": "l"}],
    },
    {"type": "checkbox", "key": "done", "label": "Done"},
    {
        "type": "checklist",
        "key": "steps",
        "label": "Steps",
        "values": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}, {"label": "C", "value": "c"}],
    },
    {"type": "datetime", "key": "when", "subtype": "datetime", "dateLabel": "When"},
    {"type": "datetime", "key": "day", "subtype": "date", "dateLabel": "Day"},
    {"type": "datetime", "key": "clock", "subtype": "time", "timeLabel": "Clock"},
    {
        "type": "group",
        "label": "Nested",
        "components": [
            {"type": "textfield", "key": "inner", "label": "Inner"},
            {"type": "spacer"},
            {"type": "separator"},
        ],
    },
    {"type": "textfield", "key": "lot", "label": "Lot", "properties": {"fieldKind": "materialLot", "material": "M1"}},
    {
        "type": "textfield",
        "key": "unit_id",
        "label": "Unit",
        "properties": {"fieldKind": "equipment", "equipmentClass": "Mixer"},
    },
    {
        "type": "textfield",
        "key": "photo",
        "label": "Photo",
        "properties": {"fieldKind": "attachment", "contentTypes": "image/*", "maxSize": "1000"},
    },
)

GOOD_ATTACHMENT = {"filename": "foam.png", "content_type": "image/png", "sha256": "ab" * 32, "size": 999}


class AllOk:
    def check_material_lot(self, lot_id, material):
        from forms import LotCheck

        return LotCheck(True)

    def check_equipment(self, equipment_id, equipment_class, batch_id):
        from forms import EquipmentCheck

        return EquipmentCheck(True)


@pytest.fixture
def all_types():
    return compile_form(ALL_TYPES)


def test_every_component_type_accepted(all_types):
    step = all_types.validate(
        {
            "amount": "12.50",
            "note": "hello",
            "essay": "line 1\nline 2\ttabbed",
            "colour": "blue",
            "size": "s",
            "done": False,
            "steps": ["c", "a"],
            "when": "2025-01-31T14:30:00Z",
            "day": "2025-01-31",
            "clock": "14:30",
            "inner": "x",
            "lot": " L-1\r\n",
            "unit_id": "MX-1",
            "photo": GOOD_ATTACHMENT,
        },
        lookups=AllOk(),
    )
    v = step.values
    assert v["amount"] == "12.50"
    assert v["note"] == "hello"
    assert v["essay"] == "line 1\nline 2\ttabbed"
    assert (v["colour"], v["size"], v["done"]) == ("blue", "s", False)
    assert v["steps"] == ["a", "c"]  # definition order
    assert v["when"] == "2025-01-31T14:30:00+00:00"
    assert (v["day"], v["clock"]) == ("2025-01-31", "14:30:00")
    assert v["inner"] == "x"
    assert v["lot"] == "L-1"  # scanner whitespace trimmed for ids only
    assert v["unit_id"] == "MX-1"
    assert v["photo"] == GOOD_ATTACHMENT
    assert step.display["steps"] == "A, C"
    assert step.display["done"] == "No"
    assert step.display["colour"] == "Blue"


def test_empty_optional_fields_are_none(all_types):
    step = all_types.validate({"amount": None, "note": "", "steps": [], "colour": None}, lookups=AllOk())
    assert all(value is None for key, value in step.values.items())


@pytest.mark.parametrize(
    "key, value",
    [
        ("amount", "twelve"),  # string for number
        ("amount", True),  # boolean for number
        ("amount", [1]),
        ("amount", {"value": 1}),
        ("amount", "1,5"),
        ("amount", " 1"),
        ("note", ["a", "b"]),  # list for text
        ("note", 12),
        ("essay", {"a": 1}),
        ("when", 1738333800),  # number for datetime
        ("when", "2025-01-31T14:30:00"),  # no time zone
        ("when", "31/01/2025 14:30"),
        ("when", "2025-02-30T10:00:00Z"),
        ("when", "0001-01-01T00:00:00+01:00"),  # no UTC equivalent
        ("when", "9999-12-31T23:59:59-01:00"),
        ("day", "2025-13-01"),
        ("day", "20250131"),
        ("clock", "25:00"),
        ("colour", "green"),
        ("colour", ["red"]),
        ("size", 1),
        ("done", "true"),
        ("done", 1),
        ("steps", "a"),
        ("steps", ["a", "a"]),
        ("steps", ["d"]),
        ("lot", 42),
        ("photo", "foam.png"),
    ],
)
def test_wrong_types_refused(all_types, key, value):
    errors = rejected(all_types, {key: value}, lookups=AllOk())
    assert list(errors) == [key]
    assert errors[key] and all(isinstance(m, str) for m in errors[key])


def test_type_messages_name_the_field(all_types):
    errors = rejected(all_types, {"amount": "twelve", "note": ["a"], "when": 5}, lookups=AllOk())
    assert errors["amount"] == ["amount must be a number, not the text 'twelve'."]
    assert errors["note"] == ["Note must be text, not list."]
    assert errors["when"][0].startswith("When must be a datetime as ISO 8601 text")


def test_select_does_not_confuse_types():
    form = compile_form(
        make_form(
            {
                "type": "select",
                "key": "n",
                "label": "N",
                "values": [{"label": "one", "value": 1}, {"label": "x", "value": "1"}],
            }
        )
    )
    assert form.validate({"n": 1}).values["n"] == 1
    assert form.validate({"n": "1"}).values["n"] == "1"
    assert "n" in rejected(form, {"n": True})


def test_missing_required(inoculation, submission, lookups):
    del submission["ph"]
    submission["temperature"] = None
    submission["seed_appearance"] = ""
    submission["pre_checks"] = []
    errors = rejected(inoculation, submission, lookups=lookups)
    assert errors["ph"] == ["pH is required."]
    assert errors["temperature"] == ["Temperature is required."]
    assert errors["seed_appearance"] == ["Seed culture appearance is required."]
    assert errors["pre_checks"] == ["Pre-inoculation checks is required."]


def test_required_checkbox_must_be_ticked(inoculation, submission, lookups):
    submission["line_clearance"] = False
    assert rejected(inoculation, submission, lookups=lookups) == {
        "line_clearance": ["Line clearance confirmed must be ticked."]
    }


def test_unknown_fields_refused(inoculation, submission, lookups):
    submission["ph_override"] = 7.0
    submission["__proto__"] = {}
    errors = rejected(inoculation, submission, lookups=lookups)
    assert errors == {
        "ph_override": ["This form has no field 'ph_override'."],
        "__proto__": ["This form has no field '__proto__'."],
    }


def test_submission_must_be_an_object(inoculation, lookups):
    for data in (["ph", 7], "ph=7", None, 7):
        assert "_form" in rejected(inoculation, data, lookups=lookups)


def test_all_problems_reported_together(inoculation, submission, lookups):
    submission.update(ph=9.9, temperature="hot", media_lot="LOT-MED-0001", extra=1)
    errors = rejected(inoculation, submission, lookups=lookups)
    assert set(errors) == {"ph", "temperature", "media_lot", "extra"}


def test_rejection_shape():
    form = compile_form(make_form(number("x", required=True)))
    with pytest.raises(FormRejected) as info:
        form.validate({})
    body = info.value.to_dict()
    assert body["code"] == "form_invalid"
    assert body["field_errors"] == {"x": ["x is required."]}
    assert "Nothing was recorded" in body["message"]


# --- numbers: NaN, infinity, huge, decimals -------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "NaN", "Infinity", "-Infinity", "nan"])
def test_nan_and_infinity_refused(value):
    form = compile_form(make_form(number("x")))
    errors = rejected(form, {"x": value})
    assert list(errors) == ["x"]


def test_json_overflow_float_refused():
    form = compile_form(make_form(number("x")))
    data = json.loads('{"x": 1e400}')  # Python's json turns this into inf
    assert "finite" in rejected(form, data)["x"][0]


@pytest.mark.parametrize("value", [10**15, -(10**15), 10**400, 1e16, "1e15", "123456789012345678", "1e9999"])
def test_huge_numbers_refused(value):
    form = compile_form(make_form(number("x")))
    assert "too large" in rejected(form, {"x": value})["x"][0]


def test_largest_allowed_number():
    form = compile_form(make_form(number("x")))
    assert form.validate({"x": 10**15 - 1}).values["x"] == "999999999999999"
    assert form.validate({"x": "-999999999999999.5"}).values["x"] == "-999999999999999.5"


def test_too_many_decimals_refused_not_rounded():
    form = compile_form(make_form(number("ph", "pH", decimals=2)))
    assert rejected(form, {"ph": 7.123}) == {"ph": ["pH takes at most 2 decimal places (7.123 has 3)."]}
    assert form.validate({"ph": "7.100"}).values["ph"] == "7.10"  # trailing zeros dropped, value kept
    assert form.validate({"ph": 7.1}).values["ph"] == "7.1"
    assert form.validate({"ph": "7"}).values["ph"] == "7"


def test_number_forms_canonicalised():
    form = compile_form(make_form(number("x")))
    assert form.validate({"x": "1e2"}).values["x"] == "100"
    assert form.validate({"x": 0.1}).values["x"] == "0.1"
    assert form.validate({"x": -0.0}).values["x"] == "0.0"  # no negative zero
    assert form.validate({"x": "0.000000000001"}).values["x"] == "0.000000000001"
    assert "decimal places" in rejected(form, {"x": "1e-13"})["x"][0]


# --- text: caps, verbatim --------------------------------------------------------------


HOSTILE = [
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ config.items() }}",
    "'; DROP TABLE step; --",
    "=cmd|' /C calc'!A0",
    "\u202eevil\u200b text ☃ 🧫",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_stored_verbatim(inoculation, submission, lookups, text):
    submission["comments"] = text
    step = inoculation.validate(submission, lookups=lookups)
    assert step.values["comments"] == text
    assert step.display["comments"] == text


def test_oversize_strings_refused(all_types):
    errors = rejected(all_types, {"note": "x" * 1_001, "essay": "y" * 10_001}, lookups=AllOk())
    assert errors["note"] == ["Note is too long: 1,001 characters, at most 1,000."]
    assert errors["essay"] == ["Essay is too long: 10,001 characters, at most 10,000."]
    step = all_types.validate({"note": "x" * 1_000, "essay": "y" * 10_000}, lookups=AllOk())
    assert len(step.values["essay"]) == 10_000


def test_huge_string_refused_quickly(all_types):
    errors = rejected(all_types, {"essay": "z" * 5_000_000}, lookups=AllOk())
    assert "too long" in errors["essay"][0]


def test_control_characters_refused(all_types):
    errors = rejected(all_types, {"note": "a\x00b"}, lookups=AllOk())
    assert "control characters" in errors["note"][0]


def test_pattern_and_max_length_from_form_js(inoculation, submission, lookups):
    submission["sample_id"] = "S-12"
    errors = rejected(inoculation, submission, lookups=lookups)
    assert errors == {"sample_id": ["Day-0 sample ID does not have the expected format: “S-”, then 6 digits."]}
    submission["sample_id"] = "S-000001\nS-000002"
    assert "sample_id" in rejected(inoculation, submission, lookups=lookups)


def test_identifier_length_capped(all_types):
    assert "too long" in rejected(all_types, {"lot": "L" * 101}, lookups=AllOk())["lot"][0]


# --- hard limits (inclusive) -------------------------------------------------------------


@pytest.mark.parametrize("value", ["6.50", "7.60", "6.5", "7.6"])
def test_hard_limits_are_inclusive(inoculation, submission, lookups, value):
    submission["ph"] = value
    step = inoculation.validate(submission, lookups=lookups)
    assert step.values["ph"] == value


def test_hard_limit_refused_with_limit_and_unit(inoculation, submission, lookups):
    submission["temperature"] = 40.1
    submission["ph"] = 6.49
    errors = rejected(inoculation, submission, lookups=lookups)
    assert errors["temperature"] == [
        "Temperature 40.1 °C is above the upper limit of 40.0 °C (hard limit); it cannot be recorded."
    ]
    assert errors["ph"] == ["pH 6.49 is below the lower limit of 6.50 (hard limit); it cannot be recorded."]


def test_form_js_min_max_are_hard_limits(inoculation, submission, lookups):
    submission["inoculum_volume"] = -1
    errors = rejected(inoculation, submission, lookups=lookups)
    assert errors["inoculum_volume"] == [
        "Inoculum volume transferred -1 L is below the lower limit of 0 L (hard limit); it cannot be recorded."
    ]


# --- alert and action findings at the boundaries --------------------------------------------


@pytest.mark.parametrize(
    "value, severity, limit_name",
    [
        ("6.90", None, None),  # on alertLow: fine
        ("6.89", "alert", "alertLow"),
        ("6.80", "alert", "alertLow"),  # on actionLow: only an alert
        ("6.79", "action", "actionLow"),
        ("6.50", "action", "actionLow"),  # on hardMin: accepted, action
        ("7.20", None, None),
        ("7.21", "alert", "alertHigh"),
        ("7.30", "alert", "alertHigh"),
        ("7.31", "action", "actionHigh"),
        ("7.60", "action", "actionHigh"),
    ],
)
def test_alert_and_action_boundaries(inoculation, submission, lookups, value, severity, limit_name):
    submission["ph"] = value
    step = inoculation.validate(submission, lookups=lookups)
    findings = [f for f in step.limit_findings if f.key == "ph"]
    if severity is None:
        assert findings == []
    else:
        (finding,) = findings
        assert (finding.severity, finding.limit_name) == (severity, limit_name)
        assert finding.value == value
        assert finding.critical is True
        assert finding.label == "pH"


def test_finding_content(inoculation, submission, lookups):
    submission["temperature"] = 37.6
    step = inoculation.validate(submission, lookups=lookups)
    (finding,) = step.limit_findings
    assert finding.to_dict() == {
        "key": "temperature",
        "label": "Temperature",
        "value": "37.6",
        "unit": "°C",
        "severity": "action",
        "limit_name": "actionHigh",
        "limit_value": "37.5",
        "critical": True,
        "message": ("Temperature 37.6 °C is above the upper action limit of 37.5 °C — critical process parameter."),
        "limits": finding.limits,
    }
    assert finding.limits["actionHigh"] == "37.5" and finding.limits["alertLow"] == "36.0"


def test_non_critical_finding(inoculation, submission, lookups):
    submission["working_volume"] = 1650
    (finding,) = inoculation.validate(submission, lookups=lookups).limit_findings
    assert finding.critical is False and finding.severity == "alert"
    assert finding.message.endswith("1600 L.")


# --- calculated fields ------------------------------------------------------------------


def test_calculated_value_recomputed_ignoring_browser(inoculation, submission, lookups):
    submission["seeding_density"] = 0.55  # what a tampered browser claims
    step = inoculation.validate(submission, lookups=lookups)
    assert step.values["seeding_density"] == "0.500"
    assert step.notes == [
        "Seeding density (calculated): recalculated on the server as 0.500; "
        "the value sent by the browser (0.55) was ignored."
    ]


def test_calculated_value_matching_browser_is_noted_without_complaint(inoculation, submission, lookups):
    submission["seeding_density"] = "0.500"
    step = inoculation.validate(submission, lookups=lookups)
    assert step.notes == ["Seeding density (calculated): recalculated on the server as 0.500."]


def test_calculated_garbage_from_browser_is_ignored(inoculation, submission, lookups):
    submission["seeding_density"] = {"__class__": "<script>"}
    step = inoculation.validate(submission, lookups=lookups)
    assert step.values["seeding_density"] == "0.500"


def test_calculated_rounding_half_up_and_findings(inoculation, submission, lookups):
    submission.update(seed_vcd=3.5, inoculum_volume=100, working_volume=1400)  # 0.25
    step = inoculation.validate(submission, lookups=lookups)
    assert step.values["seeding_density"] == "0.250"
    kinds = {(f.key, f.severity) for f in step.limit_findings}
    assert ("seeding_density", "action") in kinds
    submission.update(seed_vcd=4.01, inoculum_volume=150, working_volume=1500)  # 0.401
    step = inoculation.validate(submission, lookups=lookups)
    assert step.values["seeding_density"] == "0.401"
    submission.update(seed_vcd=4.0, inoculum_volume=0.5, working_volume=1000)  # 0.0020 -> 0.002
    assert inoculation.validate(submission, lookups=lookups).values["seeding_density"] == "0.002"
    submission.update(seed_vcd=5.0, inoculum_volume=0.1, working_volume=2000)  # 0.00025 -> 0.000
    assert inoculation.validate(submission, lookups=lookups).values["seeding_density"] == "0.000"


def test_calculation_division_by_zero_is_a_field_error():
    form = compile_form(make_form(number("a"), number("b"), number("ratio", decimals=2, calculation="a / b")))
    assert rejected(form, {"a": 1, "b": 0}) == {"ratio": ["ratio cannot be calculated: division by zero."]}


def test_calculation_with_missing_optional_input():
    form = compile_form(make_form(number("a"), number("b"), number("total", decimals=1, calculation="a + b")))
    assert form.validate({"a": 1}).values["total"] is None
    required = make_form(
        number("a"),
        number("b"),
        {**number("total", "Total", decimals=1, calculation="a + b"), "validate": {"required": True}},
    )
    assert rejected(compile_form(required), {"a": 1}) == {"total": ["Total cannot be calculated: enter b."]}


def test_calculated_field_hard_limit():
    form = compile_form(make_form(number("a"), number("double", decimals=0, calculation="a * 2", hardMax=10)))
    assert "upper limit of 10 (hard limit)" in rejected(form, {"a": 6})["double"][0]


def test_chained_calculations_in_dependency_order():
    form = compile_form(
        make_form(
            number("c", decimals=2, calculation="b * 2"),
            number("b", decimals=2, calculation="a + 1"),
            number("a"),
        )
    )
    assert form.validate({"a": 1}).values == {"c": "4.00", "b": "2.00", "a": "1"}


def test_calculation_functions():
    form = compile_form(
        make_form(
            number("x"),
            number(
                "y",
                decimals=3,
                calculation="round(sqrt(x), 1) + ln(exp(1)) + log10(100) + max(x, 1, 2) - abs(-min(x, 3))",
            ),
        )
    )
    # 4.0 + 1 + 2 + 16 - 3
    assert form.validate({"x": 16}).values["y"] == "20.000"


def test_calculation_undefined_math_is_a_field_error():
    form = compile_form(make_form(number("x"), number("y", decimals=2, calculation="sqrt(x)")))
    assert "cannot be calculated" in rejected(form, {"x": -4})["y"][0]


def test_calculation_power_bomb_is_refused():
    form = compile_form(make_form(number("x"), number("y", decimals=2, calculation="x ** x ** x")))
    assert "cannot be calculated" in rejected(form, {"x": 99})["y"][0]


# --- lookups -----------------------------------------------------------------------------


def test_lookups_failures_are_field_errors(inoculation, submission, lookups):
    submission["media_lot"] = "LOT-BUF-0007"
    submission["bioreactor_id"] = "BR-2000-02"
    errors = rejected(inoculation, submission, lookups=lookups, batch_id="B-0001")
    assert errors == {
        "media_lot": ["Lot LOT-BUF-0007 is BUF-PBS-001, not MED-CHO-CD-001."],
        "bioreactor_id": ["BR-2000-02 is in use by batch B-0999."],
    }


def test_lookups_default_messages(inoculation, submission, lookups):
    submission["bioreactor_id"] = "BR-9"
    errors = rejected(inoculation, submission, lookups=lookups)
    assert errors["bioreactor_id"] == [
        "Equipment BR-9 cannot be used: it must be a clean, calibrated, free Bioreactor-2000L."
    ]


def test_equipment_in_use_by_same_batch_is_fine(inoculation, submission, lookups):
    submission["bioreactor_id"] = "BR-2000-02"
    inoculation.validate(submission, lookups=lookups, batch_id="B-0999")


def test_expired_lot(inoculation, submission, lookups):
    submission["media_lot"] = "LOT-MED-0001"
    assert rejected(inoculation, submission, lookups=lookups) == {
        "media_lot": ["Lot LOT-MED-0001 expired on 2024-12-31."]
    }


def test_lookups_not_called_for_malformed_ids(inoculation, submission, lookups):
    submission["media_lot"] = ["LOT"]
    rejected(inoculation, submission, lookups=lookups)
    assert not [c for c in lookups.calls if c[0] == "lot"]


def test_lookups_required_for_forms_that_scan(inoculation, submission):
    with pytest.raises(TypeError, match="pass lookups="):
        inoculation.validate(submission)


def test_lookup_exceptions_propagate(inoculation, submission):
    class Broken:
        def check_material_lot(self, lot_id, material):
            raise ConnectionError("ERP down")

        def check_equipment(self, equipment_id, equipment_class, batch_id):
            from forms import EquipmentCheck

            return EquipmentCheck(True)

    with pytest.raises(ConnectionError):
        inoculation.validate(submission, lookups=Broken())


# --- attachments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sha256": "xyz"}, "sha256 must be 64 hexadecimal characters"),
        ({"sha256": "ab" * 31}, "sha256 must be 64 hexadecimal characters"),
        ({"size": 1001}, "too large"),
        ({"size": 0}, "empty"),
        ({"size": "999"}, "whole number"),
        ({"size": True}, "whole number"),
        ({"content_type": "application/pdf"}, "not accepted"),
        ({"content_type": "not a type"}, "media type"),
        ({"filename": "../../etc/passwd"}, "plain file name"),
        ({"filename": ""}, "plain file name"),
        ({"extra": 1}, "unknown attachment field"),
    ],
)
def test_attachment_metadata_checked(all_types, change, message):
    errors = rejected(all_types, {"photo": {**GOOD_ATTACHMENT, **change}}, lookups=AllOk())
    assert any(message in m for m in errors["photo"]), errors


def test_attachment_missing_keys(all_types):
    errors = rejected(all_types, {"photo": {"filename": "a.png"}}, lookups=AllOk())
    assert errors["photo"] == ["Photo: missing content_type, sha256, size."]


def test_attachment_hash_lowercased(all_types):
    step = all_types.validate({"photo": {**GOOD_ATTACHMENT, "sha256": "AB" * 32}}, lookups=AllOk())
    assert step.values["photo"]["sha256"] == "ab" * 32


# --- caching ----------------------------------------------------------------------------


def test_compiled_form_is_cached(inoculation_source):
    first = compile_form(inoculation_source)
    assert compile_form(inoculation_source) is first
    assert compile_form(json.dumps(inoculation_source, indent=2)) is first  # same content
    assert compile_form(load_form(inoculation_source)) is first
    assert isinstance(first, CompiledForm)


def test_changed_definition_compiles_anew(inoculation_source):
    first = compile_form(inoculation_source)
    inoculation_source["components"][-1]["label"] = "Remarks"
    second = compile_form(inoculation_source)
    assert second is not first
    assert second.definition.definition_hash != first.definition.definition_hash


def test_validation_does_not_mutate_submission(inoculation, submission, lookups):
    before = json.dumps(submission, sort_keys=True)
    inoculation.validate(submission, lookups=lookups)
    assert json.dumps(submission, sort_keys=True) == before


@pytest.mark.parametrize("key", ["load", "validate", "fields", "dump", "opts", "unknown", "context"])
def test_keys_named_like_schema_attributes_work(key):
    assert compile_form(make_form(number(key))).validate({key: 1}).values == {key: "1"}
