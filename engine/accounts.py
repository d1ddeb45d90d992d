"""Account administration: creating people and service accounts, passwords, roles,
deactivation and reactivation, unlocking.

21 CFR Part 11 §11.100 / §11.300: user ids are unique and never reused (accounts are
deactivated, never deleted, and can be reactivated); passwords are kept as argon2
hashes only (``engine.passwords``). Two rules keep the plant administrable: the last
active administrator can be neither deactivated nor stripped of the admin role
(``last_admin``), and the server's operator — someone with the server's database, not
a login — can unlock an account (``unlock(local=True)``, the break-glass path of
``batchline user unlock --local``), audited as that operator.
"""

from __future__ import annotations

import getpass
import re
import socket
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, lockout, passwords, throttle
from .db import row_locks
from .errors import Conflict, InvalidInput, NotFound
from .models import User, utcnow
from .runtime import Runtime

ROLES = ("operator", "supervisor", "qa", "admin", "service", "trainer", "maintenance")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def describe(u: User) -> dict[str, Any]:
    locked = lockout.is_locked(u, utcnow())
    return {
        "username": u.username,
        "printed_name": u.printed_name,
        "kind": u.kind,
        "roles": list(u.roles or []),
        "active": u.active,
        "locked": locked,
        "locked_until": u.locked_until.isoformat() if locked and u.locked_until else None,
        "created_at": u.created_at.isoformat(),
        "password_changed_at": u.password_changed_at.isoformat() if u.password_changed_at else None,
    }


def local_operator() -> str:
    """Who acts on the break-glass path: the operating-system user on this server."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): still say it was local
        who = "unknown"
    return f"local-operator:{who}@{socket.gethostname()}"[:200]


def _require_reason(reason: Any, what: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"give the reason for {what}", code="reason_required")
    return reason.strip()


def create_user(
    rt: Runtime,
    username: str,
    printed_name: str,
    roles: list[str],
    *,
    by: str,
    password: str | None = None,
    kind: str = "person",
) -> dict[str, Any]:
    if not isinstance(username, str) or not USERNAME.match(username):
        raise InvalidInput(
            "a user id is 2-64 characters: lower-case letters, digits, '.', '_' or '-'", code="username_invalid"
        )
    if not isinstance(printed_name, str) or not printed_name.strip() or len(printed_name) > 200:
        raise InvalidInput(
            "the printed name is required (it is shown with every signature)", code="printed_name_invalid"
        )
    if not isinstance(roles, (list, tuple)) or not roles or any(r not in ROLES for r in roles):
        raise InvalidInput(f"roles must be some of {', '.join(ROLES)}", code="roles_invalid")
    if kind not in ("person", "service"):
        raise InvalidInput("kind is person or service", code="kind_invalid")
    if kind == "person" and password is None:
        raise InvalidInput("a person needs a password", code="password_weak")
    hashed = passwords.new_hash(rt, password, username) if password is not None else None
    with rt.transaction() as s:
        if s.scalars(select(User.id).where(User.username == username)).first() is not None:
            raise Conflict(f"user id {username} exists (ids are never reused)", code="user_exists")
        u = User(
            username=username,
            printed_name=printed_name.strip(),
            roles=list(dict.fromkeys(roles)),
            kind=kind,
            password_hash=hashed,
            password_changed_at=utcnow() if hashed else None,
            created_by=by,
        )
        s.add(u)
        s.flush()
        audit.record(
            s,
            user=by,
            action="user.create",
            object_type="user",
            object_id=username,
            new={"roles": list(roles), "kind": kind, "printed_name": printed_name},
        )
        return describe(u)


def get(s: Session, username: str) -> User:
    u = s.scalars(select(User).where(User.username == username)).first()
    if u is None:
        raise NotFound(f"user {username} not found", code="user_not_found")
    return u


def _other_active_admins(s: Session, u: User) -> int:
    """Active people holding the admin role besides ``u``, their rows locked (PostgreSQL)
    so two administrators cannot deactivate each other at the same moment."""
    stmt = select(User).where(User.active.is_(True), User.kind == "person", User.id != u.id)
    if row_locks(s):
        stmt = stmt.with_for_update()
    return sum(1 for other in s.scalars(stmt) if "admin" in (other.roles or []))


def _keep_an_admin(s: Session, u: User, what: str) -> None:
    if u.active and "admin" in (u.roles or []) and _other_active_admins(s, u) == 0:
        raise Conflict(
            f"{u.username} is the last active administrator and cannot be {what}; "
            "give another person the admin role first",
            code="last_admin",
        )


def set_password(rt: Runtime, username: str, password: str, *, by: str) -> None:
    with rt.transaction() as s:
        u = get(s, username)
        u.password_hash = passwords.new_hash(rt, password, username)
        u.password_changed_at = utcnow()
        lockout.unlock(u)
        throttle.forget_account(s, username)
        audit.record(s, user=by, action="user.password_set", object_type="user", object_id=username)


def set_active(rt: Runtime, username: str, active: bool, *, by: str, reason: str) -> dict[str, Any]:
    """Deactivate (``active=False``; the id stays taken) or reactivate an account."""
    reason = _require_reason(reason, "deactivating an account" if not active else "reactivating an account")
    with rt.transaction() as s:
        u = get(s, username)
        if active and u.active:
            raise Conflict(f"{username} is active already", code="user_active")
        if not active:
            _keep_an_admin(s, u, "deactivated")
        audit.record(
            s,
            user=by,
            action="user.reactivate" if active else "user.deactivate",
            object_type="user",
            object_id=username,
            field="active",
            old=u.active,
            new=active,
            reason=reason,
        )
        u.active = active
        if active:
            u.failed_logins = 0
        return describe(u)


def reactivate(rt: Runtime, username: str, *, by: str, reason: str) -> dict[str, Any]:
    """A deactivated account works again, under its old id (ids are never reused)."""
    return set_active(rt, username, True, by=by, reason=reason)


def set_roles(rt: Runtime, username: str, roles: list[str], *, by: str, reason: str) -> dict[str, Any]:
    if not roles or any(r not in ROLES for r in roles):
        raise InvalidInput(f"roles must be some of {', '.join(ROLES)}", code="roles_invalid")
    with rt.transaction() as s:
        u = get(s, username)
        if "admin" not in roles:
            _keep_an_admin(s, u, "stripped of the admin role")
        audit.record(
            s,
            user=by,
            action="user.roles",
            object_type="user",
            object_id=username,
            field="roles",
            old=u.roles,
            new=list(roles),
            reason=reason,
        )
        u.roles = list(dict.fromkeys(roles))
        return describe(u)


def unlock(rt: Runtime, username: str, *, by: str | None = None, reason: str, local: bool = False) -> dict[str, Any]:
    """Lift a lock at once. ``local``: the break-glass path of the server's operator
    (database access, no login), recorded as ``local_operator()``."""
    reason = _require_reason(reason, "unlocking an account")
    actor = local_operator() if local else by
    if not actor:
        raise InvalidInput("say who unlocks the account", code="auth_required")
    with rt.transaction() as s:
        u = get(s, username)
        was = {"locked": lockout.is_locked(u, utcnow()), "failed_logins": u.failed_logins}
        lockout.unlock(u)
        throttle.forget_account(s, username)
        audit.record(
            s,
            user=actor,
            action="user.unlock",
            object_type="user",
            object_id=username,
            old=was,
            new={"locked": False, "break_glass": local},
            reason=reason,
        )
        return describe(u)


def list_users(rt: Runtime) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        return [describe(u) for u in s.scalars(select(User).order_by(User.username))]
