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
