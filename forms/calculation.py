"""Calculated fields: check and evaluate a field's `calculation` expression safely.

A calculation (e.g. ``"vcd * inoculum_volume / working_volume"``) is recipe content
written in the form editor and run on the server for every step, so it must never
be Python. We accept only arithmetic over other number fields, number literals and a
short list of math functions; everything else (attribute access such as
``__class__``, subscripts, strings, lambdas, comprehensions, imports, comparisons) is
refused when the form is loaded, long before a batch runs. Evaluation goes through
simpleeval with an even narrower whitelist as a second wall, and is done in
``Decimal`` so that the recorded value is reproducible digit for digit.
"""

from __future__ import annotations

import ast
import decimal
import keyword
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from simpleeval import SimpleEval, safe_power

MAX_EXPRESSION_LENGTH = 500

# Function name -> (smallest, largest) number of arguments (None = no upper bound).
FUNCTION_ARITY: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "min": (2, None),
    "max": (2, None),
    "sqrt": (1, 1),
    "ln": (1, 1),
    "log10": (1, 1),
    "exp": (1, 1),
    "round": (1, 2),
}

# Decimal arithmetic bounded so that no expression can build a gigantic number.
_CONTEXT = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=999,
    Emin=-999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


class CalculationError(ValueError):
    """A calculation that cannot be accepted (at load) or computed (at submit)."""


@dataclass(frozen=True, eq=False)
class Calculation:
    """A checked calculation expression and the field keys it reads."""

    expression: str
    references: tuple[str, ...]
    tree: ast.Expression


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"attribute access ('.{node.attr}')"
    if isinstance(node, (ast.Subscript, ast.Slice)):
        return "subscripts ('[...]')"
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r} (only numbers are allowed)"
    if isinstance(node, ast.Lambda):
        return "lambda"
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "comprehensions"
    if isinstance(node, (ast.Compare, ast.BoolOp, ast.IfExp)):
        return "comparisons and conditions"
    if isinstance(node, ast.NamedExpr):
        return "assignment (':=')"
    return f"'{type(node).__name__}'"


_ALLOWED_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_ALLOWED_UNARY = (ast.UAdd, ast.USub)


def parse_calculation(expression: object) -> Calculation:
    """Check a calculation expression; raise CalculationError saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise CalculationError("the calculation must be a non-empty expression")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CalculationError(f"the calculation is longer than {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise CalculationError(f"the calculation {expression!r} does not parse ({exc.msg})") from None

    references: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            visit(node.body)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _ALLOWED_BINARY):
                raise CalculationError(f"the operator '{type(node.op).__name__}' is not allowed; use + - * / and **")
            visit(node.left)
            visit(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _ALLOWED_UNARY):
                raise CalculationError(f"the operator '{type(node.op).__name__}' is not allowed")
            visit(node.operand)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise CalculationError(f"{_describe(node)} is not allowed")
        elif isinstance(node, ast.Name):
            name = node.id
            if name.startswith("_") or keyword.iskeyword(name):
                raise CalculationError(f"the name '{name}' is not allowed")
            if name in FUNCTION_ARITY:
                raise CalculationError(f"'{name}' is a function; call it as {name}(...)")
            if name not in references:
                references.append(name)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTION_ARITY:
                allowed = ", ".join(FUNCTION_ARITY)
                raise CalculationError(f"only these functions may be called: {allowed}")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise CalculationError(f"{node.func.id}() takes plain arguments (no keywords, no '*')")
            low, high = FUNCTION_ARITY[node.func.id]
            count = len(node.args)
            if count < low or (high is not None and count > high):
                wanted = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
                raise CalculationError(f"{node.func.id}() takes {wanted} argument(s), got {count}")
            for argument in node.args:
                visit(argument)
        else:
            raise CalculationError(f"{_describe(node)} is not allowed in a calculation")

    visit(tree)
    return Calculation(expression=expression, references=tuple(references), tree=tree)


def _round(value: Decimal, places: Decimal = Decimal(0)) -> Decimal:
    if places != places.to_integral_value() or not 0 <= places <= 12:
        raise CalculationError("round(x, n) needs a whole n from 0 to 12")
    return value.quantize(Decimal(1).scaleb(-int(places)), rounding=decimal.ROUND_HALF_UP)


def _log10(value: Decimal) -> Decimal:
    return value.log10()


_FUNCTIONS = {
    "abs": abs,
    "min": min,
    "max": max,
    "sqrt": lambda x: x.sqrt(),
    "ln": lambda x: x.ln(),
    "log10": _log10,
    "exp": lambda x: x.exp(),
    "round": _round,
}

_OPERATORS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: safe_power,
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
}


class _DecimalEvaluator(SimpleEval):
    """simpleeval restricted to names, numbers, arithmetic and whitelisted calls."""

    def __init__(self, names: Mapping[str, Decimal]):
        super().__init__(operators=dict(_OPERATORS), functions=dict(_FUNCTIONS), names=dict(names))
        self.nodes = {
            ast.Name: self._eval_name,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.Call: self._eval_call,
            ast.Constant: self._eval_constant,
        }

    @staticmethod
    def _eval_constant(node: ast.Constant) -> Decimal:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CalculationError("only number literals are allowed")
        # repr() is the shortest text that round-trips, so 0.1 becomes Decimal("0.1").
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)

    def _eval_call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise CalculationError("only whitelisted functions may be called")
        return super()._eval_call(node)


def evaluate(calculation: Calculation, values: Mapping[str, Decimal]) -> Decimal:
    """Compute a calculation from Decimal field values (all references must be present)."""
    missing = [key for key in calculation.references if key not in values]
    if missing:
        raise CalculationError(f"needs {', '.join(missing)}")
    evaluator = _DecimalEvaluator({key: values[key] for key in calculation.references})
    try:
        with decimal.localcontext(_CONTEXT):
            result = evaluator.eval(calculation.expression, previously_parsed=calculation.tree.body)
            if not isinstance(result, Decimal):
                raise CalculationError("the calculation did not produce a number")
            result = +result  # apply the bounded context
    except CalculationError:
        raise
    except decimal.DivisionByZero:
        raise CalculationError("division by zero") from None
    except decimal.Overflow:
        raise CalculationError("the result is too large") from None
    except decimal.InvalidOperation:
        raise CalculationError(
            "the calculation is undefined for these values (e.g. square root or logarithm of a negative number)"
        ) from None
    except Exception as exc:  # simpleeval's own refusals (NumberTooHigh, ...)
        raise CalculationError(f"cannot be calculated ({exc})") from None
    if not result.is_finite():
        raise CalculationError("the result is not a finite number")
    return result
