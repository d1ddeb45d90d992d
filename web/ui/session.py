"""Who is at the tablet: the browser session, its CSRF token, its inactivity timeout and
the 21 CFR 11.200(a) signing rule.

The session is Flask's signed cookie. It holds the user id, the time of the last
request, a CSRF token, whether the user has already signed in this continuous
session, and the idempotency keys of the last few submissions (a form sent twice is
recorded once). A session that saw no request for ``settings.session_timeout_minutes``
ends: the user logs in again and the next signature needs user id and password again.

Signing rule (§11.200(a)(1)): the first signature of a continuous session takes both
components (user id + password); later ones in the same session take the password
only; after logout or the inactivity timeout both again. Signing for someone else is
impossible: the signer is always the logged-in user (§11.200(a)(2)).
"""

from __future__ import annotations

import hmac
import secrets
import time
from urllib.parse import urlsplit

from flask import abort, request, session

from engine import users

from ..runtime import runtime

#: idempotency keys of this session's recent submissions -> their result page
DONE_KEYS = "done"
DONE_KEEP = 8


def timeout_seconds() -> int:
    return int(runtime().settings.session_timeout_minutes) * 60


def csrf_token() -> str:
    """The session's CSRF token (made on first use); every POST form carries it."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(400, description="This form has expired (or was sent from another site). Reload the page and try again.")


def start(person: users.Person) -> None:
    """A fresh continuous session after a successful login."""
    session.clear()
    session["user"] = person.username
    session["csrf"] = secrets.token_urlsafe(32)
    session["last_seen"] = int(time.time())
    session["signed_once"] = False


def end() -> None:
    session.clear()


def load_person() -> tuple[users.Person | None, str | None]:
    """The logged-in person for this request, or (None, why the session ended).

    Reads the account again on every request, so a deactivated or locked account is
    logged out at its next click."""
    username = session.get("user")
    if not username:
        return None, None
    last_seen = session.get("last_seen") or 0
    if time.time() - last_seen > timeout_seconds():
        end()
        minutes = runtime().settings.session_timeout_minutes
        return None, f"Your session ended after {minutes} minutes without activity. Please log in again."
    try:
        person = users.person(runtime(), username)
    except users.AuthFailed as exc:
        end()
        return None, exc.message
    session["last_seen"] = int(time.time())
    return person, None


def signing_needs_user_id() -> bool:
    """§11.200(a)(1): user id + password at the first signing of a continuous session."""
    return not session.get("signed_once")


def signed() -> None:
    session["signed_once"] = True


def done_submissions() -> dict[str, str]:
    """This session's recent submissions: idempotency key -> the page of their result, so a
    form sent again (reload, back + resend) shows the first result instead of acting twice."""
    return session.get(DONE_KEYS) or {}


def remember_submission(done: dict[str, str], key: str, target: str) -> None:
    """Keep ``key`` -> ``target`` with the last few others (the cookie stays small)."""
    done[key] = target
    session[DONE_KEYS] = dict(list(done.items())[-DONE_KEEP:])


def safe_next(target: str | None) -> str | None:
    """Only same-site paths are followed after login (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
