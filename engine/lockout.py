"""Account lockout (21 CFR 11.300(d)): after ``lockout_attempts`` failed password checks
in a row an account is locked, the lock is audited and ``security.user_locked`` alerts
security.

Why the lock ends by itself: a lock that only an administrator lifts lets anyone who
knows a user id — any operator knows the admin's — lock the plant out for good. A lock
lasts ``lockout_minutes``; each further lock without a successful sign-in in between
lasts twice as long as the one before, up to ``lockout_max_minutes`` (online guessing
slows to a few attempts a day), and a successful sign-in starts again from the first
length. An administrator unlocks at once (``user unlock``), and the server's operator
can do so without a login (``user unlock --local``). ``lockout_minutes = 0`` keeps the
old rule: locked until an administrator unlocks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from . import audit, outbox
from .models import User
from .runtime import Runtime


def is_locked(u: User, now: datetime) -> bool:
    """Locked now: a lock without an end, or one that has not ended yet."""
    if u.locked_at is None:
        return False
    return u.locked_until is None or u.locked_until > now


def lock_length(rt: Runtime, lock_count: int) -> timedelta | None:
    """How long the ``lock_count``-th lock in a row lasts (None: until unlocked)."""
    base = rt.settings.lockout_minutes
    if base <= 0:
        return None
    doublings = min(max(lock_count - 1, 0), 32)
    return timedelta(minutes=min(base * 2**doublings, max(rt.settings.lockout_max_minutes, base)))


def release_if_over(s: Session, u: User, now: datetime) -> None:
    """A lock whose time is over ends: the next attempts count from zero again (the
    back-off remembers it until a successful sign-in)."""
    if u.locked_at is not None and u.locked_until is not None and u.locked_until <= now:
        audit.record(
            s,
            user="system",
            action="user.lock_expired",
            object_type="user",
            object_id=u.username,
            reason=f"the lock ended at {u.locked_until.isoformat()}",
        )
        u.locked_at = None
        u.locked_until = None
        u.failed_logins = 0


def count_failure(rt: Runtime, s: Session, u: User, now: datetime) -> bool:
    """One more failed password check; True when it locked the account."""
    u.failed_logins += 1
    if rt.settings.lockout_attempts <= 0 or u.failed_logins < rt.settings.lockout_attempts:
        return False
    u.lock_count = (u.lock_count or 0) + 1
    length = lock_length(rt, u.lock_count)
    u.locked_at = now
    u.locked_until = now + length if length is not None else None
    until = u.locked_until.isoformat() if u.locked_until else None
    audit.record(
        s,
        user="system",
        action="user.locked",
        object_type="user",
        object_id=u.username,
        new={"locked_until": until, "lock_count": u.lock_count},
        reason=f"{u.failed_logins} failed attempts"
        + (f"; locked until {until}" if until else "; locked until an administrator unlocks"),
    )
    outbox.emit(
        s,
        rt.settings,
        "security.user_locked",
        f"user/{u.username}",
        {
            "username": u.username,
            "failed_attempts": u.failed_logins,
            "locked_until": until,
            "lock_count": u.lock_count,
        },
    )
    return True


def succeeded(u: User) -> None:
    """A correct password: the count of failures and the back-off start again."""
    u.failed_logins = 0
    u.lock_count = 0


def unlock(u: User) -> None:
    u.locked_at = None
    u.locked_until = None
    u.failed_logins = 0
    u.lock_count = 0


def locked_message(u: User, *, now_locked: bool = False) -> str:
    when = (
        f"until {u.locked_until.strftime('%Y-%m-%d %H:%M UTC')}"
        if u.locked_until is not None
        else "until an administrator unlocks it"
    )
    now = "now " if now_locked else ""
    return f"this account is {now}locked after repeated failures {when}; ask an administrator to unlock it sooner"
