"""People's qualifications (training records, 21 CFR 11.10(i)): who is trained for what,
until when — and so who may perform or witness a task that needs it.

A grant (a qualification valid until a date) and a revocation are each one e-signed,
append-only ``qualification`` row bound into the audit trail; nothing is ever changed.
A person's current state of one qualification is its newest row: a renewal is a new grant,
a revocation ends it at once. A grant is *current* through its ``valid_until`` day (UTC)
and not after: the engine asks at every step (``engine.duties.check_qualified``), so one
that expires while a batch runs stops that person at their next step, not mid-signature.

Recorded by QA or a trainer (never by the person about themself), re-authenticated by the
caller just before (the signer's password), with the meaning *Qualified* or *Revoked*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .bpmn.properties import QUAL_NAME
from .db import row_locks
from .errors import Conflict, InvalidInput, NotFound
from .idempotency import Outcome, remember, replay
from .models import Qualification, User, utcnow
from .permissions import Forbidden
from .runtime import Runtime
from .users import Person
from .workflow_store import canonical, sha256

#: a qualification's name, as a task's ``qual`` property names it
NAME = QUAL_NAME
#: the roles that record qualifications (besides being someone else than the trainee)
RECORDERS = frozenset({"qa", "trainer"})
GRANTED_MEANING = "Qualified"
REVOKED_MEANING = "Revoked"
MAX_REASON = 2000
#: no training is good for longer than this without a renewal
MAX_VALIDITY = timedelta(days=3660)


def today() -> date:
    """The date a qualification is checked against (UTC). One function, so a test can
    move the clock past an expiry date."""
    return datetime.now(UTC).date()


def check_name(value: Any) -> str:
    """A qualification name as stored; InvalidInput saying what is wrong otherwise."""
    if not isinstance(value, str) or not NAME.match(value.strip()):
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"qualification {shown!r} is not a name of lower-case letters, digits, - . or _ "
            "(at most 64, e.g. aseptic-gowning)",
            code="qualification_invalid",
        )
    return value.strip()


def _valid_until(value: Any, on: date) -> date:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str) and len(value) <= 10:
        try:
            value = date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, date):
        raise InvalidInput("valid_until must be a date (YYYY-MM-DD)", code="valid_until_invalid")
    if value < on:
        raise InvalidInput(f"valid_until {value.isoformat()} is in the past", code="valid_until_invalid")
    if value > on + MAX_VALIDITY:
        raise InvalidInput(
            "valid_until is more than ten years away: renew training instead", code="valid_until_invalid"
        )
    return value


def _reason(value: Any, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("reason is a text", code="reason_invalid")
    if len(value) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters", code="reason_invalid")
    if required and not value.strip():
        raise InvalidInput("a revocation needs its reason", code="reason_required")
    return value.strip()


@dataclass(frozen=True)
class Held:
    """A person's current state of one qualification."""

    qualification: str
    valid_until: date | None  # None: revoked
    revoked: bool

    def current_on(self, on: date) -> bool:
        return not self.revoked and self.valid_until is not None and on <= self.valid_until


def held(s: Session, username: str) -> dict[str, Held]:
    """Qualification -> its newest row's state, for one person."""
    out: dict[str, Held] = {}
    rows = s.scalars(select(Qualification).where(Qualification.username == username).order_by(Qualification.id))
    for row in rows:
        out[row.qualification] = Held(row.qualification, row.valid_until, row.revoked_at is not None)
    return out


def _person_account(s: Session, username: Any, *, lock: bool = False) -> User:
    """The account, locked with ``lock`` (PostgreSQL; SQLite's writer is alone already):
    two grants for one person, a replay among them, are answered one after the other."""
    if not isinstance(username, str) or not 0 < len(username) <= 100:
        raise NotFound("user not found", code="user_not_found")
    stmt = select(User).where(User.username == username)
    if lock and row_locks(s):
        stmt = stmt.with_for_update()
    account = s.scalars(stmt).first()
    if account is None:
        raise NotFound(f"user {username!r} not found", code="user_not_found")
    return account


def _check_recorder(signer: Person, username: str) -> None:
    if not set(signer.roles or ()) & RECORDERS:
        raise Forbidden(
            "only QA or a trainer records qualifications", code="forbidden", details={"roles": sorted(RECORDERS)}
        )
    if signer.username == username:
        raise Forbidden("nobody records their own qualification", code="self_qualification")


def check_recordable(rt: Runtime, username: Any, signer: Person) -> None:
    """What a grant or revocation is refused for before anyone's password is read: a
    signer who is not QA or a trainer, their own record, a person who does not exist."""
    _check_recorder(signer, str(username))
    with rt.transaction() as s:
        account = _person_account(s, username)
        if account.kind != "person":
            raise Conflict("a service account holds no qualifications", code="not_a_person")


