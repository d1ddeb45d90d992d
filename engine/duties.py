"""Separation of duties, in one place: who may complete a task, sign it with a meaning,
witness it, and correct what was recorded (21 CFR 11.10(g), EU GMP Annex 11 §12).

The endpoint permissions (``permissions.MATRIX``: ``task.complete``, ``step.correct``)
only say that a role completes or corrects *some* task. Which task is decided here, by
the task's own role (its ``role`` property or lane, ``batches.tasks.task_role``) and the
signature meaning its form names (``signatureMeaning``), from the two tables in
``engine.permissions``: ``TASK_COMPLETERS`` and ``MEANING_ROLES``.

The rule is one intersection: a person acts in a role they hold that may complete the
task's role AND may give the meaning. So a supervisor stands in for an operator but never
for QA, and a person holding both operator and qa does not sign "Released" on an operator
task. The step path, corrections, reassignment and the screens all call these functions;
nothing else decides it.

A task may also need qualifications (its ``qual`` property, ``engine.qualifications``): a
person without a current one neither performs nor witnesses it, whatever their roles.
That is checked by date at every step, before anyone's password (``check_qualified``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Protocol

from sqlalchemy.orm import Session

from . import qualifications
from .permissions import MEANING_ROLES, TASK_COMPLETERS, TASK_WITNESSES, Forbidden

#: the role a witness needs when the form names none
DEFAULT_WITNESS_ROLES = frozenset({"operator", "supervisor", "qa"})
WITNESS_MEANING = "Verified"
CORRECTION_MEANING = "Corrected"


class HasRoles(Protocol):
    @property
    def roles(self) -> tuple[str, ...]: ...


def _roles(person: HasRoles) -> set[str]:
    return {str(r) for r in (person.roles or ())}


def completers(task_role: str) -> frozenset[str]:
    """The roles that may complete a task of ``task_role`` (none for an unknown role)."""
    return TASK_COMPLETERS.get((task_role or "").strip().lower(), frozenset())


def signing_roles(meaning: str, task_role: str) -> frozenset[str]:
    """The roles that may sign ``meaning`` on a task of ``task_role``."""
    return completers(task_role) & MEANING_ROLES.get(meaning, frozenset())


def may_complete(person: HasRoles, task_role: str) -> bool:
    return bool(_roles(person) & completers(task_role))


def may_sign(person: HasRoles, meaning: str, task_role: str) -> bool:
    """As the performer: the task's role and the meaning's role, held as one role."""
    return bool(_roles(person) & signing_roles(meaning, task_role))


def witness_roles(witness_role: str | None, task_role: str) -> frozenset[str]:
    """Who may witness a task of ``task_role`` where the form names ``witness_role``:
    that role (any of operator, supervisor, qa when none is named), if it may witness
    such a task at all (never admin or service; only QA on a QA task)."""
    named = (witness_role or "").strip().lower()
    allowed = frozenset({named}) if named else DEFAULT_WITNESS_ROLES
    task_witnesses = TASK_WITNESSES.get((task_role or "").strip().lower(), frozenset())
    return allowed & task_witnesses & MEANING_ROLES[WITNESS_MEANING]


def may_witness(person: HasRoles, witness_role: str | None, task_role: str) -> bool:
    return bool(_roles(person) & witness_roles(witness_role, task_role))


def correcting_roles(task_role: str, signed_meanings: Iterable[str]) -> frozenset[str]:
    """The roles that may correct a recorded step: the roles that may complete its task
    and give every meaning its performer signed (a QA "Released" step needs qa), and
    "Corrected" itself."""
    allowed = completers(task_role) & MEANING_ROLES[CORRECTION_MEANING]
    for meaning in signed_meanings:
        allowed &= MEANING_ROLES.get(meaning, frozenset())
    return allowed


def may_correct(person: HasRoles, task_role: str, signed_meanings: Iterable[str] = ()) -> bool:
    return bool(_roles(person) & correcting_roles(task_role, signed_meanings))


def why_not_complete(person: HasRoles, task_role: str, meaning: str | None = None) -> str | None:
    """Why ``person`` cannot complete (and sign) the task, in words; None when they can.
    For screens that explain before the engine refuses."""
    if not may_complete(person, task_role):
        return f"This task is for the {task_role} role ({_listed(completers(task_role))} may complete it)."
    if meaning is not None and not may_sign(person, meaning, task_role):
        return f"Signing it as {meaning!r} needs the role {_listed(signing_roles(meaning, task_role))}."
    return None


# --- the engine's checks: refusals with stable codes -----------------------------------


def _listed(roles: Iterable[str]) -> str:
    names = sorted(roles)
    return " or ".join(names) if names else "nobody"


def check_complete(person: HasRoles, task_role: str, *, username: str = "") -> None:
    if not may_complete(person, task_role):
        allowed = completers(task_role)
        raise Forbidden(
            f"{username or 'this person'} may not complete this task: it is for the {task_role} role"
            f" (completed by {_listed(allowed)})",
            code="task_role",
            details={"role": task_role, "roles": sorted(allowed)},
        )


def check_sign(person: HasRoles, meaning: str, task_role: str) -> None:
    if not may_sign(person, meaning, task_role):
        allowed = signing_roles(meaning, task_role)
        raise Forbidden(
            f"a {meaning!r} signature on a {task_role} task needs the role {_listed(allowed)}",
            code="meaning_role",
            details={"meaning": meaning, "role": task_role, "roles": sorted(allowed)},
        )


def check_witness(person: HasRoles, witness_role: str | None, task_role: str) -> None:
    if not may_witness(person, witness_role, task_role):
        allowed = witness_roles(witness_role, task_role)
        raise Forbidden(
            f"the witness needs the role {_listed(allowed)}",
            code="witness_role",
            details={"roles": sorted(allowed)},
        )


def check_correct(person: HasRoles, task_role: str, signed_meanings: Iterable[str]) -> None:
    meanings = sorted(set(signed_meanings))
    allowed = correcting_roles(task_role, meanings)
    if not _roles(person) & allowed:
        raise Forbidden(
            f"correcting this {task_role} step{' signed ' + ', '.join(meanings) if meanings else ''}"
            f" needs the role {_listed(allowed)}",
            code="correction_role",
            details={"role": task_role, "meanings": meanings, "roles": sorted(allowed)},
        )


# --- qualifications (training, 21 CFR 11.10(i)) -----------------------------------------


def missing_qualifications(
    held: Mapping[str, qualifications.Held], needed: Iterable[str], on: date
) -> list[dict[str, str | None]]:
    """Each qualification of ``needed`` not current on ``on``: its name, why (``missing``,
    ``expired``, ``revoked``) and the date it expired."""
    out: list[dict[str, str | None]] = []
    for name in needed:
        state = held.get(name)
        if state is not None and state.current_on(on):
            continue
        status = "missing" if state is None else ("revoked" if state.revoked else "expired")
        until = state.valid_until.isoformat() if state is not None and state.valid_until else None
        out.append({"qualification": name, "status": status, "valid_until": until})
    return out


def describe_missing(item: Mapping[str, str | None]) -> str:
    if item["status"] == "expired":
        return f"needs {item['qualification']} (expired {item['valid_until']})"
    if item["status"] == "revoked":
        return f"needs {item['qualification']} (revoked)"
    return f"needs {item['qualification']} (not held)"


def why_unqualified(s: Session, username: str, needed: Iterable[str], on: date | None = None) -> str | None:
    """Why ``username`` lacks a qualification the task needs, in words (``needs
    aseptic-gowning (expired 2026-11-30)``); None when they hold every one today."""
    needed = tuple(needed)
    if not needed:
        return None
    missing = missing_qualifications(qualifications.held(s, username), needed, on or qualifications.today())
    return "; ".join(describe_missing(m) for m in missing) or None


def check_qualified(
    s: Session, username: str, needed: Iterable[str], *, as_witness: bool = False, on: date | None = None
) -> None:
    """403 ``qualification_missing`` unless ``username`` holds every qualification in
    ``needed`` on ``on`` (today): asked at every step, before any password is."""
    needed = tuple(needed)
    if not needed:
        return
    missing = missing_qualifications(qualifications.held(s, username), needed, on or qualifications.today())
    if missing:
        first = missing[0]
        what = "witness" if as_witness else "perform"
        raise Forbidden(
            f"{username} may not {what} this task: it {'; '.join(describe_missing(m) for m in missing)}",
            code="qualification_missing",
            details={
                "username": username,
                "as": "witness" if as_witness else "performer",
                "qualification": first["qualification"],
                "status": first["status"],
                "valid_until": first["valid_until"],
                "missing": missing,
            },
        )
