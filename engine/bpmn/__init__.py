"""Recipe BPMN: safe parsing, validation and spec storage on SpiffWorkflow 3.2.0.

Recipe files come from designers' browsers and from other sites, so the XML is
parsed with DTDs and entities refused before Spiff sees it; every script and
expression is checked by the restricted compiler at import time; and Spiff's
unreadable failures (parser recursion, a TypeError for an undefined message,
non-executable processes) become problems naming the element and file.
Service tasks never call out from inside Spiff: a `BatchlineServiceTask` stays
STARTED until the job executor completes it outside the batch's transaction.

Modules: ``safe_xml`` (reading the XML), ``parser`` (parsing and validating),
``scripts`` (checking scripts and expressions), ``contents`` (what a recipe holds),
``service_task`` (the waiting service task), ``serialize`` (specs to and from JSON).
"""

from __future__ import annotations

from engine.errors import Problem, RecipeInvalid, XmlRefused

from .contents import MessageInfo, ParsedRecipe, ServiceTaskInfo, TimerInfo, UserTaskInfo
from .parser import parse_recipe, validate_recipe
from .safe_xml import MAX_BPMN_BYTES, parse_xml
from .serialize import make_serializer, spec_from_dict, spec_to_dict
from .service_task import BatchlineParser, BatchlineServiceTask

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
    "parse_xml",
    "spec_from_dict",
    "spec_to_dict",
    "validate_recipe",
]
