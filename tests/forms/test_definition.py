"""Loading form-js definitions: what is accepted, and readable refusals for the rest."""

import json

import pytest

from forms import FormDefinitionError, GroupHeading, Instructions, load_form
from tests.forms.builders import make_form, number


def refused(source) -> list[str]:
    with pytest.raises(FormDefinitionError) as info:
        load_form(source)
    assert info.value.code == "form_definition_invalid"
    assert info.value.problems
    for problem in info.value.problems:
        assert problem in str(info.value)
    return info.value.problems


def one_problem(source) -> str:
    problems = refused(source)
    assert len(problems) == 1, problems
    return problems[0]


# --- the sample form ---------------------------------------------------------------------


def test_sample_form_loads(inoculation_source):
    form = load_form(inoculation_source)
    assert form.id == "mab_n_stage_inoculation"
    assert form.schema_version == 16
    assert form.keys == (
        "bioreactor_id",
        "media_lot",
        "pre_checks",
        "line_clearance",
        "seed_vcd",
        "seed_viability",
        "inoculum_volume",
        "seed_appearance",
        "working_volume",
        "ph",
        "temperature",
        "seeding_density",
        "inoculation_time",
        "transfer_method",
        "sample_id",
        "transfer_printout",
        "comments",
    )
    ph = form.field("ph")
    assert ph.decimals == 2 and ph.critical and ph.unit is None
    assert {k: str(v) for k, v in ph.limits.items()} == {
        "hardMin": "6.50",
        "actionLow": "6.80",
        "alertLow": "6.90",
        "alertHigh": "7.20",
        "actionHigh": "7.30",
        "hardMax": "7.60",
    }
    assert form.field("inoculum_volume").limits["hardMin"] == 0  # from validate.min
    assert form.field("inoculation_time").label == "Inoculation date"
    assert form.field("media_lot").kind == "materialLot"
    assert form.field("media_lot").material == "MED-CHO-CD-001"
    assert form.field("bioreactor_id").equipment_class == "Bioreactor-2000L"
    assert form.field("transfer_printout").content_types == ("application/pdf", "image/*")
    assert form.field("seed_vcd").group == "Seed culture"
    assert form.calculation_order == ("seeding_density",)
    assert form.field("seeding_density").calculation.references == ("seed_vcd", "inoculum_volume", "working_volume")
    assert form.instructions[0].startswith("# Inoculate the N-stage bioreactor")
    assert (form.signature_meaning, form.witness_required, form.witness_role) == ("Performed", True, "Supervisor")
    assert isinstance(form.items[0], Instructions)
    assert isinstance(form.items[1], GroupHeading)


def test_sample_form_is_plain_form_js(inoculation_source):
    """Batchline settings live only in `properties`, with string values, as the editor writes them."""

    def walk(components):
        for component in components:
            assert component["type"] in {
                "text",
                "group",
                "number",
                "textfield",
                "textarea",
                "select",
                "radio",
                "checkbox",
                "checklist",
                "datetime",
            }
            assert all(isinstance(v, str) for v in component.get("properties", {}).values())
            yield component
            yield from walk(component.get("components", []))

    components = list(walk(inoculation_source["components"]))
    keys = [c["key"] for c in components if "key" in c]
    assert len(keys) == len(set(keys))
    assert inoculation_source["type"] == "default"
    assert inoculation_source["schemaVersion"] == 16


def test_loads_from_json_text(inoculation_source):
    assert load_form(json.dumps(inoculation_source)).definition_hash == load_form(inoculation_source).definition_hash


def test_default_signature_meaning():
    form = load_form(make_form(number("x")))
    assert (form.signature_meaning, form.witness_required, form.witness_role) == ("Performed", False, None)


def test_form_settings_on_root_properties():
    form = load_form(make_form(number("x"), properties={"signatureMeaning": "Verified"}))
    assert form.signature_meaning == "Verified"


def test_other_tools_properties_pass_with_x_prefix():
    form = load_form(make_form({**number("x"), "properties": {"x-opcua-node": "ns=2;s=PH"}}))
    assert form.keys == ("x",)


def test_decimal_digits_from_form_js():
    assert load_form(make_form({**number("x"), "decimalDigits": 3})).field("x").decimals == 3


# --- malformed definitions ------------------------------------------------------------------


def test_not_json():
    assert "not valid JSON" in one_problem("{not json")
    assert "not valid JSON" in one_problem('{"type": "default", "x": NaN}')
    assert "JSON object" in one_problem("[]")


def test_root_shape():
    problems = refused({"type": "form", "components": "none"})
    text = "\n".join(problems)
    assert '"type" must be "default"' in text
    assert 'needs an "id"' in text
    assert '"components" list' in text


def test_no_input_fields():
    assert one_problem(make_form({"type": "text", "text": "hi"})) == "the form has no input fields"


