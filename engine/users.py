"""People and service accounts: argon2 passwords, lockout, API tokens.

21 CFR Part 11 §11.100 / §11.300: user ids are unique and never reused (accounts are
deactivated, not deleted); passwords are kept as argon2 hashes, so no one — admins
included — can read them; after ``lockout_attempts`` failures in a row the account is
locked, the lock is audited and an event alerts security; passwords age.

A failed attempt is committed in its own transaction before the error is raised, so the
failure count survives the request that failed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select

# ``sessions``: an account locked, deactivated or given a new password here loses its browser
# sessions in the same transaction (its flush rule)
from . import audit, outbox, sessions  # noqa: F401
from .errors import BatchlineError, Conflict, InvalidInput, NotFound
from .models import ApiToken, User, utcnow
from .runtime import Runtime

ROLES = ("operator", "supervisor", "qa", "admin", "service")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_HASHERS: dict[tuple[int, int], PasswordHasher] = {}


def _hasher(rt: Runtime) -> PasswordHasher:
    """argon2id with the configured cost (RFC 9106 defaults in production; tests may
    lower it, as they do not defend against offline guessing)."""
    key = (rt.settings.argon2_time_cost, rt.settings.argon2_memory_kib)
    if key not in _HASHERS:
        _HASHERS[key] = PasswordHasher(time_cost=key[0], memory_cost=key[1])
    return _HASHERS[key]


class AuthFailed(BatchlineError):
    code = "auth_failed"
    status = 401


@dataclass(frozen=True)
class Person:
    """Who is acting, as proven by a password or a token just now."""

    username: str
    printed_name: str
    roles: tuple[str, ...]
    kind: str = "person"

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def _person(u: User) -> Person:
    return Person(u.username, u.printed_name, tuple(u.roles or ()), u.kind)


as_person = _person


def describe(u: User) -> dict[str, Any]:
    return {
        "username": u.username,
        "printed_name": u.printed_name,
        "kind": u.kind,
        "roles": list(u.roles or []),
        "active": u.active,
        "locked": u.locked_at is not None,
        "created_at": u.created_at.isoformat(),
        "password_changed_at": u.password_changed_at.isoformat() if u.password_changed_at else None,
    }


def _check_password(rt: Runtime, password: Any, username: str) -> str:
    if not isinstance(password, str) or len(password) < rt.settings.password_min_length:
        raise InvalidInput(
            f"a password needs at least {rt.settings.password_min_length} characters", code="password_weak"
        )
    if len(password) > 200:
        raise InvalidInput("a password has at most 200 characters", code="password_weak")
    if username.lower() in password.lower():
        raise InvalidInput("a password must not contain the user id", code="password_weak")
    return _hasher(rt).hash(password)


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
    hashed = _check_password(rt, password, username) if password is not None else None
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


def _get(s, username: str) -> User:
    u = s.scalars(select(User).where(User.username == username)).first()
    if u is None:
        raise NotFound(f"user {username} not found", code="user_not_found")
    return u


def set_password(rt: Runtime, username: str, password: str, *, by: str) -> None:
    with rt.transaction() as s:
        u = _get(s, username)
        u.password_hash = _check_password(rt, password, username)
        u.password_changed_at = utcnow()
        u.failed_logins = 0
        u.locked_at = None
        audit.record(s, user=by, action="user.password_set", object_type="user", object_id=username)


def set_active(rt: Runtime, username: str, active: bool, *, by: str, reason: str) -> dict[str, Any]:
    with rt.transaction() as s:
        u = _get(s, username)
        audit.record(
            s,
            user=by,
            action="user.activate" if active else "user.deactivate",
            object_type="user",
            object_id=username,
            field="active",
            old=u.active,
            new=active,
            reason=reason,
        )
        u.active = active
        return describe(u)


def set_roles(rt: Runtime, username: str, roles: list[str], *, by: str, reason: str) -> dict[str, Any]:
    if not roles or any(r not in ROLES for r in roles):
        raise InvalidInput(f"roles must be some of {', '.join(ROLES)}", code="roles_invalid")
    with rt.transaction() as s:
        u = _get(s, username)
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


def unlock(rt: Runtime, username: str, *, by: str, reason: str) -> None:
    with rt.transaction() as s:
        u = _get(s, username)
        u.locked_at = None
        u.failed_logins = 0
        audit.record(s, user=by, action="user.unlock", object_type="user", object_id=username, reason=reason)


def list_users(rt: Runtime) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        return [describe(u) for u in s.scalars(select(User).order_by(User.username))]


def authenticate(rt: Runtime, username: Any, password: Any, *, purpose: str = "login") -> Person:
    """Check a user id and password (a login or a signature's re-authentication)."""
    generic = AuthFailed("user id or password is wrong")
    if (
        not isinstance(username, str)
        or not isinstance(password, str)
        or not username
        or len(username) > 100
        or len(password) > 200
    ):
        raise generic
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is None or u.password_hash is None:
            audit.record(
                s,
                user=username[:100],
                action=f"auth.{purpose}_failed",
                object_type="user",
                object_id=username[:100],
                reason="unknown user",
            )
            failure = generic
        elif not u.active:
            audit.record(
                s,
                user=username,
                action=f"auth.{purpose}_failed",
                object_type="user",
                object_id=username,
                reason="account deactivated",
            )
            failure = AuthFailed("this account is deactivated", code="account_inactive")
        elif u.locked_at is not None:
            audit.record(
                s,
                user=username,
                action=f"auth.{purpose}_failed",
                object_type="user",
                object_id=username,
                reason="account locked",
            )
            failure = AuthFailed(
                "this account is locked after repeated failures; ask an administrator", code="account_locked"
            )
        else:
            try:
                _hasher(rt).verify(u.password_hash, password)
                ok = True
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
            if ok:
                u.failed_logins = 0
                if purpose == "login":
                    audit.record(s, user=username, action="auth.login", object_type="user", object_id=username)
                age = utcnow() - (u.password_changed_at or u.created_at)
                if age > timedelta(days=rt.settings.password_max_age_days):
                    raise AuthFailed("your password has expired; set a new one", code="password_expired")
                return _person(u)
            u.failed_logins += 1
            audit.record(
                s,
                user=username,
                action=f"auth.{purpose}_failed",
                object_type="user",
                object_id=username,
                reason=f"wrong password ({u.failed_logins} in a row)",
            )
            failure = generic
            if u.failed_logins >= rt.settings.lockout_attempts:
                u.locked_at = utcnow()
                audit.record(
                    s,
                    user="system",
                    action="user.locked",
                    object_type="user",
                    object_id=username,
                    reason=f"{u.failed_logins} failed attempts",
                )
                outbox.emit(
                    s,
                    rt.settings,
                    "security.user_locked",
                    f"user/{username}",
                    {"username": username, "failed_attempts": u.failed_logins},
                )
                failure = AuthFailed(
                    "this account is now locked after repeated failures; ask an administrator", code="account_locked"
                )
    raise failure


def person(rt: Runtime, username: str) -> Person:
    """An active account by id (for a session that was authenticated earlier)."""
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is None or not u.active or u.locked_at is not None:
            raise AuthFailed("please log in again", code="auth_required")
        return _person(u)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(rt: Runtime, username: str, name: str, *, by: str) -> str:
    """A new API token; the token itself is shown only now, only its hash is stored."""
    token = "bl_" + secrets.token_urlsafe(32)
    with rt.transaction() as s:
        u = _get(s, username)
        s.add(ApiToken(user_id=u.id, name=name[:100], token_hash=_token_hash(token)))
        audit.record(s, user=by, action="token.create", object_type="user", object_id=username, new={"name": name})
    return token


def token_person(rt: Runtime, token: Any) -> Person:
    if not isinstance(token, str) or not token.startswith("bl_") or len(token) > 100:
        raise AuthFailed("the API token is not valid", code="token_invalid")
    with rt.transaction() as s:
        row = s.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _token_hash(token))
        ).first()
        if row is None or row.ApiToken.revoked_at is not None or not row.User.active or row.User.locked_at is not None:
            raise AuthFailed("the API token is not valid", code="token_invalid")
        return _person(row.User)


def revoke_tokens(rt: Runtime, username: str, *, by: str) -> int:
    with rt.transaction() as s:
        u = _get(s, username)
        n = 0
        for t in s.scalars(select(ApiToken).where(ApiToken.user_id == u.id, ApiToken.revoked_at.is_(None))):
            t.revoked_at = utcnow()
            n += 1
        audit.record(s, user=by, action="token.revoke", object_type="user", object_id=username, new={"revoked": n})
        return n
