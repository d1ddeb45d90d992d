"""Who is acting: a password checked just now (a login, a signature's re-authentication)
or an API token. Account administration is ``engine.accounts`` (its functions are
re-exported here: ``users.create_user`` and friends stay where callers look for them).

Every password check goes the same way, whatever asks (login page, API or UI
signature, CLI): first the rate limits (``engine.throttle``: 429 before any password is
checked), then the account — unknown, service, deactivated or locked accounts cost one
dummy argon2 verification, so the answer time does not tell which ids exist — then the
password. A failure is committed in its own transaction before the error is raised, so
the failure count (``engine.lockout``) survives the request that failed.

A person of the LDAP directory (``app_user.source == 'ldap'``), and an id Batchline does
not know while a directory is configured, is checked by ``engine.identity.ldap_signin``
under the same rules and with the same words (it uses ``count_wrong_password`` and
``count_throttle`` below); local accounts never go to the directory.

An id that does not exist is not written into the audit trail as a user id: it may be
anything, a password typed into the wrong field included. The attempt is recorded as
user ``unknown`` with a keyed fingerprint of the id (the same wrong id always gives the
same fingerprint, so an investigator can see one id tried a hundred times), its length
and the client address.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

# ``sessions``: an account locked, deactivated or given a new password loses its browser
# sessions in the same transaction (its flush rule)
from . import audit, lockout, passwords, sessions, throttle  # noqa: F401
from .accounts import (
    ROLES,
    USERNAME,
    create_user,
    describe,
    list_users,
    local_operator,
    reactivate,
    set_active,
    set_password,
    set_roles,
    unlock,
)
from .accounts import get as _get
from .errors import BatchlineError
from .models import ApiToken, User, utcnow
from .runtime import Runtime
from .throttle import TooManyAttempts

__all__ = [
    "ROLES",
    "USERNAME",
    "AuthFailed",
    "Person",
    "TooManyAttempts",
    "authenticate",
    "create_token",
    "create_user",
    "describe",
    "list_users",
    "local_operator",
    "person",
    "reactivate",
    "revoke_tokens",
    "set_active",
    "set_password",
    "set_roles",
    "token_person",
    "unlock",
]

UNKNOWN = "unknown"
_CLIENT_TEXT = re.compile(r"[^0-9A-Za-z.:_\-\[\]%@]")


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


def fingerprint(rt: Runtime, text: str) -> str:
    """A short keyed hash of an unknown user id: the same id gives the same fingerprint;
    without the server's key nobody can test guesses of what was typed against it."""
    key = (rt.settings.secret_key or "batchline").encode("utf-8")
    return hmac.new(key, text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:16]


def _from(client: str | None) -> str:
    return f" from {_CLIENT_TEXT.sub('?', client)[:100]}" if client else ""


def _failed(
    rt: Runtime, s: Session, u: User | None, name: str, secret: str, purpose: str, client: str | None, now: datetime
) -> AuthFailed:
    """An attempt on an account whose password is not checked (unknown id, service
    account, deactivated, locked): spend what a check costs, audit it, return the error."""
    generic = AuthFailed("user id or password is wrong")
    where = _from(client)
    action = f"auth.{purpose}_failed"
    if u is None:
        passwords.dummy_verify(rt, secret)
        audit.record(
            s,
            user=UNKNOWN,
            action=action,
            object_type="user",
            object_id=UNKNOWN,
            reason=f"unknown user id (fingerprint {fingerprint(rt, name)}, {len(name)} characters){where}",
        )
        return generic
    if u.password_hash is None and u.source != "ldap":
        passwords.dummy_verify(rt, secret)
        why, failure = "account has no password (service account)", generic
    elif not u.active:
        passwords.dummy_verify(rt, secret)
        why, failure = "account deactivated", AuthFailed("this account is deactivated", code="account_inactive")
    elif lockout.is_locked(u, now):
        passwords.dummy_verify(rt, secret)  # no password is checked while locked: no guessing
        why = "account locked"
        failure = AuthFailed(lockout.locked_message(u), code="account_locked", details=_lock_details(u))
    else:
        raise AssertionError("a password to check")  # pragma: no cover - the caller checks first
    audit.record(s, user=u.username, action=action, object_type="user", object_id=u.username, reason=why + where)
    return failure


def _lock_details(u: User) -> dict[str, Any]:
    return {"locked_until": u.locked_until.isoformat() if u.locked_until else None}


