"""Workflow data as JSON: canonical text and its SHA-256 (the keys of de-duplicated task
data and specs), and the two shapes Batchline adds to Spiff's registry — a ``MergeLog``
for pruned loop children and an escaped dict for user data holding a ``typename`` key
(which Spiff's registry would otherwise mistake for a serialized object)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


class MergeLog(list):
    """Spiff's list of merged loop children, with pruned entries counted, not listed.

    Spiff only ever takes ``len()`` of it, appends to it and reads its last entry, so a
    count of the pruned ids plus the recent ids behaves the same at O(1) size.
    """

    def __init__(self, pruned: int = 0, ids: Iterable[str] = ()):
        super().__init__(ids)
        self.pruned = pruned

    def __len__(self) -> int:  # noqa: D105
        return self.pruned + super().__len__()

    def __bool__(self) -> bool:
        return len(self) > 0


ESCAPED = "BatchlineEscapedDict"
MERGE_LOG = "BatchlineMergeLog"


def register_types(registry) -> None:
    """Teach a Spiff registry the two shapes this module writes."""
    registry.register(
        MergeLog,
        lambda v: {"pruned": v.pruned, "ids": list(list.__iter__(v))},
        lambda d: MergeLog(d["pruned"], d["ids"]),
        typename=MERGE_LOG,
    )
    registry.convert_from_dict[ESCAPED] = lambda d, **kw: {k: registry.restore(v) for k, v in d["items"]}


def encode(registry, value: Any) -> Any:
    """Registry conversion, except that user dicts holding a ``typename`` key are escaped."""
    if isinstance(value, dict):
        if "typename" in value:
            return {"typename": ESCAPED, "items": [[k, encode(registry, v)] for k, v in value.items()]}
        return {k: encode(registry, v) for k, v in value.items()}
    if isinstance(value, MergeLog):
        return {"typename": MERGE_LOG, "pruned": value.pruned, "ids": list(list.__iter__(value))}
    if isinstance(value, (list, tuple)):
        return [encode(registry, v) for v in value]
    if type(value) in (str, int, float, bool, type(None)):
        return value
    converted = registry.convert(value)
    return converted


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
