"""A recipe version's way from draft to production: submit, QA's approval, retirement.

draft → in_review (``submit``) → approved (e-signed) → effective (from its effective date,
``recipes.promote``) → superseded when a newer version becomes effective; any version but a
retired one can be retired (e-signed). Content never changes: the statuses are the
version's lifecycle, its SHA-256 content hash is what every signature names.

Submitting starts QA's own approval flow (``qa_recipe_approval``, a quality process whose
subject is the recipe version) — the version of that flow *effective when the version is
submitted*, so a new approval flow is itself approved under the one in force. The flow's
service task ``recipe.approve`` (``engine.quality.operations``) records the approval here,
after the engine checked who signed: author ≠ reviewer ≠ approvers, all QA.

Without an effective approval flow (a fresh installation) there is nobody's flow to run:
the bootstrap path is a direct e-signed approval by a QA person other than the author
(``approve``). Once a flow is effective, that direct path is refused.

A rejection returns the version to ``draft`` (its content is unchanged, so nothing is
edited): the author resubmits it, or imports a corrected version and retires this one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import audit
from .errors import Conflict, InvalidInput, NotFound
from .idempotency import Outcome, remember, replay
from .models import Batch, Job, RecipeVersion, utcnow
from .permissions import Forbidden
from .recipes import MAX_ROW_ID, RUNNABLE, describe, effective_version, promote
from .runtime import Runtime
from .users import Person
from .vocabulary import JobKind, RecipeStatus

APPROVAL_FLOW = "qa_recipe_approval"
SUBJECT = "recipe_version"
APPROVED_MEANING = "Approved"
#: retiring is QA approving the version's end of use
RETIRED_MEANING = "Approved"
MAX_COMMENT = 2000
MAX_PROCESS_ID = 100


def _version(s: Session, recipe_version_id: int, *, lock: bool = False) -> RecipeVersion:
    if not 0 < recipe_version_id <= MAX_ROW_ID:
        raise NotFound(f"recipe version {recipe_version_id} not found", code="recipe_not_found")
    stmt = select(RecipeVersion).where(RecipeVersion.id == recipe_version_id)
    rv = s.scalars(stmt.with_for_update() if lock else stmt).first()
    if rv is None:
        raise NotFound(f"recipe version {recipe_version_id} not found", code="recipe_not_found")
    return rv


def _ref(rv: RecipeVersion) -> str:
    return f"{rv.recipe}:{rv.version}"


def _move(s: Session, rv: RecipeVersion, old: tuple[str, ...], new: str) -> bool:
    """Change the status only if it is still one of ``old`` (two requests at once: one wins)."""
    done = s.execute(
        update(RecipeVersion)
        .where(RecipeVersion.id == rv.id, RecipeVersion.status.in_([str(x) for x in old]))
        .values(status=new)
        .execution_options(synchronize_session=False)
    )
    s.refresh(rv)
    return getattr(done, "rowcount", 0) == 1


def process_id_for(s: Session, rv: RecipeVersion) -> str:
    """``QP-RA-<recipe>-v<version>`` (``-2``, ``-3`` … when it is submitted again)."""
    earlier = s.scalar(
        select(func.count()).select_from(Batch).where(Batch.subject_type == SUBJECT, Batch.subject_id == str(rv.id))
    )
    n = int(earlier or 0) + 1
    name = f"QP-RA-{rv.recipe}-v{rv.version}" + (f"-{n}" if n > 1 else "")
    return name if len(name) <= MAX_PROCESS_ID else f"QP-RA-{rv.id}" + (f"-{n}" if n > 1 else "")


def submit(
    rt: Runtime, recipe_version_id: int, *, user: str, comment: str = "", idempotency_key: str | None = None
) -> dict[str, Any]:
    """Send a draft for review: it becomes ``in_review`` and the effective approval flow
    starts about it (through the job executor, once this commits). Without an effective
    flow, ``approval_process`` is None: a QA person approves it directly (``approve``)."""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidInput(f"comment is a text of at most {MAX_COMMENT} characters", code="comment_invalid")
    request = {"recipe_version": recipe_version_id, "comment": comment}
    scope = f"recipe.submit|user:{user}"
    with rt.transaction() as s:
        if idempotency_key:
            stored = replay(s, scope, idempotency_key, request)
            if stored is not None:
                return stored.body
        rv = _version(s, recipe_version_id, lock=True)
        if not _move(s, rv, (RecipeStatus.DRAFT,), RecipeStatus.IN_REVIEW):
            raise Conflict(
                f"version {rv.version} of {rv.recipe} is {rv.status}; only a draft can be submitted",
                code="recipe_not_draft",
                details={"status": rv.status},
            )
        flow = effective_version(s, APPROVAL_FLOW)
        process_id = None
        job: dict[str, Any] = {}
        if flow is not None:
            process_id = process_id_for(s, rv)
            job = {"flow": "recipe_approval", "recipe_version": rv.id, "version": flow.version, "process": process_id}
            s.add(
                Job(
                    kind=JobKind.START_QUALITY_PROCESS,
                    batch_id=None,
                    payload=job,
                    max_attempts=rt.settings.job_max_attempts,
                )
            )
        audit.record(
            s,
            user=user,
            action="recipe.submitted",
            object_type="recipe_version",
            object_id=_ref(rv),
            field="status",
            old=RecipeStatus.DRAFT,
            new={
                "status": RecipeStatus.IN_REVIEW,
                "content_hash": rv.content_hash,
                "approval_process": process_id,
                "approval_flow": f"{flow.recipe}:{flow.version}" if flow is not None else None,
            },
            reason=comment or None,
        )
        answer = {**describe(rv), "approval_process": process_id}
        if idempotency_key:
            remember(s, scope, idempotency_key, request, Outcome(200, answer))
    if job:
        _start_now(rt, job)
    return answer


def _start_now(rt: Runtime, payload: dict[str, Any]) -> None:
    """Start the approval process at once, so its tasks are there when the answer comes;
    the job scheduled with the submission starts it later if this fails (it does nothing
    when the process exists)."""
    from .quality.processes import start_scheduled

    try:
        start_scheduled(rt, None, None, payload)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the job retries, and ends as an incident with the reason
        return


def approval_parameters(rv: RecipeVersion) -> dict[str, Any]:
    """What the approval flow knows about its subject (shown in its tasks)."""
    return {
        "subject_recipe": rv.recipe,
        "subject_version": rv.version,
        "recipe_version_id": rv.id,
        "content_hash": rv.content_hash,
        "author": rv.created_by,
    }


def _effective_from(value: Any, now: datetime) -> datetime:
    """An effective date (ISO date or date-time, UTC) no earlier than now; default now."""
    if value in (None, ""):
        return now
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                f"effective_from {value!r} is not an ISO 8601 date", code="effective_from_invalid"
            ) from exc
    else:
        raise InvalidInput("effective_from is an ISO 8601 date", code="effective_from_invalid")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when, now)


def check_signers(rv: RecipeVersion, signers: list[Person]) -> None:
    """Author ≠ reviewer ≠ approvers, every one of them QA: the engine's rule, whatever
    a flow says. ``signers`` is in signing order (reviewer first)."""
    seen: set[str] = set()
    for p in signers:
        if "qa" not in p.roles:
            raise Forbidden(f"{p.username} is not QA: only QA approves a recipe", code="forbidden")
        if p.username == rv.created_by:
            raise Forbidden(
                f"{p.username} is the author of {rv.recipe} v{rv.version}: the author never approves it",
                code="author_cannot_approve",
            )
        if p.username in seen:
            raise Forbidden(
                f"{p.username} signed twice: reviewer and approvers are different people",
                code="same_person_twice",
            )
        seen.add(p.username)


def record_approval(
    s: Session,
    rv: RecipeVersion,
    *,
    signers: list[Person],
    meanings: list[str],
    reason: str,
    effective_from: Any = None,
    via: str | None = None,
) -> None:
    """Approve ``rv`` (checked signers, audited with printed names, meanings and content
    hash); it becomes effective at once unless its effective date is later."""
    check_signers(rv, signers)
    if not _move(s, rv, (RecipeStatus.DRAFT, RecipeStatus.IN_REVIEW), RecipeStatus.APPROVED):
        already = " already" if rv.status in RUNNABLE else ""
        raise Conflict(
            f"version {rv.version} of {rv.recipe} is{already} {rv.status}; only a draft or a version in review "
            "can be approved",
            code="recipe_not_draft",
            details={"status": rv.status},
        )
    now = utcnow()
    rv.effective_from = _effective_from(effective_from, now)
    rv.approved_by = [p.username for p in signers]
    rv.approved_at = now
    if rv.effective_from <= now:  # effective at approval: one audit entry says both
        rv.status = RecipeStatus.EFFECTIVE
    audit.record(
        s,
        user=signers[-1].username,
        action="recipe.approved",
        object_type="recipe_version",
        object_id=_ref(rv),
        field="status",
        old=RecipeStatus.IN_REVIEW if via else RecipeStatus.DRAFT,
        new={
            "status": rv.status,
            "content_hash": rv.content_hash,
            "effective_from": rv.effective_from.isoformat(),
            "signatures": [
                {"username": p.username, "printed_name": p.printed_name, "meaning": m}
                for p, m in zip(signers, meanings, strict=True)
            ],
            "via": via or "direct e-signature",
        },
        reason=reason,
    )
    s.flush()
    promote(s, rv.recipe, now)


def approve(
    rt: Runtime, recipe_version_id: int, *, signer: Person, reason: str, effective_from: Any = None
) -> RecipeVersion:
    """The bootstrap approval: one e-signature (*Approved*) by a QA person other than the
    author, allowed only while no approval flow is effective. The caller re-authenticated
    the signer (web / CLI)."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_COMMENT:
        raise InvalidInput("an approval needs a reason (at most 2000 characters)", code="reason_invalid")
    with rt.transaction() as s:
        rv = _version(s, recipe_version_id, lock=True)
        flow = effective_version(s, APPROVAL_FLOW)
        if flow is not None:
            raise Conflict(
                f"{APPROVAL_FLOW} v{flow.version} is effective: submit the version "
                f"(POST /api/recipes/{rv.id}/submit) and QA approves it in that flow",
                code="approval_flow_required",
                details={"approval_flow": f"{flow.recipe}:{flow.version}", "status": rv.status},
            )
        record_approval(
            s, rv, signers=[signer], meanings=[APPROVED_MEANING], reason=reason, effective_from=effective_from
        )
        return rv


