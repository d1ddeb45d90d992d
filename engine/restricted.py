"""What a recipe script may touch, and running one in this process.

SpiffWorkflow 3.2.0 runs script tasks, pre/post scripts, gateway and loop conditions,
timer and multi-instance expressions with plain `eval`/`exec`; a dunder walk
(`().__class__.__base__.__subclasses__()`) escapes any globals sandbox. Here every
script goes through RestrictedPython's compiler (which rewrites attribute, item,
iteration and write access into calls to our guards, and here also `**` and `<<` into
calls that refuse a huge integer before computing it: `7**10**7` took 12 s) after a
static check of our own, so the same rules apply when a recipe is imported
(`check_script`) and when a batch runs. `run_restricted` runs compiled code on a
namespace; `engine.script_pool` calls it inside a worker process that has CPU and
memory limits, so a runaway script never runs in the server itself.
"""

from __future__ import annotations

import ast
import datetime as _datetime
import functools
import math
import operator
import textwrap
import types
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES, RestrictingNodeTransformer

from .errors import ScriptRefused

#: largest integer `**` and `<<` may build in a script, in bits (2**4096 has 1,234 digits)
MAX_INT_BITS = 4096

# Names a recipe script may never mention: they reach code, the file system,
# the interpreter or arbitrary attributes. None of them is in the builtins
# below either; refusing them statically gives the designer a clear message.
FORBIDDEN_NAMES = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "type",
        "breakpoint",
        "input",
        "dir",
    }
)

# RestrictedPython's safe_builtins minus what a recipe has no use for and what
# could hurt a worker: class building, attribute writers, and exceptions that
# escape Spiff's `except Exception` (SystemExit would stop the job executor).
_DROPPED = {
    "__build_class__",
    "_getattr_",
    "setattr",
    "delattr",
    "BaseException",
    "SystemExit",
    "KeyboardInterrupt",
    "GeneratorExit",
}

MATH = types.SimpleNamespace(**{n: getattr(math, n) for n in dir(math) if not n.startswith("_")})

# Builtins, not globals: a task-data variable called `date` or `math` simply
# shadows the helper for that script, as it would in Python.
BUILTINS: dict[str, Any] = {k: v for k, v in safe_builtins.items() if k not in _DROPPED}
BUILTINS.update(
    {
        "min": min,
        "max": max,
        "abs": abs,
        "round": round,
        "len": len,
        "sum": sum,
        "sorted": sorted,
        "range": range,
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "list": list,
        "dict": dict,
        "set": set,
        "tuple": tuple,
        "enumerate": enumerate,
        "zip": zip,
        "any": any,
        "all": all,
        "isinstance": isinstance,
        "math": MATH,
        "datetime": _datetime.datetime,
        "date": _datetime.date,
        "timedelta": _datetime.timedelta,
        "timezone": _datetime.timezone,
        "Decimal": Decimal,
    }
)


def _refuse(problem: str) -> ScriptRefused:
    return ScriptRefused(f"script refused: {problem}", details={"problems": [problem]})


def _guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """Every `a.b` in a script lands here (RestrictedPython rewrites it)."""
    if not isinstance(name, str) or name.startswith("_"):
        raise _refuse(f"attribute {name!r} is not allowed: names starting with '_' are private")
    if name in INSPECT_ATTRIBUTES:
        raise _refuse(f"attribute {name!r} is not allowed: it exposes interpreter internals")
    if name in ("format", "format_map") and (isinstance(obj, str) or obj is str):
        # "{0.__class__}".format(x) walks attributes without passing the guard.
        raise _refuse("str.format is not allowed: use an f-string or % formatting")
    return getattr(obj, name, *default)


def _guarded_getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def _guarded_write(obj: Any) -> Any:
    """Item/attribute assignment: only on the plain containers scripts build."""
    if type(obj) in (dict, list, set):
        return obj
    raise _refuse(f"changing attributes or items of {type(obj).__name__} is not allowed")


def _int_too_big(bits: int, what: str) -> ScriptRefused:
    return _refuse(
        f"{what} would build an integer of about {bits:,} bits; scripts may build at most {MAX_INT_BITS:,} bits"
    )


def _guarded_pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    """`a ** b` and `pow()`: an integer result's size is known before computing it."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if modulus is not None:
            if isinstance(modulus, int) and max(abs(modulus).bit_length(), exponent.bit_length()) > MAX_INT_BITS:
                raise _int_too_big(max(abs(modulus).bit_length(), exponent.bit_length()), "pow()")
        elif abs(base) > 1:
            bits = int(exponent * math.log2(abs(base))) + 1
            if bits > MAX_INT_BITS:
                raise _int_too_big(bits, "**")
    return pow(base, exponent) if modulus is None else pow(base, exponent, modulus)


def _guarded_lshift(value: Any, shift: Any) -> Any:
    if isinstance(value, int) and isinstance(shift, int) and value and shift > 0:
        bits = abs(value).bit_length() + shift
        if bits > MAX_INT_BITS:
            raise _int_too_big(bits, "<<")
    return value << shift


_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": _guarded_pow,
    "<<=": _guarded_lshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def _inplacevar(op: str, target: Any, value: Any) -> Any:
    try:
        return _INPLACE_OPERATORS[op](target, value)
    except KeyError:
        raise _refuse(f"operator {op} is not allowed") from None


def _apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


# Applied last when a namespace is built, so task data can never replace them.
GUARDS: dict[str, Any] = {
    "__builtins__": BUILTINS,
    "_getattr_": _guarded_getattr,
    "_getitem_": _guarded_getitem,
    "_getiter_": iter,
    "_write_": _guarded_write,
    "_inplacevar_": _inplacevar,
    "_apply_": _apply,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_pow_": _guarded_pow,
    "_lshift_": _guarded_lshift,
}
BUILTINS["pow"] = _guarded_pow


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's rules, and `a ** b` / `a << b` as calls to the size guards."""

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        guard = {ast.Pow: "_pow_", ast.LShift: "_lshift_"}.get(type(node.op))
        if guard is None:
            return node
        func = ast.copy_location(ast.Name(id=guard, ctx=ast.Load()), node)
        return ast.copy_location(ast.Call(func=func, args=[node.left, node.right], keywords=[]), node)


