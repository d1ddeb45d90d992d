"""Recipe BPMN: safe parsing, validation and spec storage on SpiffWorkflow 3.2.0.

Recipe files come from designers' browsers and from other sites, so the XML is
parsed with DTDs and entities refused before Spiff sees it; every script and
expression is checked by the restricted compiler at import time; and Spiff's
unreadable failures (parser recursion, a TypeError for an undefined message,
non-executable processes) become problems naming the element and file.
Service tasks never call out from inside Spiff: a `BatchlineServiceTask` stays
STARTED until the job executor completes it outside the batch's transaction.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from lxml import etree
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.script_task import ScriptTask as ScriptTaskMixin
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter
from SpiffWorkflow.spiff.specs.defaults import ServiceTask

from engine.errors import Problem, RecipeInvalid, XmlRefused
from engine.scripting import check_script

__all__ = [
    "MAX_BPMN_BYTES",
    "BatchlineParser",
    "BatchlineServiceTask",
    "MessageInfo",
    "ParsedRecipe",
    "Problem",
    "RecipeInvalid",
    "ServiceTaskInfo",
    "TimerInfo",
    "UserTaskInfo",
    "XmlRefused",
    "make_serializer",
    "parse_recipe",
    "spec_from_dict",
    "spec_to_dict",
    "validate_recipe",
]

MAX_BPMN_BYTES = 5 * 1024 * 1024
BPMN_NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
TOO_LONG = "process too long: use a call activity or a loop"


class BatchlineServiceTask(ServiceTask):
    """A service task that waits: Spiff leaves it STARTED and the job executor
    calls the connector, then completes the task (never HTTP inside a DB transaction)."""

    def _execute(self, task):
        return None


class BatchlineParser(SpiffBpmnParser):
    """Spiff's parser (spiff extensions) with Batchline's service task."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, BatchlineServiceTask),
    }


@dataclass(frozen=True)
class UserTaskInfo:
    element_id: str
    name: str | None
    process_id: str
    form_key: str | None
    instructions: str | None


@dataclass(frozen=True)
class ServiceTaskInfo:
    element_id: str
    name: str | None
    process_id: str
    operator: str
    parameters: dict[str, dict[str, str]]
    result_variable: str


@dataclass(frozen=True)
class TimerInfo:
    element_id: str
    name: str | None
    process_id: str
    kind: str  # "date" | "duration" | "cycle"
    expression: str


@dataclass(frozen=True)
class MessageInfo:
    element_id: str
    message: str
    process_id: str
    correlation_keys: tuple[str, ...]
    correlation_properties: dict[str, str]  # property name -> retrieval expression


@dataclass
class ParsedRecipe:
    process_id: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]
    user_tasks: list[UserTaskInfo] = field(default_factory=list)
    service_tasks: list[ServiceTaskInfo] = field(default_factory=list)
    timers: list[TimerInfo] = field(default_factory=list)
    messages: list[MessageInfo] = field(default_factory=list)


# --- XML ------------------------------------------------------------------------


def parse_xml(filename: str, data: bytes | str) -> etree._Element:
    """Plain XML only: no DOCTYPE (so no external entities, no entity bombs), no network, size-capped."""
    if isinstance(data, str):
        data = data.encode("utf-8")

    def refused(code: str, message: str) -> XmlRefused:
        return XmlRefused([Problem(code, message, file=filename)])

    if len(data) > MAX_BPMN_BYTES:
        raise refused("xml_too_large", f"file is larger than {MAX_BPMN_BYTES // (1024 * 1024)} MB")
    try:  # expat via defusedxml stops at the DOCTYPE, before any entity is expanded
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise refused(
            "xml_doctype",
            "DOCTYPE declarations are not allowed in recipe files "
            "(they enable external-entity and entity-expansion attacks)",
        ) from None
    except (EntitiesForbidden, ExternalReferenceForbidden, DefusedXmlException) as exc:
        raise refused("xml_entities", f"XML entities are not allowed in recipe files ({exc})") from None
    except DefusedET.ParseError as exc:
        raise refused("xml_malformed", f"not well-formed XML: {exc}") from None
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise refused("xml_malformed", f"not well-formed XML: {exc}") from None


