"""Moving a running batch to a newer version of its recipe: a supervisor requests it, QA
approves it with an e-signature, and only then — and only if the batch's position maps
onto the new version (``position``) — the batch moves. New batches take the current
version; running batches keep theirs unless moved this way.

Rules the engine holds whatever a caller does: only a supervisor requests, only QA
approves, the requester never approves (segregation of duties); the target is a newer
approved (or effective) version of the same recipe; one open request per batch. The
position is checked at the request (refused at once, with the elements that do not map)
and again when QA approves (the batch may have moved on meanwhile: then the request is
``refused`` and says why). The move, the batch's new version pin, the signature and the
audit entries are one transaction (``unit_of_work.mutate``: the batch is locked and its
revision checked). Steps recorded afterwards carry the new ``recipe_version_id``; steps
before keep the old one, so the record says which version each step ran under.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import audit, outbox
from ..batches.inputs import check_batch_id
from ..batches.unit_of_work import Idempotency, find_batch, live_workflow, lock_for_writing, mutate
from ..errors import Conflict, InvalidInput, NotFound
from ..idempotency import Outcome, remember, replay
from ..models import Batch, BatchMigration, BatchMigrationSignature, RecipeVersion, utcnow
from ..permissions import Forbidden
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import BatchState
from ..workflow_store import canonical, sha256
from .position import map_position, move

MEANING = "Approved"
MAX_REASON = 2000
#: versions a batch may move to (``effective`` is the lifecycle's word for the approved
#: version in force; both run on the floor)
RUNNABLE = ("approved", "effective")
#: batch states a migration applies to (a held batch may be moved, then resumed)
MOVABLE = (BatchState.RUNNING, BatchState.HELD)
MAX_ROW_ID = 2**31 - 1


def _reason(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a migration needs its reason", code="reason_required")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters", code="reason_invalid")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise InvalidInput("reason holds control characters", code="reason_invalid")
    return text.strip()


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ROW_ID:
        raise InvalidInput(f"{name} must be a positive integer", code=f"{name}_invalid")
    return value


def describe(m: BatchMigration, batch: Batch, versions: dict[int, RecipeVersion], sig=None) -> dict[str, Any]:
    old, new = versions[m.from_version_id], versions[m.to_version_id]
    out = {
        "id": m.id,
        "batch_id": batch.batch_id,
        "recipe": old.recipe,
        "from_version": old.version,
        "from_version_id": old.id,
        "to_version": new.version,
        "to_version_id": new.id,
        "reason": m.reason,
        "status": m.status,
        "requested_by": m.requested_by,
        "requested_at": m.requested_at.isoformat(),
        "decided_by": m.decided_by,
        "decided_at": m.decided_at.isoformat() if m.decided_at else None,
        "position": m.details.get("position", []),
        "problems": m.details.get("problems", []),
        "signature": None,
    }
    if sig is not None:
        out["signature"] = {
            "username": sig.username,
            "printed_name": sig.printed_name,
            "meaning": sig.meaning,
            "signed_at": sig.signed_at.isoformat(),
            "content_hash": sig.content_hash,
        }
    return out


def _target(s, batch: Batch, to_version: int) -> tuple[RecipeVersion, RecipeVersion]:
    current = s.get(RecipeVersion, batch.recipe_version_id)
    target = s.scalars(
        select(RecipeVersion).where(RecipeVersion.recipe == current.recipe, RecipeVersion.version == to_version)
    ).first()
    if target is None:
        raise NotFound(f"recipe {current.recipe} has no version {to_version}", code="recipe_not_found")
    if target.version <= current.version:
        raise Conflict(
            f"batch {batch.batch_id} runs version {current.version} of {current.recipe}; "
            f"it moves only to a newer version, not {target.version}",
            code="migration_not_newer",
        )
    if target.status not in RUNNABLE:
        raise Conflict(
            f"version {target.version} of {current.recipe} is {target.status}; "
            "a batch moves only to an approved version",
            code="recipe_not_approved",
            details={"status": target.status},
        )
    return current, target


def _refused(problems: list[dict[str, Any]], target: RecipeVersion) -> Conflict:
    names = sorted({p["element"] for p in problems})
    return Conflict(
        f"the batch's position does not map to version {target.version}: " + ", ".join(names),
        code="migration_unmapped",
        details={"unmapped": names, "problems": problems},
    )


def _check_movable(batch: Batch) -> None:
    if batch.kind == "quality":
        raise Conflict("a quality process is not moved to another version", code="migration_not_batch")
    if batch.state not in MOVABLE:
        raise Conflict(f"batch {batch.batch_id} is {batch.state}", code=f"batch_{batch.state}")


def request_migration(
    rt: Runtime, batch_id: str, *, to_version: Any, reason: Any, requester: Person, idempotency_key: str | None = None
) -> Outcome:
    """A supervisor asks to move the batch; refused at once when the position does not map."""
    batch_id = check_batch_id(batch_id)
    to_version = _positive(to_version, "to_version")
    reason = _reason(reason)
    if "supervisor" not in requester.roles:
        raise Forbidden(
            "only a supervisor requests a batch migration", code="forbidden", details={"roles": ["supervisor"]}
        )
    request = {"batch": batch_id, "to_version": to_version, "reason": reason}
    scope = f"migration:{batch_id}|user:{requester.username}"
    with rt.transaction() as s:
        if idempotency_key:
            stored = replay(s, scope, idempotency_key, request)
            if stored is not None:
                return stored
        batch = find_batch(s, batch_id, lock=True)
        _check_movable(batch)
        current, target = _target(s, batch, to_version)
        pending = s.scalars(
            select(BatchMigration).where(BatchMigration.batch_id == batch.id, BatchMigration.status == "requested")
        ).first()
        if pending is not None:
            raise Conflict(
                f"batch {batch_id} already has migration {pending.id} waiting for QA",
                code="migration_pending",
                details={"migration": pending.id},
            )
        new_spec, new_subs = rt.store.specs(s, target.spec_hash)
        with live_workflow(rt, s, batch) as entry:
            mapping = map_position(entry.workflow, new_spec, new_subs)
        if not mapping.ok:
            raise _refused(mapping.problems, target)
        m = BatchMigration(
            batch_id=batch.id,
            from_version_id=current.id,
            to_version_id=target.id,
            reason=reason,
            status="requested",
            requested_by=requester.username,
            details={"position": mapping.position},
        )
        s.add(m)
        s.flush()
        audit.record(
            s,
            user=requester.username,
            action="batch.migration_requested",
            object_type="batch",
            object_id=batch.batch_id,
            field="recipe_version",
            old=f"{current.recipe}:{current.version}",
            new=f"{target.recipe}:{target.version}",
            reason=reason,
        )
        outcome = Outcome(201, describe(m, batch, {current.id: current, target.id: target}))
        if idempotency_key:
            remember(s, scope, idempotency_key, request, outcome)
        return outcome


def check_approver(rt: Runtime, batch_id: str, migration_id: Any, person: Person) -> None:
    """What is checked before the approver's password is asked: the migration exists, is
    waiting, and the approver is QA and not the person who requested it."""
    batch_id = check_batch_id(batch_id)
    migration_id = _positive(migration_id, "migration")
    if "qa" not in person.roles:
        raise Forbidden("only QA approves a batch migration", code="forbidden", details={"roles": ["qa"]})
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        m = s.get(BatchMigration, migration_id)
        if m is None or m.batch_id != batch.id:
            raise NotFound(f"batch {batch_id} has no migration {migration_id}", code="migration_not_found")
        if m.status != "requested":
            raise Conflict(f"migration {m.id} is {m.status} already", code=f"migration_{m.status}")
        if m.requested_by == person.username:
            raise Forbidden(
                f"{person.username} requested this migration: someone else must approve it",
                code="segregation_of_duties",
            )


def _signed_content(m: BatchMigration, batch: Batch, current: RecipeVersion, target: RecipeVersion) -> str:
    return sha256(
        canonical(
            {
                "migration": m.id,
                "batch": batch.batch_id,
                "from": {"id": current.id, "content_hash": current.content_hash},
                "to": {"id": target.id, "content_hash": target.content_hash},
                "reason": m.reason,
                "requested_by": m.requested_by,
                "meaning": MEANING,
            }
        )
    )


def approve_migration(
    rt: Runtime,
    batch_id: str,
    migration_id: Any,
    *,
    signer: Person,
    meaning: str = MEANING,
    idempotency_key: str | None = None,
) -> Outcome:
    """QA's e-signed approval: the batch moves now, or the request is refused with why.

    ``signer`` has just been re-authenticated with their password by the caller."""
    batch_id = check_batch_id(batch_id)
    migration_id = _positive(migration_id, "migration")
    if "qa" not in signer.roles:
        raise Forbidden("only QA approves a batch migration", code="forbidden", details={"roles": ["qa"]})
    if meaning != MEANING:
        raise InvalidInput(f"this signature means {MEANING!r}", code="meaning_invalid")
    refusal: dict[str, Any] = {}

    def change(s, batch: Batch, entry) -> dict[str, Any]:
        m = s.get(BatchMigration, migration_id)
        if m is None or m.batch_id != batch.id:
            raise NotFound(f"batch {batch_id} has no migration {migration_id}", code="migration_not_found")
        if m.status != "requested":
            raise Conflict(f"migration {m.id} is {m.status} already", code=f"migration_{m.status}")
        if m.requested_by == signer.username:
            raise Forbidden(
                f"{signer.username} requested this migration: someone else must approve it",
                code="segregation_of_duties",
            )
        _check_movable(batch)
        current, target = s.get(RecipeVersion, m.from_version_id), s.get(RecipeVersion, m.to_version_id)
        if batch.recipe_version_id != current.id:
            raise Conflict("the batch is no longer on the version this migration starts from", code="migration_stale")
        new_spec, new_subs = rt.store.specs(s, target.spec_hash)
        mapping = move(entry.workflow, new_spec, new_subs)
        if not mapping.ok:
            refusal["problems"] = mapping.problems
            raise _refused(mapping.problems, target)
        lock_for_writing(s, batch)  # before the first write: the batch must not have changed since read
        entry.spec_hash = target.spec_hash
        batch.recipe_version_id, batch.recipe_hash = target.id, target.content_hash
        m.status, m.decided_by, m.decided_at = "approved", signer.username, utcnow()
        m.details = {"position": mapping.position}
        sig = BatchMigrationSignature(
            migration_id=m.id,
            username=signer.username,
            printed_name=signer.printed_name,
            meaning=MEANING,
            content_hash=_signed_content(m, batch, current, target),
        )
        s.add(sig)
        s.flush()
        audit.record(
            s,
            user=signer.username,
            action="batch.migrated",
            object_type="batch",
            object_id=batch.batch_id,
            field="recipe_version",
            old=f"{current.recipe}:{current.version}",
            new=f"{target.recipe}:{target.version}",
            reason=m.reason,
        )
        outbox.emit(
            s,
            rt.settings,
            "batch.migrated",
            batch.batch_id,
            {"batch_id": batch.batch_id, "recipe": target.recipe, "from": current.version, "to": target.version},
        )
        return {"migration": describe(m, batch, {current.id: current, target.id: target}, sig)}

    try:
        outcome = mutate(
            rt,
            batch_id,
            change,
            idempotency=Idempotency(signer.username, idempotency_key, {"approve": migration_id})
            if idempotency_key
            else None,
            allow_states=MOVABLE,
        )
    except Conflict:
        if refusal:
            _record_refusal(rt, batch_id, migration_id, signer, refusal["problems"])
        raise
    with rt.transaction() as s:  # reload the moved workflow from its rows, not from memory
        rt.cache.drop(find_batch(s, batch_id).id)
    return outcome


def _record_refusal(rt: Runtime, batch_id: str, migration_id: int, signer: Person, problems) -> None:
    with rt.transaction() as s:
        batch = find_batch(s, batch_id, lock=True)
        m = s.get(BatchMigration, migration_id)
        if m is None or m.status != "requested":
            return
        m.status, m.decided_by, m.decided_at = "refused", signer.username, utcnow()
        m.details = {**m.details, "problems": problems}
        audit.record(
            s,
            user=signer.username,
            action="batch.migration_refused",
            object_type="batch",
            object_id=batch.batch_id,
            field="migration",
            old="requested",
            new="refused",
            reason="the position does not map: " + ", ".join(sorted({p["element"] for p in problems})),
        )


def list_migrations(rt: Runtime, batch_id: str) -> list[dict[str, Any]]:
    batch_id = check_batch_id(batch_id)
    with rt.transaction() as s:
        batch = find_batch(s, batch_id)
        rows = list(
            s.scalars(select(BatchMigration).where(BatchMigration.batch_id == batch.id).order_by(BatchMigration.id))
        )
        ids = {r.from_version_id for r in rows} | {r.to_version_id for r in rows}
        versions = {v.id: v for v in s.scalars(select(RecipeVersion).where(RecipeVersion.id.in_(ids)))} if ids else {}
        sigs = (
            {
                g.migration_id: g
                for g in s.scalars(
                    select(BatchMigrationSignature).where(
                        BatchMigrationSignature.migration_id.in_([r.id for r in rows])
                    )
                )
            }
            if rows
            else {}
        )
        return [describe(r, batch, versions, sigs.get(r.id)) for r in rows]
