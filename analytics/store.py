"""Trained out-of-trend models as JSON records (model cards): what was trained, on
which batches, for which recipe step, with which limits - and the state needed to
score with it again.

Why not pickle: a pickle is executable code, is tied to library versions, and cannot
be reviewed by QA.  A model card is plain data that can be diffed, audited,
exported with the batch record and loaded by any later version that knows its
format.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from .base import _json_value
from .duration import DurationMonitor
from .forest import IsolationForestMonitor
from .pca import PCAMonitor
from .univariate import UnivariateMonitor

CARD_FORMAT = "batchline.analytics.model-card/1"

MONITOR_KINDS = {cls.__name__: cls for cls in (UnivariateMonitor, PCAMonitor, DurationMonitor, IsolationForestMonitor)}


def monitor_from_dict(data):
    """Rebuild any monitor from its ``to_dict`` output."""
    kind = data.get("kind")
    if kind not in MONITOR_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {sorted(MONITOR_KINDS)}")
    return MONITOR_KINDS[kind].from_dict(data)


@dataclass
class ModelCard:
    """One trained model for one recipe step and what it was trained on."""

    kind: str
    version: int
    recipe_id: str
    recipe_version: str
    step_id: str
    parameter_names: list
    training_batch_ids: list
    trained_at: str  # ISO 8601, UTC
    params: dict
    limits: dict
    model: dict = field(repr=False)
    format: str = CARD_FORMAT

    @classmethod
    def for_monitor(
        cls,
        monitor,
        *,
        recipe_id,
        recipe_version,
        step_id,
        parameter_names,
        training_batch_ids,
        version=1,
        trained_at=None,
    ):
        """Card for a fitted monitor; ``trained_at`` defaults to now (UTC)."""
        parameter_names = [str(p) for p in parameter_names]
        if len(parameter_names) != monitor.n_features_in_:
            raise ValueError(
                f"{len(parameter_names)} parameter names given but the model was trained "
                f"on {monitor.n_features_in_} parameters"
            )
        if trained_at is None:
            trained_at = datetime.now(UTC)
        if isinstance(trained_at, datetime):
            if trained_at.tzinfo is None:
                raise ValueError("trained_at must be timezone-aware (UTC)")
            trained_at = trained_at.astimezone(UTC).isoformat()
        model = monitor.to_dict()
        return cls(
            kind=type(monitor).__name__,
            version=int(version),
            recipe_id=str(recipe_id),
            recipe_version=str(recipe_version),
            step_id=str(step_id),
            parameter_names=parameter_names,
            training_batch_ids=[str(b) for b in training_batch_ids],
            trained_at=trained_at,
            params=model["params"],
            limits=_json_value(monitor.limits()),
            model=model,
        )

    def monitor(self):
        """The fitted monitor, ready to score."""
        return monitor_from_dict(self.model)

    def to_dict(self):
        return _json_value(asdict(self))

    @classmethod
    def from_dict(cls, data):
        if data.get("format") != CARD_FORMAT:
            raise ValueError(f"not a Batchline model card (format {data.get('format')!r})")
        missing = [f for f in cls.__dataclass_fields__ if f not in data]
        if missing:
            raise ValueError(f"model card is missing {', '.join(missing)}")
        if data["model"].get("kind") != data["kind"]:
            raise ValueError("model card kind does not match its model")
        return cls(**{f: data[f] for f in cls.__dataclass_fields__})


def dumps(card_or_monitor):
    """JSON text for a ModelCard or a bare monitor (strict JSON: no NaN/inf)."""
    if isinstance(card_or_monitor, ModelCard):
        data = card_or_monitor.to_dict()
    else:
        data = card_or_monitor.to_dict()
    return json.dumps(data, sort_keys=True, allow_nan=False, separators=(",", ":"))


def loads(text):
    """A ModelCard (if the JSON is a card) or a bare monitor, from ``dumps`` text."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("model JSON must be an object")
    if "format" in data and data["format"] == CARD_FORMAT:
        return ModelCard.from_dict(data)
    return monitor_from_dict(data)