# --- parsing --------------------------------------------------------------------


def _from_validation(exc: ValidationException, filename: str | None = None) -> Problem:
    text = str(exc.args[0]) if exc.args else str(exc)
    element = getattr(exc, "id", None) or None
    file = getattr(exc, "file_name", None) or filename
    line = getattr(exc, "line_number", None) or None
    if "RecursionError" in text or "maximum recursion depth" in text:
        return Problem(
            "process_too_long",
            f"{TOO_LONG} (SpiffWorkflow's parser gave up here, after roughly 490 elements in a row)",
            element,
            file,
        )
    if "unexpected keyword argument 'node'" in text:
        return Problem(
            "undefined_reference",
            "refers to a message, signal, error or escalation that no recipe file defines",
            element,
            file,
        )
    return Problem("bpmn_invalid", text.strip().rstrip("."), element, file, line if isinstance(line, int) else None)


def _processes(trees: dict[str, etree._Element]) -> dict[str, dict[str, Any]]:
    """Top-level bpmn:process elements: file, executable flag, call activities inside."""
    found: dict[str, dict[str, Any]] = {}
    for filename, root in trees.items():
        for proc in root.iterfind("bpmn:process", BPMN_NS):
            calls = [(ca.get("id"), ca.get("calledElement")) for ca in proc.iterfind(".//bpmn:callActivity", BPMN_NS)]
            found[proc.get("id")] = {
                "file": filename,
                "executable": proc.get("isExecutable", "true") == "true",
                "calls": calls,
            }
    return found


def _reference_problems(trees: dict[str, etree._Element]) -> list[Problem]:
    """Undefined messageRef/signalRef/...: Spiff 3.2.0 turns these into a TypeError."""
    kinds = {"messageRef": "message", "signalRef": "signal", "errorRef": "error", "escalationRef": "escalation"}
    defined = {kind: set() for kind in kinds.values()}
    for root in trees.values():
        for kind in kinds.values():
            defined[kind].update(el.get("id") for el in root.iterfind(f".//bpmn:{kind}", BPMN_NS))
    problems = []
    for filename, root in trees.items():
        for attr, kind in kinds.items():
            for el in root.iterfind(f".//bpmn:process//*[@{attr}]", BPMN_NS):
                if el.get(attr) not in defined[kind]:
                    owner = el if el.tag.endswith(("Task", "task")) else el.getparent()
                    problems.append(
                        Problem(
                            "undefined_reference",
                            f"{kind} {el.get(attr)!r} is not defined in any recipe file",
                            owner.get("id"),
                            filename,
                            el.sourceline,
                        )
                    )
    return problems


def _choose_top(processes: dict[str, dict[str, Any]], process_id: str | None) -> tuple[str | None, list[Problem]]:
    if process_id is not None:
        info = processes.get(process_id)
        if info is None:
            return None, [
                Problem(
                    "process_not_found",
                    f"no process {process_id!r} in the recipe files; found: {', '.join(sorted(processes)) or 'none'}",
                )
            ]
        if not info["executable"]:
            return None, [
                Problem(
                    "not_executable", f'process {process_id!r} is marked isExecutable="false"', process_id, info["file"]
                )
            ]
        return process_id, []
    called = {target for info in processes.values() for _, target in info["calls"]}
    executable = [pid for pid, info in processes.items() if info["executable"]]
    if not executable:
        return None, [
            Problem(
                "not_executable",
                "no executable process: every process in the recipe files is marked "
                'isExecutable="false" (mark the recipe\'s process executable in the modeler)',
            )
        ]
    tops = [pid for pid in executable if pid not in called]
    if len(tops) == 1:
        return tops[0], []
    if not tops:
        return None, [
            Problem(
                "no_top_process",
                "every executable process is called by another one; there is no process to start the recipe with",
            )
        ]
    return None, [
        Problem(
            "several_top_processes",
            f"several processes could start the recipe ({', '.join(sorted(tops))}); say which one",
        )
    ]


