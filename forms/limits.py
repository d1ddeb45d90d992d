"""Hard, action and alert limits of a number field: one home for what they mean.

- In a definition, the limits must nest: hardMin <= actionLow <= alertLow <=
  alertHigh <= actionHigh <= hardMax (any of them may be left out).
- A value outside the hard limits is refused: the step is not recorded.
- A value outside the action or alert limits is accepted with a `LimitFinding`, which
  the engine raises as an exception for review by exception. The limits themselves
  pass, and the most severe limit crossed (action before alert) is the one reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError

from forms.display import format_number, with_unit
from forms.form import FieldDefinition
from forms.vocabulary import LIMIT_NAMES

_ORDER_REASONS = {
    ("hard", "hard"): "the hard range is empty",
    ("alert", "alert"): "the alert range is empty",
    ("action", "action"): "the action range is empty",
    ("hard", "alert"): "alert limits must lie within the hard limits",
    ("hard", "action"): "action limits must lie within the hard limits",
    ("action", "alert"): "action limits must lie outside (or on) the alert limits",
}
_FAMILY_ORDER = ("hard", "action", "alert")


def _family(name: str) -> str:
    return "hard" if name.startswith("hard") else "alert" if name.startswith("alert") else "action"


def limit_order_problems(limits: Mapping[str, Decimal], where: str) -> list[str]:
    """Every pair of limits out of order in a definition, each with the rule it breaks."""
    problems = []
    present = [name for name in LIMIT_NAMES if name in limits]
    for i, lower in enumerate(present):
        for upper in present[i + 1 :]:
            if limits[lower] > limits[upper]:
                first, second = sorted((_family(lower), _family(upper)), key=_FAMILY_ORDER.index)
                reason = _ORDER_REASONS.get((first, second), "limits are out of order")
                problems.append(
                    f"{where}: {lower} ({limits[lower]}) is greater than {upper} ({limits[upper]}): {reason}"
                )
    return problems


def check_hard_limits(number: Decimal, spec: FieldDefinition) -> None:
    """Refuse a value outside [hardMin, hardMax]; the limits themselves are allowed."""
    low, high = spec.limits.get("hardMin"), spec.limits.get("hardMax")
    text = with_unit(format_number(number), spec.unit)
    if low is not None and number < low:
        raise ValidationError(
            f"{spec.label} {text} is below the lower limit of "
            f"{with_unit(format_number(low), spec.unit)} (hard limit); it cannot be recorded."
        )
    if high is not None and number > high:
        raise ValidationError(
            f"{spec.label} {text} is above the upper limit of "
            f"{with_unit(format_number(high), spec.unit)} (hard limit); it cannot be recorded."
        )


@dataclass(frozen=True)
class LimitFinding:
    """A value outside its alert or action limits: accepted, but an exception to review."""

    key: str
    label: str
    value: str
    unit: str | None
    severity: str  # "alert" | "action"
    limit_name: str  # alertLow, alertHigh, actionLow, actionHigh
    limit_value: str
    critical: bool
    message: str
    #: every limit of the field (hard, alert, action), as text: the reviewer sees the range
    limits: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def limit_finding(spec: FieldDefinition, number: Decimal) -> LimitFinding | None:
    """The most severe limit crossed (action before alert); limits themselves pass."""
    limits = spec.limits
    for severity in ("action", "alert"):
        low, high = limits.get(f"{severity}Low"), limits.get(f"{severity}High")
        if low is not None and number < low:
            name, limit, side, end = f"{severity}Low", low, "below", "lower"
        elif high is not None and number > high:
            name, limit, side, end = f"{severity}High", high, "above", "upper"
        else:
            continue
        value_text = with_unit(format_number(number), spec.unit)
        limit_text = with_unit(format_number(limit), spec.unit)
        return LimitFinding(
            key=spec.key,
            label=spec.label,
            value=format_number(number),
            unit=spec.unit,
            severity=severity,
            limit_name=name,
            limit_value=format_number(limit),
            critical=spec.critical,
            limits={k: format_number(v) for k, v in limits.items() if v is not None},
            message=(
                f"{spec.label} {value_text} is {side} the {end} {severity} limit of "
                f"{limit_text}" + (" — critical process parameter." if spec.critical else ".")
            ),
        )
    return None
