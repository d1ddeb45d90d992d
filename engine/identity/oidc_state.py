"""What an OIDC sign-in must remember between leaving for the provider and coming back,
and the one-time signing grants a re-authentication yields. Kept on the server:

- a request (``oidc_request``) holds the nonce and the PKCE verifier; the browser gets
  only ``state``. The callback is believed only with a ``state`` this server sent, to the
  same browser, unused and unexpired: taking it marks it used in one conditional UPDATE,
  so a replayed or concurrent callback finds nothing (both databases);
- a signing grant (``oidc_signing_grant``) is made only after a re-authentication that
  proved the signer present; it is bound to the person and their browser session and is
  consumed by exactly one signature, the same way.

Only SHA-256 hashes of ``state`` and of grants are stored: a copy of the tables opens
nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from ..models import OidcRequest, OidcSigningGrant, utcnow
from ..runtime import Runtime

PURPOSES = ("login", "sign")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _usable(value: object) -> bool:
    return isinstance(value, str) and 20 <= len(value) <= 200


@dataclass(frozen=True)
class Pending:
    """A request to the provider, as the callback needs it."""

    purpose: str
    nonce: str
    code_verifier: str
    username: str | None
    next_url: str | None


def begin(
    rt: Runtime, browser: str, purpose: str, *, username: str | None = None, next_url: str | None = None
) -> tuple[str, Pending]:
    """A new request: returns ``state`` (for the browser) and what stays here."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    state = secrets.token_urlsafe(32)
    pending = Pending(purpose, secrets.token_urlsafe(32), secrets.token_urlsafe(48), username, next_url)
    now = utcnow()
    with rt.transaction() as s:
        # requests nobody came back for do not pile up
        s.execute(delete(OidcRequest).where(OidcRequest.created_at < now - timedelta(days=1)))
        s.add(
            OidcRequest(
                id=digest(state),
                browser=digest(browser),
                purpose=purpose,
                nonce=pending.nonce,
                code_verifier=pending.code_verifier,
                username=username,
                next_url=next_url,
                created_at=now,
            )
        )
    return state, pending


def take(rt: Runtime, state: object, browser: object) -> Pending | None:
    """The request ``state`` belongs to, marked used; None when it is unknown, from another
    browser, already used (a replay) or expired."""
    if not _usable(state) or not _usable(browser):
        return None
    assert isinstance(state, str) and isinstance(browser, str)
    now = utcnow()
    oldest = now - timedelta(seconds=rt.settings.oidc_request_seconds)
    with rt.transaction() as s:
        taken = s.execute(
            update(OidcRequest)
            .where(
                OidcRequest.id == digest(state),
                OidcRequest.browser == digest(browser),
                OidcRequest.used_at.is_(None),
                OidcRequest.created_at >= oldest,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return None
        row = s.scalars(select(OidcRequest).where(OidcRequest.id == digest(state))).one()
        return Pending(row.purpose, row.nonce, row.code_verifier, row.username, row.next_url)


def grant(rt: Runtime, username: str, session_id: str, auth_time: datetime) -> str:
    """A one-time signing grant for ``username`` in the browser session ``session_id``."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with rt.transaction() as s:
        s.execute(delete(OidcSigningGrant).where(OidcSigningGrant.created_at < now - timedelta(days=1)))
        s.add(
            OidcSigningGrant(
                id=digest(token), username=username, session_id=session_id, auth_time=auth_time, created_at=now
            )
        )
    return token


def consume(rt: Runtime, token: object, username: str, session_id: str) -> bool:
    """Use up a signing grant: True once, for its person and session, while fresh."""
    if not _usable(token):
        return False
    assert isinstance(token, str)
    now = utcnow()
    oldest = now - timedelta(seconds=rt.settings.oidc_grant_seconds)
    with rt.transaction() as s:
        used = s.execute(
            update(OidcSigningGrant)
            .where(
                OidcSigningGrant.id == digest(token),
                OidcSigningGrant.username == username,
                OidcSigningGrant.session_id == session_id,
                OidcSigningGrant.used_at.is_(None),
                OidcSigningGrant.created_at >= oldest,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return used.rowcount == 1


__all__ = ["PURPOSES", "Pending", "begin", "consume", "digest", "grant", "take"]
