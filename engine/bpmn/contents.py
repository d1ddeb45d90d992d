"""What a parsed recipe holds — its user tasks, service tasks, timers and messages — read
from the specs Spiff built (also after the specs are restored from storage)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask as UserTaskMixin

from .service_task import BatchlineServiceTask


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


def all_specs(spec, subprocess_specs) -> Iterator[tuple[Any, Any]]:
    for process in [spec, *[s for s in subprocess_specs.values() if s is not None]]:
        for task_spec in process.task_specs.values():
            yield process, task_spec


def event_definitions(task_spec) -> Iterator[Any]:
    todo = [getattr(task_spec, "event_definition", None)]
    while todo:
        definition = todo.pop()
        if definition is not None:
            yield definition
            todo.extend(getattr(definition, "event_definitions", None) or [])


def describe(spec, subprocess_specs) -> ParsedRecipe:
    recipe = ParsedRecipe(spec.name, spec.description or spec.name, spec, dict(subprocess_specs))
    timer_kinds = {
        TimeDateEventDefinition: "date",
        DurationTimerEventDefinition: "duration",
        CycleTimerEventDefinition: "cycle",
    }
    for process, task_spec in all_specs(spec, subprocess_specs):
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
        for definition in event_definitions(task_spec):
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