def _reachable(top: str, processes: dict[str, dict[str, Any]]) -> list[str]:
    seen, todo = [], [top]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in processes:
            continue
        seen.append(pid)
        todo.extend(target for _, target in processes[pid]["calls"])
    return seen


def parse_recipe(files: dict[str, bytes], process_id: str | None = None) -> ParsedRecipe:
    """Parse and validate recipe files; raise RecipeInvalid (XmlRefused for unsafe XML) listing every problem."""
    if not files:
        raise RecipeInvalid([Problem("no_files", "no BPMN files given")])
    problems: list[Problem] = []
    trees: dict[str, etree._Element] = {}
    for filename, data in files.items():
        try:
            trees[filename] = parse_xml(filename, data)
        except XmlRefused as exc:
            problems.extend(exc.problems)
    if problems:
        raise XmlRefused(problems)

    parser = BatchlineParser(validator=VALIDATOR)
    for filename, root in trees.items():
        try:
            parser.add_bpmn_xml(root, filename=filename)
        except ValidationException as exc:
            problems.append(_from_validation(exc, filename))
    if problems:
        raise RecipeInvalid(problems)

    processes = _processes(trees)
    problems.extend(_reference_problems(trees))
    for pid, info in processes.items():
        for call_id, target in info["calls"]:
            if not target:
                problems.append(
                    Problem(
                        "call_without_process", "call activity names no process (calledElement)", call_id, info["file"]
                    )
                )
            elif target not in processes:
                problems.append(
                    Problem(
                        "called_process_missing",
                        f"call activity calls process {target!r}, which no recipe file defines",
                        call_id,
                        info["file"],
                    )
                )
    top, choice_problems = _choose_top(processes, process_id)
    problems.extend(choice_problems)
    if top is not None:
        for pid in _reachable(top, processes)[1:]:
            if not processes[pid]["executable"]:
                problems.append(
                    Problem(
                        "not_executable",
                        f'called process {pid!r} is marked isExecutable="false"',
                        pid,
                        processes[pid]["file"],
                    )
                )
    if problems:
        raise RecipeInvalid(problems)

    try:
        spec = parser.get_spec(top)
        subprocess_specs = parser.get_subprocess_specs(top)
    except ValidationException as exc:
        raise RecipeInvalid([_from_validation(exc)]) from None
    except RecursionError:
        raise RecipeInvalid([Problem("process_too_long", TOO_LONG, top, processes[top]["file"])]) from None
    except TypeError as exc:  # bad `node=` keyword in Spiff's event parsers, if it ever escapes unwrapped
        raise RecipeInvalid(
            [
                Problem(
                    "undefined_reference",
                    f"the BPMN refers to something undefined ({exc})",
                    top,
                    processes[top]["file"],
                )
            ]
        ) from None

    problems = _script_problems(spec, subprocess_specs)
    if problems:
        raise RecipeInvalid(problems)
    return _describe(spec, subprocess_specs)


def validate_recipe(files: dict[str, bytes], process_id: str | None = None) -> list[Problem]:
    """Every problem found, [] if the recipe can run. Never raises for bad input (CLI `recipe validate`)."""
    try:
        parse_recipe(files, process_id)
    except RecipeInvalid as exc:
        return exc.problems
    except Exception as exc:  # a Spiff failure we have not mapped yet: still an answer, not a trace
        return [Problem("bpmn_invalid", f"could not parse the recipe: {exc.__class__.__name__}: {exc}")]
    return []


# --- walking specs ----------------------------------------------------------------


def _all_specs(spec, subprocess_specs) -> Iterator[tuple[Any, Any]]:
    for process in [spec, *[s for s in subprocess_specs.values() if s is not None]]:
        for task_spec in process.task_specs.values():
            yield process, task_spec


