"""Master data the floor scans: materials, material lots and equipment, maintained by the
roles that own them and audited field by field (old → new).

* ``materials``: the material list (code, name, unit, kind); retired, never deleted.
* ``lots``: received or produced lots, their quantity, expiry and QA status
  (quarantine → released / rejected by QA with a reason; released → expired when past
  expiry; rejected and expired are final).
* ``equipment``: the equipment register and its status (clean, dirty, in use,
  maintenance, out of service) set by maintenance with a reason.
* ``equipment_use``: the status the step path sets by use — in use by the batch whose
  step scanned it, dirty when the batch ends, clean after a cleaning SOP, calibrated
  until a date after a calibration SOP — in the step's own transaction.

Shared here: the checks every module applies to what people type (ids, bounded text,
reasons, quantities, dates) and the locked read that makes two changes at once end
consistent (the second sees the first's result; a stale ``version`` is refused).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from .. import audit
from ..db import row_locks
from ..errors import Conflict, InvalidInput, NotFound
from ..models import utcnow

#: a code a barcode can carry: letters, digits, '.', '_', '-'; starts with a letter or digit
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: the units a quantity may be counted in
UNITS = ("L", "mL", "uL", "m3", "kg", "g", "mg", "ug", "vial", "bag", "bottle", "unit", "each", "cells", "box", "roll")
MAX_TEXT = 200
MAX_REASON = 500
MAX_QUANTITY = 1e12


def check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not ID.match(value):
        raise InvalidInput(
            f"{what} is 1-100 characters: letters, digits, '.', '_' or '-', starting with a letter or digit",
            code=f"{what.replace(' ', '_')}_invalid",
        )
    return value


def check_text(value: Any, what: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    """Printable text of at most ``limit`` characters (no control characters)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{what} is required (text)", code=f"{what.replace(' ', '_')}_invalid")
    if len(value) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters", code=f"{what.replace(' ', '_')}_too_long")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidInput(f"{what} has control characters", code=f"{what.replace(' ', '_')}_invalid")
    return value.strip()


def check_reason(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"give the reason for {what}", code="reason_required")
    return check_text(value, "reason", limit=MAX_REASON)


def check_unit(value: Any) -> str:
    if value not in UNITS:
        raise InvalidInput(f"unit must be one of {', '.join(UNITS)}", code="unit_invalid")
    return str(value)


def check_quantity(value: Any, what: str = "quantity") -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what} must be a number", code="quantity_invalid")
    if not math.isfinite(value) or value < 0 or value > MAX_QUANTITY:
        raise InvalidInput(f"{what} must be a number from 0 to {MAX_QUANTITY:g}", code="quantity_invalid")
    return float(value)


def check_when(value: Any, what: str) -> datetime | None:
    """An ISO date (end of that day, UTC) or date-time with a time zone; None clears it."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(23, 59, 59), UTC)
    elif isinstance(value, str) and len(value) <= 40:
        try:
            parsed = (
                datetime.combine(date.fromisoformat(value), time(23, 59, 59), UTC)
                if len(value) == 10
                else datetime.fromisoformat(value.replace("Z", "+00:00"))
            )
        except ValueError:
            raise InvalidInput(f"{what} must be a date (YYYY-MM-DD) or date-time", code="date_invalid") from None
    else:
        raise InvalidInput(f"{what} must be a date (YYYY-MM-DD) or date-time", code="date_invalid")
    if parsed.tzinfo is None:
        raise InvalidInput(f"{what} needs a time zone (for example 2027-01-31T12:00:00Z)", code="date_invalid")
    if not 2000 <= parsed.year <= 2200:
        raise InvalidInput(f"{what} must be between the years 2000 and 2200", code="date_invalid")
    return parsed.astimezone(UTC)


def locked(s: Session, model: Any, key: str, what: str, code: str, *, lock: bool = True) -> Any:
    """The row, locked for this transaction (PostgreSQL row lock; SQLite's write
    transaction already serialises writers): a second change waits and sees the first.
    ``lock`` False: a plain read (404 all the same)."""
    row = None
    if isinstance(key, str) and len(key) <= 100:
        row = s.get(model, key, with_for_update=True) if lock and row_locks(s) else s.get(model, key)
    if row is None:
        raise NotFound(f"{what} {str(key)[:100]!r} is not known", code=code)
    return row


def check_change(values: Any, fields: Any, *, hint: str = "") -> None:
    """A change is a JSON object naming only ``fields`` (plus ``version`` and ``reason``);
    ``hint`` tells where the other changes go."""
    if not isinstance(values, dict):
        raise InvalidInput("a change is a JSON object", code="body_invalid")
    unknown = set(values) - set(fields) - {"version", "reason"}
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))[:200]}{hint}", code="field_unknown")


def check_version(row: Any, expected: Any) -> None:
    """Refuse a change made on an older read (409 ``stale_version``): someone changed the
    row in between, so the caller re-reads before deciding again."""
    if expected is None:
        return
    if isinstance(expected, bool) or not isinstance(expected, int):
        raise InvalidInput("version must be a whole number", code="version_invalid")
    if (row.version or 0) != expected:
        raise Conflict(
            f"it was changed meanwhile (version {row.version or 0}, not {expected}); reload and try again",
            code="stale_version",
            details={"version": row.version or 0},
        )


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def apply_changes(
    s: Session,
    row: Any,
    changes: dict[str, Any],
    *,
    by: str,
    action: str,
    object_type: str,
    object_id: str,
    reason: Any,
) -> dict[str, Any]:
    """Set the fields that really change, one audit entry each (old → new, with the
    reason), and count a new ``version``; the same rule for materials, lots and
    equipment. Returns what changed."""
    changed = {k: v for k, v in changes.items() if getattr(row, k) != v}
    for key, new in changed.items():
        old = getattr(row, key)
        audit.record(
            s,
            user=by,
            action=action,
            object_type=object_type,
            object_id=object_id,
            field=key,
            old=iso(old) if isinstance(old, datetime) else old,
            new=iso(new) if isinstance(new, datetime) else new,
            reason=reason,
        )
        setattr(row, key, new)
    if changed:
        row.version, row.updated_at = (row.version or 0) + 1, utcnow()
    return changed


def history(s: Session, object_type: str, object_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """What the audit trail says about one material, lot or equipment, newest first (the
    history its page shows)."""
    from sqlalchemy import select

    from ..models import AuditEvent

    rows = s.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return [
        {
            "at": iso(a.at),
            "user": a.user,
            "action": a.action,
            "field": a.field,
            "old": a.old,
            "new": a.new,
            "reason": a.reason,
        }
        for a in rows
    ]
