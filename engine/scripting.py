"""Restricted execution of BPMN scripts and expressions for SpiffWorkflow.

SpiffWorkflow 3.2.0 runs script tasks, pre/post scripts, gateway and loop
conditions, timer and multi-instance expressions with plain `eval`/`exec`; a
dunder walk (`().__class__.__base__.__subclasses__()`) escapes any globals
sandbox. Here every script goes through RestrictedPython's compiler (which
rewrites attribute, item, iteration and write access into calls to our guards)
after a static check of our own, so the same rules apply when a recipe is
imported (`check_script`) and when a batch runs (`RestrictedEnvironment`).
"""

from __future__ import annotations

import ast
import datetime as _datetime
import functools
import json
import math
import operator
import textwrap
import types
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.errors import BatchlineError, ScriptRefused

__all__ = [
    "FORBIDDEN_NAMES",
    "RestrictedEnvironment",
    "RestrictedScriptEngine",
    "ScriptRefused",
    "check_script",
    "compile_script",
    "make_script_engine",
]

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


_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
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
}


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
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(text)
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


ServiceHandler = Callable[[str, dict, dict], Any]


class RestrictedEnvironment(TaskDataEnvironment):
    """Spiff's TaskDataEnvironment with every eval/exec going through `compile_script`.

    Like Spiff, scripts read task data as variables and the variables they
    assign (or `del`) end up in task data; functions, modules and names
    starting with '_' never do.
    """

    def __init__(
        self, environment_globals: dict[str, Any] | None = None, service_handler: ServiceHandler | None = None
    ):
        super().__init__(environment_globals)
        self.service_handler = service_handler

    def _namespace(self, context: dict, external_context: dict | None) -> dict[str, Any]:
        namespace: dict[str, Any] = dict(self.globals)
        namespace.update(external_context or {})
        namespace.update(context)
        namespace.update(GUARDS)
        return namespace

    def evaluate(self, expression, context, external_context=None):
        code = compile_script(expression, "eval")
        self._prepare_context(context)
        return eval(code, self._namespace(context, external_context))  # noqa: S307 - restricted code

    def execute(self, script, context, external_context=None):
        external_context = external_context or {}
        self.check_for_overwrite(context, external_context)
        code = compile_script(script, "exec")
        self._prepare_context(context)
        namespace = self._namespace(context, external_context)
        exec(code, namespace)  # noqa: S102 - restricted code
        for key in [k for k in context if k not in namespace]:
            del context[key]  # the script said `del key`
        for key, value in namespace.items():
            if (
                key.startswith("_")
                or key in self.globals
                or key in external_context
                or callable(value)
                or isinstance(value, types.ModuleType)
            ):
                continue
            context[key] = value
        return True

    def call_service(self, context, operation_name=None, operation_params=None, **kwargs):
        if self.service_handler is None:
            raise BatchlineError(
                "service tasks are completed by the job executor, not inside the workflow engine",
                code="service_not_in_engine",
            )
        return json.dumps(self.service_handler(operation_name, operation_params or {}, context))


class RestrictedScriptEngine(PythonScriptEngine):
    """Spiff's script engine on a RestrictedEnvironment.

    ScriptRefused passes through unwrapped (with the BPMN element id added) so
    callers see the stable code; two 3.2.0 defects are fixed on the way: an
    exception in `call_service` surfaced as `NameError: script`, and an
    exception whose first argument is not a string (`KeyError(1)`) turned into
    a TypeError while the error message was being built.
    """

    def __init__(self, environment: RestrictedEnvironment | None = None):
        super().__init__(environment or RestrictedEnvironment())

    @staticmethod
    def _located(refused: ScriptRefused, task) -> ScriptRefused:
        element = getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name
        refused.details.setdefault("element_id", element)
        if f"[{element}]" not in refused.message:
            refused.message = f"{refused.message} [{element}]"
            refused.args = (refused.message,)
        return refused

    def validate(self, expression):
        compile_script(expression, "eval")

    def evaluate(self, task, expression, external_context=None):
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ScriptRefused as refused:
            raise self._located(refused, task) from None
        except SpiffWorkflowException as se:
            se.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}'", task=task, exception=exc
            ) from exc

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except ScriptRefused as refused:
            raise self._located(refused, task) from None
        except Exception as exc:
            raise self.create_task_exec_exception(task, script, exc) from exc

    def call_service(self, task, **kwargs):
        try:
            return self.environment.call_service(task.data, **kwargs)
        except (SpiffWorkflowException, BatchlineError):
            raise
        except Exception as exc:
            raise WorkflowTaskException(
                f"Service call failed: {exc.__class__.__name__}: {exc}", task=task, exception=exc
            ) from exc

    def create_task_exec_exception(self, task, script, err):
        if err.args and not isinstance(err.args[0], str):
            line_number, error_line = self.get_error_line_number_and_content(script, err)
            return WorkflowTaskException(
                f"{err.__class__.__name__}: {err.args[0]!r}",
                task=task,
                exception=err,
                line_number=line_number,
                error_line=error_line,
            )
        return super().create_task_exec_exception(task, script, err)


def make_script_engine(service_handler: ServiceHandler | None = None) -> RestrictedScriptEngine:
    """The script engine every Batchline workflow runs with.

    `service_handler(operation_name, params, task_data)` is only for tools and
    tests: the engine completes service tasks from its job executor instead.
    """
    return RestrictedScriptEngine(RestrictedEnvironment(service_handler=service_handler))
