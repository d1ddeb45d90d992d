"""Re-verifying every electronic signature against the record (``audit verify
--signatures``): a signature is bound to the SHA-256 of what was signed (21 CFR 11.70),
so its ``content_hash`` is recomputed here from the ``step`` row (performer, witness) or
the ``correction`` row (corrector) and compared. A changed value, unit, form hash or
meaning, or a signature moved to another step, no longer matches."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Batch, Correction, Signature, Step
from ..record import corrected_value, replaced_value
from .corrections import corrected_content
from .signatures import signed_content


def expected_content(batch_id: str, sig: Signature, step: Step | None, corr: Correction | None) -> str | None:
    """What the signature's content hash must be, or None when its step or correction is gone."""
    if sig.correction_id is not None:
        if corr is None or corr.batch_id != sig.batch_id:
            return None
        return corrected_content(
            batch_id, corr.id, corr.step_seq, corr.field, replaced_value(corr), corrected_value(corr), corr.reason
        )
    if step is None:
        return None
    return signed_content(batch_id, step, sig.meaning)


def check_signatures(s: Session, limit: int = 50) -> dict[str, Any]:
    names = {pk: name for pk, name in s.execute(select(Batch.id, Batch.batch_id))}
    problems: list[str] = []
    checked = 0
    for sig in s.scalars(select(Signature).order_by(Signature.id)):
        checked += 1
        step = s.scalars(select(Step).where(Step.batch_id == sig.batch_id, Step.seq == sig.step_seq)).first()
        corr = s.get(Correction, sig.correction_id) if sig.correction_id is not None else None
        batch_id = names.get(sig.batch_id, str(sig.batch_id))
        where = f"signature {sig.id} ({sig.meaning} by {sig.username}, batch {batch_id}, step {sig.step_seq})"
        expected = expected_content(batch_id, sig, step, corr)
        if expected is None:
            problems.append(f"{where}: what it signed is missing from the record")
        elif expected != sig.content_hash:
            problems.append(f"{where}: the record no longer matches what was signed")
        if len(problems) >= limit:
            break
    return {"checked": checked, "mismatches": len(problems), "problems": problems}
