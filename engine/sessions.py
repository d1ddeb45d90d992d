"""Browser sessions held on the server: the one home of the session rules.

Why on the server: a signed cookie alone cannot be taken back. Logging out only asked
the browser to forget it, so a copied cookie kept working, and a deactivated person's
cookie stayed valid until the timeout. Now the cookie carries a random token and the
``login_session`` row (keyed by the token's SHA-256, so a copy of the table is no key)
says whether the session is alive:

- ``open_session`` after a successful login (a fresh token each time: no fixation);
- ``resume`` on every request: the row must exist, not be revoked, have seen a request
  within ``session_timeout_minutes`` (§11.200: then signing needs id + password again),
  and its person must be active and not locked; it moves ``last_seen_at``;
- ``end`` at logout;
- every session of an account ends in the same transaction that deactivates it, locks it
  or gives it a new password, whichever code does that (``users.set_active``, the lockout
  in ``users.authenticate``, ``users.set_password``): a flush rule on ``app_user`` calls
  ``revoke_all``. A revoked session never comes back, whatever the cookie says.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from . import audit, lockout, users
from .models import LoginSession, User, utcnow
from .runtime import Runtime
from .vocabulary import SessionEnd

TOKEN_BYTES = 32


class SessionEnded(Exception):
    """The session is over; ``reason`` is a ``SessionEnd`` or None (unknown token)."""

    def __init__(self, reason: SessionEnd | None, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _valid_token(token: Any) -> bool:
    return isinstance(token, str) and 20 <= len(token) <= 100


def open_session(rt: Runtime, username: str) -> str:
    """A new session for ``username`` (just authenticated); returns the cookie's token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with rt.transaction() as s:
        user_id = s.scalars(select(User.id).where(User.username == username)).one()
        now = utcnow()
        s.add(LoginSession(id=_hash(token), user_id=user_id, created_at=now, last_seen_at=now))
    return token


def resume(rt: Runtime, token: Any) -> users.Person:
    """The person of a live session, after moving its last-seen time; else ``SessionEnded``."""
    timeout = timedelta(minutes=rt.settings.session_timeout_minutes)
    ended = SessionEnded(None, "please log in again")
    if not _valid_token(token):
        raise ended
    with rt.transaction() as s:
        row = s.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.id == _hash(token))
        ).first()
        if row is None or row.LoginSession.revoked_at is not None:
            raise ended
        login, user = row.LoginSession, row.User
        now = utcnow()
        if now - login.last_seen_at > timeout:
            reason, message = (
                SessionEnd.TIMEOUT,
                (
                    f"your session ended after {rt.settings.session_timeout_minutes} minutes without activity; "
                    "please log in again"
                ),
            )
        elif not user.active:
            reason, message = SessionEnd.DEACTIVATED, "this account is deactivated"
        elif lockout.is_locked(user, now):
            reason, message = SessionEnd.LOCKED, "this account is locked"
        else:
            login.last_seen_at = now
            return users.as_person(user)
        login.revoked_at, login.revoked_reason = now, reason.value
    raise SessionEnded(reason, message)


def end(rt: Runtime, token: Any, reason: SessionEnd = SessionEnd.LOGOUT) -> bool:
    """Revoke one session (logout); audited. False when it was not alive."""
    if not _valid_token(token):
        return False
    with rt.transaction() as s:
        row = s.execute(
            select(LoginSession, User.username)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.id == _hash(token), LoginSession.revoked_at.is_(None))
        ).first()
        if row is None:
            return False
        row.LoginSession.revoked_at, row.LoginSession.revoked_reason = utcnow(), reason.value
        if reason is SessionEnd.LOGOUT:
            audit.record(s, user=row.username, action="auth.logout", object_type="user", object_id=row.username)
        return True


def revoke_all(s, user_id: int, reason: SessionEnd) -> int:
    """Revoke every live session of a user, inside the caller's transaction (the change
    that ends them — deactivation, lock, new password — commits with it)."""
    result = s.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def live_sessions(rt: Runtime, username: str) -> int:
    """How many sessions of ``username`` are not revoked (idle ones included)."""
    with rt.transaction() as s:
        return len(
            s.scalars(
                select(LoginSession.id)
                .join(User, User.id == LoginSession.user_id)
                .where(User.username == username, LoginSession.revoked_at.is_(None))
            ).all()
        )


def _ending_change(user: User) -> SessionEnd | None:
    """Whether this pending change of an account ends its sessions, and why."""
    state = inspect(user)
    if not state.persistent:
        return None
    if state.attrs.active.history.added and not user.active:
        return SessionEnd.DEACTIVATED
    if state.attrs.locked_at.history.added and user.locked_at is not None:
        return SessionEnd.LOCKED
    if state.attrs.password_hash.history.added and state.attrs.password_hash.history.deleted:
        return SessionEnd.PASSWORD_CHANGED
    return None


@event.listens_for(Session, "before_flush")
def _end_sessions_of_changed_accounts(s: Session, _context, _instances) -> None:
    for obj in list(s.dirty):
        if isinstance(obj, User):
            reason = _ending_change(obj)
            if reason is not None:
                revoke_all(s, obj.id, reason)
