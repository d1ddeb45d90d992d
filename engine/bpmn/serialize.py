"""Spiff's serializer as Batchline configures it, and specs as JSON: stored once per
recipe version (keyed by hash) and restored from there."""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal
from typing import Any

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import ServiceTaskConverter

from .contents import ParsedRecipe, describe
from .service_task import BatchlineServiceTask


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
    return describe(spec, subprocess_specs)