def describe(row: Qualification, on: date | None = None) -> dict[str, Any]:
    on = on or today()
    return {
        "id": row.id,
        "username": row.username,
        "qualification": row.qualification,
        "action": "revoked" if row.revoked_at is not None else "granted",
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "reason": row.reason,
        "granted_by": row.granted_by,
        "printed_name": row.printed_name,
        "meaning": row.meaning,
        "signed_at": row.signed_at.isoformat(),
        "content_hash": row.content_hash,
    }


def _current(rows: list[Qualification], on: date) -> list[dict[str, Any]]:
    newest: dict[str, Qualification] = {}
    for row in rows:
        newest[row.qualification] = row
    out = []
    for name in sorted(newest):
        row = newest[name]
        state = Held(name, row.valid_until, row.revoked_at is not None)
        status = "revoked" if state.revoked else ("current" if state.current_on(on) else "expired")
        out.append(
            {
                "qualification": name,
                "status": status,
                "current": status == "current",
                "valid_until": row.valid_until.isoformat() if row.valid_until else None,
                "granted_by": row.granted_by,
                "signed_at": row.signed_at.isoformat(),
            }
        )
    return out


def list_for(rt: Runtime, username: str) -> dict[str, Any]:
    """A person's qualifications now (one line each) and the whole signed history."""
    on = today()
    with rt.transaction() as s:
        account = _person_account(s, username)
        rows = list(
            s.scalars(
                select(Qualification).where(Qualification.username == account.username).order_by(Qualification.id)
            )
        )
        return {
            "username": account.username,
            "printed_name": account.printed_name,
            "on": on.isoformat(),
            "qualifications": _current(rows, on),
            "history": [describe(r, on) for r in rows],
        }


def people_holding(rt: Runtime) -> list[dict[str, Any]]:
    """Every person with any qualification record, with their current lines (the page)."""
    on = today()
    with rt.transaction() as s:
        rows = list(s.scalars(select(Qualification).order_by(Qualification.id)))
    by_person: dict[str, list[Qualification]] = {}
    for row in rows:
        by_person.setdefault(row.username, []).append(row)
    return [{"username": u, "qualifications": _current(r, on)} for u, r in sorted(by_person.items())]


def grant(
    rt: Runtime,
    username: str,
    qualification: Any,
    valid_until: Any,
    *,
    signer: Person,
    reason: Any = "",
    idempotency_key: str | None = None,
) -> Outcome:
    """Record that ``username`` holds ``qualification`` until ``valid_until`` (a renewal
    is another grant), e-signed *Qualified* by QA or a trainer who is not ``username``."""
    on = today()
    name = check_name(qualification)
    until = _valid_until(valid_until, on)
    text = _reason(reason, required=False)
    _check_recorder(signer, username)
    request = {"do": "grant", "username": username, "qualification": name, "valid_until": until.isoformat()}
    request["reason"] = text
    return _write(rt, username, request, signer, idempotency_key, name, until, text)


def revoke(
    rt: Runtime,
    username: str,
    qualification: Any,
    *,
    signer: Person,
    reason: Any,
    idempotency_key: str | None = None,
) -> Outcome:
    """End ``username``'s ``qualification`` now, e-signed *Revoked*, with the reason."""
    name = check_name(qualification)
    text = _reason(reason, required=True)
    _check_recorder(signer, username)
    request = {"do": "revoke", "username": username, "qualification": name, "reason": text}
    return _write(rt, username, request, signer, idempotency_key, name, None, text)


def _write(
    rt: Runtime,
    username: str,
    request: dict[str, Any],
    signer: Person,
    key: str | None,
    name: str,
    until: date | None,
    text: str,
) -> Outcome:
    scope = f"qualification:{username}|user:{signer.username}"
    with rt.transaction() as s:
        account = _person_account(s, username, lock=True)
        if key:
            stored = replay(s, scope, key, request)
            if stored is not None:
                return stored
        if account.kind != "person":
            raise Conflict("a service account holds no qualifications", code="not_a_person")
        now = utcnow()
        if until is None:
            state = held(s, account.username).get(name)
            if state is None or state.revoked:
                raise Conflict(
                    f"{account.username} holds no {name} to revoke",
                    code="qualification_not_held",
                    details={"qualification": name},
                )
        meaning = GRANTED_MEANING if until is not None else REVOKED_MEANING
        signed = {**request, "meaning": meaning, "by": signer.username, "at": now.isoformat()}
        row = Qualification(
            username=account.username,
            qualification=name,
            valid_until=until,
            revoked_at=None if until is not None else now,
            reason=text,
            granted_by=signer.username,
            printed_name=signer.printed_name,
            meaning=meaning,
            signed_at=now,
            content_hash=sha256(canonical(signed)),
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            user=signer.username,
            action="qualification.grant" if until is not None else "qualification.revoke",
            object_type="person",
            object_id=account.username,
            field=name,
            old=None,
            new={
                "valid_until": until.isoformat() if until else None,
                "meaning": meaning,
                "printed_name": signer.printed_name,
            },
            reason=text or None,
            binds=[row],
        )
        outcome = Outcome(201 if until is not None else 200, describe(row))
        if key:
            remember(s, scope, key, request, outcome)
        return outcome
