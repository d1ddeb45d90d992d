"""A supervisor's override of a failed lot or equipment scan check, on the step path.

A scanned material lot or piece of equipment that fails its check (not released,
expired, dirty, out of calibration, in use by another batch) refuses the step with 422.
Sometimes the floor must go on anyway — a lot released on paper and not yet in the ERP, a
vessel whose cleaning record is late. Then a supervisor overrides *that field's* check
with a reason and their e-signature (meaning *Approved*); the step is recorded with the
scanned value and an ``override`` exception is raised in the same transaction, for QA.

Only scan checks can be overridden: types, required fields and hard limits are checked
first and still refuse the step, and an override naming a field whose scan passed (or
that is no scan) is refused — nothing is waved through by accident. The supervisor is
someone other than the performer (four eyes) and holds the supervisor role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from forms import EquipmentCheck, FormRejected, LotCheck, compile_form

from .. import audit
from ..errors import InvalidInput
from ..models import Batch, Step, utcnow
from ..permissions import Forbidden
from ..quality import exceptions as qx
from ..runtime import Runtime
from ..step_values import CheckedValues, RegistryLookups, batch_parameters, finish
from ..users import Person
from ..vocabulary import ExceptionCategory
from ..workflow_store import canonical, sha256
from .descriptions import describe_exception
from .inputs import require_reason

OVERRIDE_MEANING = "Approved"
MAX_OVERRIDES = 20


@dataclass
class _Collecting:
    """Lookups that answer every scan 'usable' but remember each failed check, so the
    step's other checks run as usual and the failures are sorted per field after."""

    inner: RegistryLookups
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def check_material_lot(self, lot_id: str, material: str) -> LotCheck:
        result = self.inner.check_material_lot(lot_id, material)
        if not result.ok:
            self.failures[("materialLot", lot_id, material)] = result.message
        return LotCheck(True)

    def check_equipment(self, equipment_id: str, equipment_class: str, batch_id: str | None) -> EquipmentCheck:
        result = self.inner.check_equipment(equipment_id, equipment_class, batch_id)
        if not result.ok:
            self.failures[("equipment", equipment_id, equipment_class)] = result.message
        return EquipmentCheck(True)


@dataclass(frozen=True)
class Overridden:
    key: str
    value: Any
    check: str
    reason: str
    critical: bool


def check_request(override: Any, signer: Person | None, user: str) -> dict[str, str]:
    """The override part of a completion: ``{field: reason}`` and a supervisor's signature."""
    if not isinstance(override, dict) or not override:
        raise InvalidInput("override is an object of field -> reason", code="override_invalid")
    if len(override) > MAX_OVERRIDES:
        raise InvalidInput(f"at most {MAX_OVERRIDES} fields are overridden at once", code="override_invalid")
    for key, reason in override.items():
        if not isinstance(key, str) or not key or len(key) > 100:
            raise InvalidInput("override names form fields", code="override_invalid")
        require_reason(reason, f"the override of {key[:100]}")
    if signer is None:
        raise InvalidInput(
            "an override needs the supervisor's signature (override_signature)", code="signature_required"
        )
    if "supervisor" not in signer.roles:
        raise Forbidden("only a supervisor overrides a failed check", code="override_forbidden")
    if signer.username == user:
        raise Forbidden(
            "the supervisor who overrides is someone other than the performer", code="override_by_performer"
        )
    return {k: v.strip() for k, v in override.items()}


def check_values_overriding(
    s: Session,
    batch_id: str,
    form: dict[str, Any] | None,
    data: dict[str, Any],
    override: dict[str, str],
    purpose: str | None = None,
) -> tuple[CheckedValues, list[Overridden]]:
    """``step_values.check_values``, except that the failed scan checks of the fields in
    ``override`` let the step through. Every other failure refuses it as usual (422)."""
    if form is None:
        raise InvalidInput("this task has no form: there is no check to override", code="override_invalid")
    compiled = compile_form(form)
    specs = {f.key: f for f in compiled.definition.fields}
    unknown = sorted(k for k in override if k not in specs or specs[k].kind not in ("materialLot", "equipment"))
    if unknown:
        raise InvalidInput(
            "only a scanned lot or equipment check can be overridden",
            code="override_invalid",
            details={"fields": {k[:100]: ["this field has no scan check to override"] for k in unknown}},
        )
    lookups = _Collecting(RegistryLookups(s, purpose))
    errors: dict[str, list[str]] = {}
    step = None
    try:
        step = compiled.validate(data, lookups=lookups, batch_id=batch_id, parameters=batch_parameters(s, batch_id))
    except FormRejected as exc:
        errors = {k: list(v) for k, v in exc.field_errors.items()}
    found: dict[str, str] = {}
    for key, spec in specs.items():
        qualifier = spec.material if spec.kind == "materialLot" else spec.equipment_class
        value = data.get(key)
        message = lookups.failures.get((spec.kind, value, qualifier or "")) if isinstance(value, str) else None
        if message is None and isinstance(value, str):  # ids are checked as loaded (trimmed)
            message = lookups.failures.get((spec.kind, value.strip(), qualifier or ""))
        if message is not None:
            found[key] = message
            if key not in override:
                errors.setdefault(key, []).append(message)
    passed = sorted(k for k in override if k not in found and k not in errors)
    for key in passed:
        errors.setdefault(key, []).append("this scan passed its check: there is nothing to override")
    if errors or step is None:
        raise InvalidInput(
            "the values were refused; nothing was stored", code="form_invalid", details={"fields": errors}
        )
    checked = finish(s, compiled, step)  # as the ordinary path records them
    critical = set(step.critical_keys)
    return checked, [Overridden(k, step.values.get(k), found[k], override[k], k in critical) for k in sorted(override)]


def raise_overrides(
    rt: Runtime, s: Session, batch: Batch, step: Step, overridden: list[Overridden], signer: Person
) -> list[dict[str, Any]]:
    """One ``override`` exception per overridden field, with the supervisor's signature
    (printed name, time, meaning, hash of what was signed) sealed into the audit trail."""
    out = []
    signed_at = utcnow()
    for o in overridden:
        content = _signed_content(batch, step, o, signed_at)
        signature = {
            "username": signer.username,
            "printed_name": signer.printed_name,
            "meaning": OVERRIDE_MEANING,
            "signed_at": signed_at.isoformat(),
            "content_hash": content,
        }
        exc = qx.raise_in(
            rt,
            s,
            batch,
            category=ExceptionCategory.OVERRIDE,
            message=f"{signer.username} overrode the failed check of {o.key} in step {step.seq}: {o.check}",
            raised_by=signer.username,
            step_seq=step.seq,
            parameter=o.key,
            value=o.value,
            limits={"check": o.check},
            details={"reason": o.reason, "performer": step.user, "signature": signature},
            critical=o.critical,
        )
        audit.record(
            s,
            user=signer.username,
            action="step.override",
            object_type="batch",
            object_id=batch.batch_id,
            field=f"step {step.seq}.{o.key}",
            old={"check": o.check},
            new={"value": o.value, "exception": exc.id, **signature},
            reason=o.reason,
        )
        out.append(describe_exception(exc))
    return out


def _signed_content(batch: Batch, step: Step, o: Overridden, at: datetime) -> str:
    return sha256(
        canonical(
            {
                "batch": batch.batch_id,
                "seq": step.seq,
                "values_hash": step.values_hash,
                "field": o.key,
                "value": o.value,
                "check": o.check,
                "reason": o.reason,
                "meaning": OVERRIDE_MEANING,
                "signed_at": at.isoformat(),
            }
        )
    )
