"""Form patterns run on RE2: no catastrophic backtracking, unusable patterns refused at load."""

import time

import pytest

from forms import FormDefinitionError, FormRejected, compile_form, load_form
from forms.patterns import PatternError, compile_pattern, full_match
from tests.forms.builders import make_form

EVIL = "(a+)+b"
EVIL_INPUT = "a" * 28 + "c"  # 10.7 s with Python's re on main


def _text(pattern):
    return {"type": "textfield", "key": "code", "label": "Code", "validate": {"pattern": pattern}}


def test_catastrophic_pattern_answers_at_once():
    started = time.perf_counter()
    assert full_match(EVIL, EVIL_INPUT) is False
    assert full_match(EVIL, "a" * 100_000 + "c") is False
    assert time.perf_counter() - started < 0.5
    assert full_match(EVIL, "aaab") is True


def test_catastrophic_pattern_in_a_form_is_refused_quickly():
    form = compile_form(load_form(make_form(_text(EVIL))))
    started = time.perf_counter()
    with pytest.raises(FormRejected) as info:
        form.validate({"code": EVIL_INPUT})
    assert time.perf_counter() - started < 0.5
    assert info.value.field_errors == {
        "code": ["Code does not have the expected format; check it against the label or the instructions."]
    }
    assert form.validate({"code": "aab"}).values == {"code": "aab"}


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape sequence: \\1"),
        (r"(?=a)a", "invalid perl operator: (?="),
        ("a{1001}", "invalid repetition size: {1001}"),
        ("([a-z", "missing ]: [a-z"),
    ],
)
def test_pattern_re2_cannot_compile_is_refused_at_load(pattern, reason):
    with pytest.raises(PatternError, match="RE2 syntax"):
        compile_pattern(pattern)
    with pytest.raises(FormDefinitionError) as info:
        load_form(make_form(_text(pattern)))
    assert f"validate.pattern cannot be used ({reason}; patterns use RE2 syntax" in str(info.value)


def test_overlong_pattern_refused():
    with pytest.raises(PatternError, match="longer than 1000"):
        compile_pattern("a" * 1001)


def test_a_pattern_is_said_in_words_never_shown():
    from forms import render_data
    from forms.pattern_words import describe_pattern

    assert describe_pattern("[0-9]{10}") == "10 digits"
    assert describe_pattern("^[A-Z]{2}-\\d{4}$") == "2 capital letters, then “-”, then 4 digits"
    assert describe_pattern("LOT-[A-Z0-9]+") == "“LOT-”, then one or more capital letters or digits"
    assert describe_pattern("[0-9]{2,4}") == "2 to 4 digits"
    for not_simple in ("(a+)+b", "\\w+", "[^x]", "a|b", "x{1000}", ""):
        assert describe_pattern(not_simple) is None, not_simple
    plain = compile_form(load_form(make_form(_text("[0-9]{10}"))))
    with pytest.raises(FormRejected) as info:
        plain.validate({"code": "12345"})
    assert info.value.field_errors == {"code": ["Code does not have the expected format: 10 digits."]}
    described = {**_text("[0-9]{10}"), "properties": {"patternDescription": "the 10-digit SAP order number"}}
    form = load_form(make_form(described))
    with pytest.raises(FormRejected) as info:
        compile_form(form).validate({"code": "12345"})
    assert info.value.field_errors == {
        "code": ["Code does not have the expected format: the 10-digit SAP order number."]
    }
    (item,) = [i for i in render_data(form) if i.get("key") == "code"]
    assert item["format"] == "the 10-digit SAP order number"


@pytest.mark.parametrize(
    ("component", "problem"),
    [
        (
            {"type": "textfield", "key": "code", "label": "Code", "properties": {"patternDescription": "x"}},
            "does not have",
        ),
        ({**_text("[0-9]"), "properties": {"patternDescription": ""}}, "1 to 200 characters"),
        ({**_text("[0-9]"), "properties": {"patternDescription": "x" * 201}}, "1 to 200 characters"),
        ({**_text("[0-9]"), "properties": {"patternDescription": 7}}, "1 to 200 characters"),
    ],
)
def test_a_pattern_description_must_describe_a_pattern(component, problem):
    with pytest.raises(FormDefinitionError) as info:
        load_form(make_form(component))
    assert problem in str(info.value)