def _normalise(source: str, mode: str) -> str:
    # Text from BPMN often carries the XML's indentation and surrounding newlines.
    return source.strip() if mode == "eval" else textwrap.dedent(source)


def _static_problems(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 1)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((line, "import statements are not allowed"))
        elif isinstance(node, ast.Name):
            if node.id in FORBIDDEN_NAMES:
                found.append((line, f"name {node.id!r} is not allowed"))
            elif node.id.startswith("_") and node.id != "_":
                found.append((line, f"name {node.id!r} is not allowed: names starting with '_' are private"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            found.append((line, f"attribute {node.attr!r} is not allowed: names starting with '_' are private"))
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ("format", "format_map")
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append((line, "str.format is not allowed: use an f-string or % formatting"))
        elif isinstance(node, ast.ClassDef):
            found.append((line, "class definitions are not allowed"))
    return found


@functools.lru_cache(maxsize=2048)
def _check_and_compile(source: str, mode: str) -> tuple[types.CodeType | None, tuple[str, ...]]:
    """Cached by source text: gateway conditions are evaluated on every step."""
    text = _normalise(source, mode)
    try:
        tree = ast.parse(text, mode=mode)
    except SyntaxError as err:
        return None, (f"line {err.lineno or 1}: syntax error: {err.msg}",)
    own = _static_problems(tree)
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(text, policy=_Policy)
    problems = [f"line {line}: {msg}" for line, msg in sorted(set(own))]
    flagged = {line for line, _ in own}
    for error in result.errors:  # e.g. 'Line 3: "gi_frame" is a restricted name, ...'
        head = error.split(":", 1)[0]
        line = int(head[5:]) if head.startswith("Line ") and head[5:].isdigit() else None
        if line not in flagged:
            problems.append(error[0].lower() + error[1:])
    if problems or result.code is None:
        return None, tuple(problems or ["the restricted compiler refused this script"])
    return result.code, ()


def check_script(source: str | None, mode: str = "exec") -> list[str]:
    """Static check for import/validation time: readable problems, [] if the script may run."""
    if mode not in ("exec", "eval"):
        raise ValueError("mode must be 'exec' or 'eval'")
    if source is None or not source.strip():
        return []
    _code, problems = _check_and_compile(source, mode)
    return list(problems)


def compile_script(source: str | None, mode: str = "exec") -> types.CodeType:
    """Restricted code object for `source`; raises ScriptRefused naming every problem."""
    code, problems = _check_and_compile(source or ("None" if mode == "eval" else ""), mode)
    if code is None:
        raise ScriptRefused("script refused: " + "; ".join(problems), details={"problems": list(problems)})
    return code


def namespace_for(context: dict, external: dict, env_globals: dict) -> dict[str, Any]:
    """Globals of one run: helpers, then external context, then task data; the guards
    last, so task data can never replace them."""
    namespace: dict[str, Any] = dict(env_globals)
    namespace.update(external)
    namespace.update(context)
    namespace.update(GUARDS)
    return namespace


def run_restricted(
    mode: str, source: str, context: dict, external: dict | None = None, env_globals: dict | None = None
) -> Any:
    """Run one script (`exec`) or expression (`eval`) in this process.

    `eval` returns the value. `exec` changes `context` in place as Spiff does: the
    variables the script assigns land in it, a `del` removes one; functions, modules and
    names starting with '_' never do. No limits apply here: the server calls it only for
    expressions `is_trivial` proves cheap, everything else runs in a limited worker.
    """
    external = external or {}
    env_globals = env_globals or {}
    code = compile_script(source, mode)
    namespace = namespace_for(context, external, env_globals)
    if mode == "eval":
        return eval(code, namespace)  # noqa: S307 - restricted code
    exec(code, namespace)  # noqa: S102 - restricted code
    for key in [k for k in context if k not in namespace]:
        del context[key]  # the script said `del key`
    for key, value in namespace.items():
        if (
            key.startswith("_")
            or key in env_globals
            or key in external
            or callable(value)
            or isinstance(value, types.ModuleType)
        ):
            continue
        context[key] = value
    return True


_TRIVIAL_NODES = (
    ast.Expression,
    ast.Module,
    ast.Assign,
    ast.Store,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Compare,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Is,
    ast.IsNot,
    ast.In,
    ast.NotIn,
)


@functools.lru_cache(maxsize=2048)
def is_trivial(source: str, mode: str = "eval") -> bool:
    """Names, constants, `+`, `-`, comparisons and `and`/`or`/`not` only, and for a
    script only assignments of those to plain names (most gateway conditions and
    counters: `i >= n`, `i = i + 1`): no call, loop, `*` or `**`, so the cost is bounded
    by the size of task data, which `check_result` bounds after every script. Those run
    in the server without the round trip to a worker (0.3-0.5 ms each: a 2,000-iteration
    gateway loop went from 1.2 s to 0.3 s)."""
    try:
        tree = ast.parse(_normalise(source, mode), mode=mode)
    except SyntaxError:
        return False
    if mode == "exec" and not all(
        isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        for stmt in getattr(tree, "body", [])
    ):
        return False
    return all(isinstance(node, _TRIVIAL_NODES) for node in ast.walk(tree)) and not _static_problems(tree)