def test_duplicate_keys_even_across_groups():
    problem = one_problem(make_form(number("ph"), {"type": "group", "label": "G", "components": [number("ph")]}))
    assert problem == (
        "components[1].components[0] (key 'ph'): duplicate key 'ph' (also used at components[0] (key 'ph'))"
    )


def test_unknown_type():
    problem = one_problem(make_form(number("x"), {"type": "html", "content": "<b>hi</b>"}))
    assert problem.startswith("components[1]: component type 'html' is not supported; use one of number,")


@pytest.mark.parametrize("key", ["1ph", "p h", "ph.value", "__class__", "_x", "", None, "a" * 65, "pH-value"])
def test_keys_must_be_identifier_like(key):
    component = {"type": "number", "label": "pH"}
    if key is not None:
        component["key"] = key
    assert "must start with a letter" in one_problem(make_form(component))


@pytest.mark.parametrize("key", ["lambda", "sqrt", "import", "Meta"])
def test_reserved_keys(key):
    assert "reserved word" in one_problem(make_form(number(key)))


def test_limits_not_numeric():
    problem = one_problem(make_form(number("ph", hardMin="six")))
    assert problem == "components[0] (key 'ph'): limit 'hardMin' must be a number, not 'six'"
    assert "must be a number" in one_problem(make_form(number("ph", alertHigh="NaN")))
    assert "must be a number" in one_problem(make_form(number("ph", actionHigh="Infinity")))


def test_hard_min_above_hard_max():
    problem = one_problem(make_form(number("ph", hardMin=8, hardMax=6)))
    assert problem == "components[0] (key 'ph'): hardMin (8) is greater than hardMax (6): the hard range is empty"


def test_alert_limits_outside_hard_limits():
    problem = one_problem(make_form(number("ph", hardMin=6.5, hardMax=7.5, alertHigh=7.6)))
    assert problem.endswith(
        "alertHigh (7.6) is greater than hardMax (7.5): alert limits must lie within the hard limits"
    )


def test_action_limits_inside_alert_limits():
    problem = one_problem(make_form(number("ph", alertLow=6.9, actionLow=7.0)))
    assert problem.endswith(
        "actionLow (7.0) is greater than alertLow (6.9): action limits must lie outside (or on) the alert limits"
    )


def test_equal_limits_are_allowed():
    form = load_form(make_form(number("ph", hardMin=6.8, actionLow=6.8, alertLow=6.8, alertHigh=7.2, hardMax=7.2)))
    assert form.field("ph").limits["alertLow"] == form.field("ph").limits["hardMin"]


def test_native_and_property_hard_limits_must_agree():
    component = {**number("x", hardMin=1), "validate": {"min": 2}}
    assert "disagree" in one_problem(make_form(component))


def test_limits_on_text_field():
    component = {"type": "textfield", "key": "t", "label": "T", "properties": {"hardMax": "5"}}
    assert one_problem(make_form(component)) == (
        "components[0] (key 't'): property 'hardMax' does not apply to a textfield field"
    )


def test_unknown_property_suggests_spelling():
    problem = one_problem(make_form({**number("ph"), "properties": {"alertlow": "6.9"}}))
    assert "unknown property 'alertlow' (did you mean 'alertLow'?)" in problem


def test_flags_must_be_true_or_false():
    assert 'must be "true" or "false"' in one_problem(make_form(number("x", critical="yes")))


def test_signature_meaning_checked():
    problem = one_problem(make_form({**number("x"), "properties": {"signatureMeaning": "Done"}}))
    assert "signatureMeaning must be one of Performed, Verified" in problem


def test_conflicting_form_settings():
    problem = one_problem(
        make_form(
            {**number("a"), "properties": {"signatureMeaning": "Performed"}},
            {**number("b"), "properties": {"signatureMeaning": "Verified"}},
        )
    )
    assert "set it once" in problem


def test_witness_role_without_witness():
    assert "witnessRequired is not" in one_problem(make_form({**number("x"), "properties": {"witnessRole": "QA"}}))


def test_calculation_does_not_parse():
    problem = one_problem(make_form(number("a"), number("b", decimals=1, calculation="a +* 2")))
    assert problem.startswith("components[1] (key 'b'): the calculation 'a +* 2' does not parse")


def test_calculation_unknown_key():
    problem = one_problem(make_form(number("volume"), number("b", decimals=1, calculation="volme * 2")))
    assert problem == ("calculated field 'b': the calculation refers to unknown field 'volme' (did you mean 'volume'?)")


def test_calculation_reads_non_number():
    form = make_form({"type": "textfield", "key": "t", "label": "T"}, number("b", decimals=1, calculation="t * 2"))
    assert "which is not a number field" in one_problem(form)