def reject(s: Session, rv: RecipeVersion, *, signer: Person, reason: str, via: str) -> None:
    """The approval flow rejected the version: back to draft (content unchanged), audited."""
    if "qa" not in signer.roles:
        raise Forbidden(f"{signer.username} is not QA: only QA rejects a recipe", code="forbidden")
    if not _move(s, rv, (RecipeStatus.IN_REVIEW,), RecipeStatus.DRAFT):
        raise Conflict(
            f"version {rv.version} of {rv.recipe} is {rv.status}; only a version in review can be rejected",
            code="recipe_not_in_review",
            details={"status": rv.status},
        )
    audit.record(
        s,
        user=signer.username,
        action="recipe.rejected",
        object_type="recipe_version",
        object_id=_ref(rv),
        field="status",
        old=RecipeStatus.IN_REVIEW,
        new={"status": RecipeStatus.DRAFT, "printed_name": signer.printed_name, "via": via},
        reason=reason[:MAX_COMMENT],
    )


def retire(rt: Runtime, recipe_version_id: int, *, signer: Person, reason: str) -> RecipeVersion:
    """Retire a version, e-signed by QA: no new batch starts on it; running batches go on.
    Retiring the effective version leaves the recipe without one until another is approved."""
    if "qa" not in signer.roles:
        raise Forbidden("only QA retires a recipe version", code="forbidden")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_COMMENT:
        raise InvalidInput("retiring needs a reason (at most 2000 characters)", code="reason_invalid")
    with rt.transaction() as s:
        rv = _version(s, recipe_version_id, lock=True)
        old = rv.status
        others = tuple(x for x in RecipeStatus if x != RecipeStatus.RETIRED)
        if not _move(s, rv, others, RecipeStatus.RETIRED):
            raise Conflict("a retired recipe version cannot change status", code="recipe_retired")
        audit.record(
            s,
            user=signer.username,
            action="recipe.retired",
            object_type="recipe_version",
            object_id=_ref(rv),
            field="status",
            old=old,
            new={
                "status": RecipeStatus.RETIRED,
                "printed_name": signer.printed_name,
                "meaning": RETIRED_MEANING,
                "content_hash": rv.content_hash,
            },
            reason=reason,
        )
        return rv


def version_of_process(s: Session, process: Batch) -> RecipeVersion:
    if process.subject_type != SUBJECT or not str(process.subject_id or "").isdigit():
        raise NotFound(f"{process.batch_id} is not about a recipe version", code="recipe_not_found")
    return _version(s, int(str(process.subject_id)), lock=True)
