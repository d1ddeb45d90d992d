"""Every script and expression Spiff would run for a recipe, checked by the restricted
compiler when the recipe is imported (BPMN scripts are code: see docs/architecture.md),
so a refused script is a problem named at import, never a surprise on the floor."""

from __future__ import annotations

from collections.abc import Iterator

from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptTask as ScriptTaskMixin

from engine.errors import Problem
from engine.scripting import check_script

from .contents import all_specs, event_definitions


def _code_in(task_spec) -> Iterator[tuple[str, str, str]]:
    """(what, mode, source) for every script and expression Spiff would run for this task spec."""
    for attr, what in (("script", "script"), ("prescript", "pre-script"), ("postscript", "post-script")):
        if isinstance(getattr(task_spec, attr, None), str):
            yield what, "exec", getattr(task_spec, attr)
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        text = condition.args[0] if getattr(condition, "args", None) else condition
        if isinstance(text, str):
            yield "gateway condition", "eval", text
    for attr, what in (("condition", "loop/completion condition"), ("cardinality", "multi-instance cardinality")):
        if isinstance(getattr(task_spec, attr, None), str):
            yield what, "eval", getattr(task_spec, attr)
    for param, value in (getattr(task_spec, "operation_params", None) or {}).items():
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            yield f"service parameter {param!r}", "eval", value["value"]
    for definition in event_definitions(task_spec):
        if isinstance(getattr(definition, "expression", None), str):
            yield "event expression", "eval", definition.expression
        for prop in [
            *getattr(definition, "correlation_properties", []),
            *getattr(definition, "process_correlations", []),
        ]:
            if isinstance(prop.retrieval_expression, str):
                yield f"correlation {prop.name!r}", "eval", prop.retrieval_expression


def script_problems(spec, subprocess_specs) -> list[Problem]:
    problems = []
    seen = set()
    for process, task_spec in all_specs(spec, subprocess_specs):
        element = getattr(task_spec, "bpmn_id", None) or task_spec.name
        extensions = getattr(task_spec, "extensions", None) or {}
        if isinstance(task_spec, ScriptTaskMixin) and ({"preScript", "postScript"} & set(extensions)):
            problems.append(
                Problem(
                    "script_ignored",
                    "pre-/post-script on a script task is ignored by "
                    "SpiffWorkflow 3.2.0: put that code in the script itself",
                    element,
                    process.file,
                )
            )
        for what, mode, source in _code_in(task_spec):
            for message in check_script(source, mode):
                key = (process.name, element, what, message)
                if key not in seen:  # loop wrappers and their [child] share scripts
                    seen.add(key)
                    problems.append(Problem("script_refused", f"{what} refused: {message}", element, process.file))
        completion = getattr(process, "completion_condition", None)
        if isinstance(completion, str):
            for message in check_script(completion, "eval"):
                problems.append(
                    Problem("script_refused", f"completion condition refused: {message}", process.name, process.file)
                )
    return problems
