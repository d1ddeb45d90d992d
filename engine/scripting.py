"""BPMN scripts and expressions for SpiffWorkflow: restricted, and run with limits.

Every eval/exec Spiff asks for goes through `engine.restricted` (RestrictedPython's
compiler and our guards; the same check at import, `check_script`) and runs in a
worker process with CPU, memory and wall-time limits (`engine.script_pool`), so a
hostile or careless recipe cannot escape, hang the server or fill its memory; what a
script leaves in task data must be recordable (`engine.script_values`). Expressions
made only of names, constants and comparisons (`is_trivial`, most gateway conditions)
run in the server: they cannot loop, and skipping the round trip keeps a 2,000-iteration
gateway loop fast.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import errors
from .errors import BatchlineError, ScriptRefused
from .restricted import FORBIDDEN_NAMES, check_script, compile_script, is_trivial, run_restricted
from .script_pool import ScriptLimitExceeded, ScriptLimits, run_script
from .script_values import ScriptResultRefused, check_result

__all__ = [
    "FORBIDDEN_NAMES",
    "RestrictedEnvironment",
    "RestrictedScriptEngine",
    "ScriptLimitExceeded",
    "ScriptLimits",
    "ScriptRefused",
    "ScriptResultRefused",
    "check_script",
    "compile_script",
    "make_script_engine",
]


class ScriptFailed(Exception):
    """A script raised an exception of a kind that is not a Python builtin."""


def _rebuild(error: dict[str, Any]) -> Exception:
    """The worker's exception again, as the same builtin class where there is one, so
    Spiff's message ("KeyError: 1", "NameError: ...") reads as before; the script line
    travels along for the error report."""
    cls = getattr(builtins, error["type"], None)
    exc: Exception
    if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, (OSError, UnicodeError)):
        try:
            exc = cls(*error["args"])
        except Exception:
            exc = ScriptFailed(f"{error['type']}: {error['text']}")
    else:
        exc = ScriptFailed(f"{error['type']}: {error['text']}")
    exc.batchline_line = error["line"]  # type: ignore[attr-defined]
    return exc


def _refusal(refused: dict[str, Any]) -> BatchlineError:
    cls = {
        "ScriptResultRefused": ScriptResultRefused,
        "ScriptRefused": ScriptRefused,
    }.get(refused["class"])
    if cls is None:
        cls = getattr(errors, refused["class"], None)
        if not (isinstance(cls, type) and issubclass(cls, BatchlineError)):
            cls = ScriptRefused
    return cls(refused["message"], details=refused["details"])


ServiceHandler = Callable[[str, dict, dict], Any]


class RestrictedEnvironment(TaskDataEnvironment):
    """Spiff's TaskDataEnvironment with every eval/exec restricted and limited.

    Like Spiff, scripts read task data as variables and the variables they
    assign (or `del`) end up in task data; functions, modules and names
    starting with '_' never do. `in_process=True` skips the worker (tools only).
    """

    def __init__(
        self,
        environment_globals: dict[str, Any] | None = None,
        service_handler: ServiceHandler | None = None,
        *,
        limits: ScriptLimits | None = None,
        in_process: bool = False,
    ):
        super().__init__(environment_globals)
        self.service_handler = service_handler
        self.limits = limits or ScriptLimits()
        self.in_process = in_process

    def _external(self, external_context: dict | None) -> dict[str, Any]:
        return {**self.globals, **(external_context or {})}

    def _in_worker(self, mode: str, source: str, context: dict, external: dict) -> dict[str, Any]:
        compile_script(source, mode)  # refused here already: no round trip, same message
        try:
            reply = run_script(self.limits, mode, source, context, external)
        except (TypeError, ValueError) as exc:  # task data that cannot be sent (encode)
            raise ScriptResultRefused(
                f"task data cannot be passed to the script: {exc}", details={"problem": str(exc)}
            ) from None
        if "refused" in reply:
            raise _refusal(reply["refused"])
        if "error" in reply:
            raise _rebuild(reply["error"])
        return reply

    def evaluate(self, expression, context, external_context=None):
        self._prepare_context(context)
        external = self._external(external_context)
        if self.in_process or is_trivial(expression or "None", "eval"):
            value = run_restricted("eval", expression or "None", context, external)
            check_result({"result": value}, max_bytes=self.limits.result_bytes, label="the expression's ")
            return value
        return self._in_worker("eval", expression or "None", context, external)["value"]

    def execute(self, script, context, external_context=None):
        external_context = external_context or {}
        self.check_for_overwrite(context, external_context)
        self._prepare_context(context)
        external = self._external(external_context)
        if self.in_process or is_trivial(script or "", "exec"):
            result = dict(context)
            run_restricted("exec", script or "", result, external)
            check_result(result, max_bytes=self.limits.result_bytes)
        else:
            result = self._in_worker("exec", script or "", context, external)["context"]
        for key in [k for k in context if k not in result]:
            del context[key]
        context.update(result)
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

    Batchline's own refusals (a refused script, a script over its limits, a result
    that cannot be recorded) pass through unwrapped, with the BPMN element id added,
    so callers see the stable code; two 3.2.0 defects are fixed on the way: an
    exception in `call_service` surfaced as `NameError: script`, and an
    exception whose first argument is not a string (`KeyError(1)`) turned into
    a TypeError while the error message was being built.
    """

    def __init__(self, environment: RestrictedEnvironment | None = None):
        super().__init__(environment or RestrictedEnvironment())

    @staticmethod
    def _located(refused: BatchlineError, task) -> BatchlineError:
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
        except BatchlineError as refused:
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
        except BatchlineError as refused:
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

    def get_error_line_number_and_content(self, script, err):
        line = getattr(err, "batchline_line", None)
        if line:  # the script ran in a worker: its line came back with the error
            lines = script.splitlines()
            return line, lines[line - 1] if line <= len(lines) else ""
        return super().get_error_line_number_and_content(script, err)


def make_script_engine(
    service_handler: ServiceHandler | None = None, limits: ScriptLimits | None = None
) -> RestrictedScriptEngine:
    """The script engine every Batchline workflow runs with (`limits`: the runtime's
    `script_*` settings; the defaults otherwise).

    `service_handler(operation_name, params, task_data)` is only for tools and
    tests: the engine completes service tasks from its job executor instead.
    """
    return RestrictedScriptEngine(RestrictedEnvironment(service_handler=service_handler, limits=limits))