def _event_definitions(task_spec) -> Iterator[Any]:
    todo = [getattr(task_spec, "event_definition", None)]
    while todo:
        definition = todo.pop()
        if definition is not None:
            yield definition
            todo.extend(getattr(definition, "event_definitions", None) or [])


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
    for definition in _event_definitions(task_spec):
        if isinstance(getattr(definition, "expression", None), str):
            yield "event expression", "eval", definition.expression
        for prop in [
            *getattr(definition, "correlation_properties", []),
            *getattr(definition, "process_correlations", []),
        ]:
            if isinstance(prop.retrieval_expression, str):
                yield f"correlation {prop.name!r}", "eval", prop.retrieval_expression


def _script_problems(spec, subprocess_specs) -> list[Problem]:
    problems = []
    seen = set()
    for process, task_spec in _all_specs(spec, subprocess_specs):
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


def _describe(spec, subprocess_specs) -> ParsedRecipe:
    recipe = ParsedRecipe(spec.name, spec.description or spec.name, spec, dict(subprocess_specs))
    timer_kinds = {
        TimeDateEventDefinition: "date",
        DurationTimerEventDefinition: "duration",
        CycleTimerEventDefinition: "cycle",
    }
    for process, task_spec in _all_specs(spec, subprocess_specs):
        element = getattr(task_spec, "bpmn_id", None)
        if element is None:
            continue
        name = getattr(task_spec, "bpmn_name", None)
        extensions = getattr(task_spec, "extensions", None) or {}
        if isinstance(task_spec, UserTaskMixin):
            recipe.user_tasks.append(
                UserTaskInfo(
                    element,
                    name,
                    process.name,
                    (extensions.get("properties") or {}).get("formKey"),
                    extensions.get("instructionsForEndUser"),
                )
            )
        elif isinstance(task_spec, BatchlineServiceTask):
            recipe.service_tasks.append(
                ServiceTaskInfo(
                    element,
                    name,
                    process.name,
                    task_spec.operation_name,
                    dict(task_spec.operation_params or {}),
                    task_spec.result_variable,
                )
            )
        for definition in _event_definitions(task_spec):
            kind = timer_kinds.get(type(definition))
            if kind is not None:
                recipe.timers.append(TimerInfo(element, name, process.name, kind, definition.expression))
            elif isinstance(definition, MessageEventDefinition):
                props = [*definition.correlation_properties, *getattr(definition, "process_correlations", [])]
                keys = sorted({key for prop in props for key in prop.correlation_keys})
                recipe.messages.append(
                    MessageInfo(
                        element,
                        definition.name,
                        process.name,
                        tuple(keys),
                        {prop.name: prop.retrieval_expression for prop in props},
                    )
                )
    return recipe


# --- serialization ------------------------------------------------------------------


def make_serializer() -> BpmnWorkflowSerializer:
    """Spiff's serializer knowing BatchlineServiceTask, Decimal (as text), date; datetime/UUID are built in."""
    config = dict(SPIFF_CONFIG)
    config[BatchlineServiceTask] = ServiceTaskConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]))
    registry.register(_dt.date, lambda v: {"value": v.isoformat()}, lambda d: _dt.date.fromisoformat(d["value"]))
    return BpmnWorkflowSerializer(registry)


_SPEC_REGISTRY = None


def _spec_registry():
    global _SPEC_REGISTRY  # converters are stateless; build them once
    if _SPEC_REGISTRY is None:
        _SPEC_REGISTRY = make_serializer().registry
    return _SPEC_REGISTRY


def spec_to_dict(parsed: ParsedRecipe) -> dict[str, Any]:
    """JSON-safe form of the specs, to store once per recipe version (keyed by its hash)."""
    registry = _spec_registry()
    dct = {
        "spec": registry.convert(parsed.spec),
        "subprocess_specs": {name: registry.convert(sp) for name, sp in parsed.subprocess_specs.items()},
    }
    json.dumps(dct)  # fail here, not when the row is written
    return dct


def spec_from_dict(dct: dict[str, Any]) -> ParsedRecipe:
    registry = _spec_registry()
    spec = registry.restore(dct["spec"])
    subprocess_specs = {name: registry.restore(sp) for name, sp in dct.get("subprocess_specs", {}).items()}
    return _describe(spec, subprocess_specs)