def authenticate(
    rt: Runtime, username: Any, password: Any, *, purpose: str = "login", client: str | None = None
) -> Person:
    """Check a user id and password (a login or a signature's re-authentication);
    ``client`` is the caller's address (the web's remote address, the CLI's host) for
    the per-address rate limit and the audit trail."""
    name = username if isinstance(username, str) else ""
    secret = password if isinstance(password, str) else ""
    if len(secret) > passwords.MAX_LENGTH:
        secret = secret[: passwords.MAX_LENGTH] + "\x00"  # cannot match; costs one verification
    if _by_directory(rt, name):
        from .identity import ldap_signin  # the directory's people (it builds on this module)

        return ldap_signin.authenticate(rt, name, secret, purpose=purpose, client=client)
    now = utcnow()
    with rt.transaction() as s:
        throttle.check(s, rt.settings, client, name)
        u = s.scalars(select(User).where(User.username == name)).first() if 0 < len(name) <= 100 else None
        if u is not None:
            lockout.release_if_over(s, u, now)
        if u is not None and u.password_hash is not None and u.active and not lockout.is_locked(u, now):
            if passwords.verify(rt, u.password_hash, secret):
                if passwords.expired(rt, u):
                    raise AuthFailed("your password has expired; set a new one", code="password_expired")
                lockout.succeeded(u)
                throttle.forget_account(s, u.username)  # like the lockout count: the account's own starts again
                if purpose == "login":
                    audit.record(s, user=u.username, action="auth.login", object_type="user", object_id=u.username)
                return _person(u)
            failure = count_wrong_password(rt, s, u, purpose, client, now)
        else:
            failure = _failed(rt, s, u, name, secret, purpose, client, now)
        count_throttle(rt, s, client, name, u)
    raise failure


def count_wrong_password(
    rt: Runtime, s: Session, u: User, purpose: str, client: str | None, now: datetime
) -> AuthFailed:
    """A wrong password for an account (local or directory): counted toward its lockout
    and audited; the error to raise."""
    locked_now = lockout.count_failure(rt, s, u, now)
    audit.record(
        s,
        user=u.username,
        action=f"auth.{purpose}_failed",
        object_type="user",
        object_id=u.username,
        reason=f"wrong password ({u.failed_logins} in a row){_from(client)}",
    )
    if locked_now:
        return AuthFailed(lockout.locked_message(u, now_locked=True), code="account_locked", details=_lock_details(u))
    return AuthFailed("user id or password is wrong")


def count_throttle(rt: Runtime, s: Session, client: str | None, name: str, u: User | None) -> None:
    """One failed attempt for the rate limits; a limit reached just now is audited."""
    for key in throttle.failed(s, rt.settings, client, name):
        audit.record(
            s,
            user="system",
            action="auth.throttled",
            object_type="user",
            object_id=u.username if u is not None and key.startswith("account:") else UNKNOWN,
            field=key.split(":", 1)[0],
            reason=f"rate limit reached{_from(client)}; further attempts are refused for "
            f"{rt.settings.throttle_window_seconds} seconds",
        )


def _by_directory(rt: Runtime, name: str) -> bool:
    """A directory person's id, or an id Batchline does not know while a directory is
    configured (a first sign-in): the directory checks the password. A local account
    never goes there, so service accounts and break-glass administrators keep working
    when the directory is down."""
    if not 0 < len(name) <= 100:
        return False
    if not USERNAME.fullmatch(name):  # no account has such an id; refused there, the directory not asked
        return bool(rt.settings.ldap_url)
    with rt.transaction() as s:
        source = s.scalar(select(User.source).where(User.username == name))
    if source is not None:
        return source == "ldap"
    return bool(rt.settings.ldap_url)


def person(rt: Runtime, username: str) -> Person:
    """An active account by id (for a session that was authenticated earlier)."""
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is None or not u.active or lockout.is_locked(u, utcnow()):
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
    """The owner of an API token. A locked or deactivated owner's tokens stop working;
    so do a person's tokens once their password has expired, until it is changed (a
    token must not outlive the password ageing rule)."""
    if not isinstance(token, str) or not token.startswith("bl_") or len(token) > 100:
        raise AuthFailed("the API token is not valid", code="token_invalid")
    with rt.transaction() as s:
        row = s.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _token_hash(token))
        ).first()
        if (
            row is None
            or row.ApiToken.revoked_at is not None
            or not row.User.active
            or lockout.is_locked(row.User, utcnow())
        ):
            raise AuthFailed("the API token is not valid", code="token_invalid")
        if passwords.expired(rt, row.User):
            raise AuthFailed(
                f"the password of {row.User.username} has expired; the account's tokens work again once it is changed",
                code="password_expired",
            )
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