def test_calculation_cycles():
    form = make_form(
        number("a", decimals=1, calculation="c + 1"),
        number("b", decimals=1, calculation="a + 1"),
        number("c", decimals=1, calculation="b + 1"),
        number("d", decimals=1, calculation="d * 2"),
    )
    problems = refused(form)
    assert len(problems) == 2
    assert "calculated fields depend on each other in a cycle: a -> c -> b -> a" in problems
    assert "calculated fields depend on each other in a cycle: d -> d" in problems


def test_calculation_needs_decimals():
    assert "needs 'decimals'" in one_problem(make_form(number("a"), number("b", calculation="a * 2")))


@pytest.mark.parametrize(
    "expression, words",
    [
        ("a.__class__", "attribute access ('.__class__')"),
        ("__import__('os').system('id')", "only these functions may be called"),
        ("a.__class__.__mro__[1].__subclasses__()", "only these functions"),
        ("import os", "does not parse"),
        ("exec('1')", "only these functions may be called"),
        ("__builtins__", "the name '__builtins__' is not allowed"),
        ("[x for x in (1, 2)]", "comprehensions"),
        ("lambda: 1", "lambda"),
        ("'a' * 10", "only numbers are allowed"),
        ("a if a > 1 else 2", "comparisons and conditions"),
        ("a[0]", "subscripts"),
        ("a; a", "does not parse"),
        ("(a := 3)", "assignment"),
        ("a // 2", "is not allowed"),
        ("a << 50", "is not allowed"),
        ("sqrt(x=a)", "no keywords"),
        ("sqrt(a, a)", "takes 1 argument(s), got 2"),
        ("sqrt", "is a function"),
        ("True + a", "only numbers are allowed"),
        ("", "non-empty"),
        ("a + " * 200 + "a", "longer than 500"),
    ],
)
def test_unsafe_or_unsupported_calculations_refused(expression, words):
    problems = refused(make_form(number("a"), number("b", decimals=1, calculation=expression)))
    assert any(words in p for p in problems), problems


def test_unsupported_form_js_features_refused():
    components = [
        {**number("a"), "conditional": {"hide": "=b > 1"}},
        {"type": "select", "key": "s", "label": "S", "valuesKey": "options"},
        {"type": "group", "label": "G", "path": "nested", "components": [number("c")]},
        {"type": "textfield", "key": "e", "label": "E", "validate": {"validationType": "email"}},
        {**number("r"), "readonly": True},
        {**number("d"), "disabled": True},
        {"type": "datetime", "key": "t", "subtype": "datetime", "timeSerializingFormat": "no_timezone"},
    ]
    problems = refused(make_form(*components))
    text = "\n".join(problems)
    for words in (
        "conditional visibility",
        "valuesKey",
        "group 'path' is not supported",
        "validationType",
        "only calculated fields may be read-only",
        "disabled fields",
        "no_timezone",
    ):
        assert words in text


def test_every_problem_listed_at_once():
    problems = refused(
        make_form(
            number("ph", hardMin="x"),
            number("ph"),
            {"type": "rating", "key": "r"},
            number("c", decimals=1, calculation="nope + 1"),
        )
    )
    assert len(problems) == 4


def test_choices_need_values():
    assert "non-empty 'values'" in one_problem(make_form({"type": "radio", "key": "r", "label": "R"}))
    problem = one_problem(
        make_form(
            {
                "type": "radio",
                "key": "r",
                "label": "R",
                "values": [{"label": "A", "value": "a"}, {"label": "A", "value": "a"}],
            }
        )
    )
    assert "listed twice" in problem


def test_text_caps_cannot_be_raised():
    component = {"type": "textfield", "key": "t", "label": "T", "validate": {"maxLength": 5000}}
    assert "from 0 to 1000" in one_problem(make_form(component))


def test_material_lot_needs_material():
    component = {"type": "textfield", "key": "lot", "label": "Lot", "properties": {"fieldKind": "materialLot"}}
    assert "needs 'material'" in one_problem(make_form(component))


def test_field_kind_only_on_textfield():
    component = {**number("x"), "properties": {"fieldKind": "equipment", "equipmentClass": "Tank"}}
    problems = refused(make_form(component))
    assert any("fieldKind" in p for p in problems)


def test_bad_pattern():
    component = {"type": "textfield", "key": "t", "label": "T", "validate": {"pattern": "([a-z"}}
    assert "cannot be used" in one_problem(make_form(component))


def test_error_message_is_readable():
    with pytest.raises(FormDefinitionError) as info:
        load_form(make_form(number("ph", hardMin=8, hardMax=6)))
    assert str(info.value) == (
        "Form 'test_form' cannot be used:\n"
        "- components[0] (key 'ph'): hardMin (8) is greater than hardMax (6): the hard range is empty"
    )
    assert info.value.to_dict()["code"] == "form_definition_invalid"
