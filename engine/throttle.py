"""Rate limits on password checks: at most ``throttle_per_address`` failed attempts from
one client address and ``throttle_per_account`` against one account within
``throttle_window_seconds``; above that an attempt is refused with 429
``too_many_attempts`` and a ``Retry-After`` *before* any password is checked, so it
neither guesses nor counts toward the account's lockout.

Why in the engine and in the database: every way in — the login page, the API's and the
UI's signatures, the CLI — re-authenticates through ``engine.users.authenticate``, and
several app nodes behind a load balancer must share one count, so the counts are rows
(``auth_failure``), written in the transaction that records the failure. Only failures
are rows (a successful sign-in writes nothing here), and rows older than the window are
deleted as new ones arrive, so the table holds one window's failures at most.

Two concurrent failures may both pass the check before either is written: the limit can
be exceeded by the number of parallel requests, never more.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .config import Settings
from .errors import BatchlineError
from .models import AuthFailure, utcnow

_UNPRINTABLE = re.compile(r"[^0-9A-Za-z.:_\-\[\]%@]")


class TooManyAttempts(BatchlineError):
    """Too many failed password checks from this address or for this account just now."""

    code = "too_many_attempts"
    status = 429

    def __init__(self, retry_after: int, what: str):
        self.retry_after = max(1, int(retry_after))
        super().__init__(
            f"too many failed attempts {what}; try again in {self.retry_after} seconds",
            details={"retry_after_seconds": self.retry_after},
        )


def address_key(client: str) -> str:
    """The client address as a key: printable, at most 100 characters."""
    return "address:" + _UNPRINTABLE.sub("?", client)[:100]


def account_key(username: str) -> str:
    """An account by a hash of its id, so an arbitrary string typed as a user id is
    never stored (it may be someone's password typed into the wrong field)."""
    return "account:" + hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:40]


def _limits(settings: Settings, client: str | None, username: str) -> list[tuple[str, int, str]]:
    out = []
    if client and settings.throttle_per_address > 0:
        out.append((address_key(client), settings.throttle_per_address, "from this address"))
    if settings.throttle_per_account > 0:
        out.append((account_key(username), settings.throttle_per_account, "for this account"))
    return out


def check(s: Session, settings: Settings, client: str | None, username: str) -> None:
    """Refuse (429) an attempt from ``client`` for ``username`` over either limit."""
    now = utcnow()
    window = timedelta(seconds=settings.throttle_window_seconds)
    for key, limit, what in _limits(settings, client, username):
        # the limit-th newest failure in the window: when it leaves the window, one more is allowed
        at = s.scalar(
            select(AuthFailure.at)
            .where(AuthFailure.key == key, AuthFailure.at > now - window)
            .order_by(AuthFailure.at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        if at is not None:
            raise TooManyAttempts(math.ceil((at + window - now).total_seconds()), what)


def failed(s: Session, settings: Settings, client: str | None, username: str) -> list[str]:
    """Count one failed attempt; the keys that reached their limit with it (to audit once)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.throttle_window_seconds)
    s.execute(delete(AuthFailure).where(AuthFailure.at <= cutoff))
    reached = []
    for key, limit, _what in _limits(settings, client, username):
        s.add(AuthFailure(key=key, at=now))
        s.flush()
        count = s.scalar(select(func.count()).select_from(AuthFailure).where(AuthFailure.key == key))
        if count == limit:
            reached.append(key)
    return reached


def forget_account(s: Session, username: str) -> None:
    """An administrator unlocked the account or set its password: its count starts again."""
    s.execute(delete(AuthFailure).where(AuthFailure.key == account_key(username)))
