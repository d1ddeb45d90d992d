"""The calculation evaluator on its own: Decimal arithmetic, and a second wall behind the parser."""

import ast
from decimal import Decimal

import pytest

from forms.calculation import Calculation, CalculationError, evaluate, parse_calculation


def test_decimal_arithmetic_is_exact():
    calc = parse_calculation("a * 0.1 + b / 4")
    assert calc.references == ("a", "b")
    assert evaluate(calc, {"a": Decimal("3"), "b": Decimal("1")}) == Decimal("0.55")


def test_missing_reference():
    with pytest.raises(CalculationError, match="needs b"):
        evaluate(parse_calculation("a + b"), {"a": Decimal(1)})


@pytest.mark.parametrize(
    "expression",
    ["a.__class__", "a.__class__.__mro__", "__import__('os')", "a[0]", "(lambda: 1)()", "'x'", "open('f')"],
)
def test_evaluator_refuses_even_if_parser_is_bypassed(expression):
    # Build a Calculation by hand, as if the load-time check had a hole.
    forged = Calculation(expression=expression, references=("a",), tree=ast.parse(expression, mode="eval"))
    with pytest.raises(CalculationError):
        evaluate(forged, {"a": Decimal(1)})


def test_overflow_is_reported():
    with pytest.raises(CalculationError, match="too large"):
        evaluate(parse_calculation("a ** 1500"), {"a": Decimal(10)})


def test_exponent_bomb_is_refused():
    with pytest.raises(CalculationError):
        evaluate(parse_calculation("a ** 9 ** 9 ** 9"), {"a": Decimal(2)})
