"""Who is at the tablet: the browser session, its CSRF token, and the 21 CFR 11.200(a)
signing rule. The one home of "is this browser logged in" (the API and the trend pages
ask ``load_person`` too, through ``web.auth.session_person``).

The session lives on the server (``engine.sessions``: a ``login_session`` row with its
last-seen time, revoked at logout, at the inactivity timeout, and when the account is
deactivated, locked or gets a new password). Flask's signed cookie carries only the
session's random token, a CSRF token, whether the user has already signed in this
continuous session, and the idempotency keys of the last few submissions (a form sent
twice is recorded once). A copied cookie is worth nothing after logout.

Signing rule (§11.200(a)(1)): the first signature of a continuous session takes both
components (user id + password); later ones in the same session take the password
only; after logout or the inactivity timeout both again (a new session starts with
``signed_once`` false). Signing for someone else is impossible: the signer is always the
logged-in user (§11.200(a)(2)).
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import abort, current_app, g, request, session
from werkzeug.exceptions import HTTPException

from engine import sessions, users
from engine.vocabulary import SessionEnd

from ..runtime import runtime

#: the cookie's key of the server-side session's token
TOKEN = "sid"
#: idempotency keys of this session's recent submissions -> their result page
DONE_KEYS = "done"
DONE_KEEP = 8
#: the warning before the inactivity timeout ("Your session ends in 2 minutes")
WARN_SECONDS = 120
#: set at login, taken by the first page drawn after it (the session script puts kept values back there)
AFTER_LOGIN = "after_login"


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
    """A fresh continuous session after a successful login (a new token: no fixation);
    an earlier session of this browser ends."""
    sessions.end(runtime(), session.get(TOKEN), SessionEnd.REPLACED)
    session.clear()
    session[TOKEN] = sessions.open_session(runtime(), person.username)
    session["csrf"] = secrets.token_urlsafe(32)
    session["signed_once"] = False
    session[AFTER_LOGIN] = True
    g.browser_session = (person, None)


def end() -> None:
    """Logout: the server-side session is revoked, so a copy of the cookie is worth nothing."""
    sessions.end(runtime(), session.get(TOKEN))
    session.clear()
    g.browser_session = (None, None)


def load_person() -> tuple[users.Person | None, str | None]:
    """The logged-in person for this request, or (None, why the session ended).

    Asks the server-side session on every request (once per request), so a revoked,
    idle, deactivated or locked session is logged out at its next click."""
    if "browser_session" not in g:
        g.browser_session = _load()
    return g.browser_session


def _load() -> tuple[users.Person | None, str | None]:
    token = session.get(TOKEN)
    if not token:
        return None, None
    try:
        return sessions.resume(runtime(), token), None
    except sessions.SessionEnded as exc:
        session.clear()
        if exc.reason is None:
            return None, "Your session has ended. Please log in again."
        text = exc.message[0].upper() + exc.message[1:]
        return None, text.replace("; please", ". Please") + ("" if text.endswith(".") else ".")


def seconds_left() -> int:
    """Seconds until the inactivity timeout: this request has just moved the session's
    last-seen time (``engine.sessions.resume``), so the whole timeout is left."""
    return int(runtime().settings.session_timeout_minutes) * 60


def warn_seconds() -> int:
    """How long before the timeout the page warns: 2 minutes, or half a short timeout."""
    return min(WARN_SECONDS, seconds_left() // 2)


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


def referrer_path() -> str | None:
    """The previous page's path and query, when it was a page of this site."""
    ref = request.referrer or ""
    host = request.host_url.rstrip("/")
    return safe_next(ref[len(host) :]) if ref.startswith(host + "/") else None


def page_address() -> str | None:
    """The page a POST came from, to GET it again: its own address when that opens with a
    GET (the task page, the correction page, login), else the page the form was on (the
    Referer: an event recorded from a task page, a hold from the batch page), else None.
    Used after a session ended under a form (log in, then back to that page) and by a
    refused form's page (its history entry becomes a GET: no re-post on back)."""
    before = referrer_path()
    if before and before.split("?")[0] == request.path:
        return before  # the same page, with its query (the correction page's ?field=ph)
    if opens_with_get(request.path):
        return safe_next(request.full_path.rstrip("?"))
    return before


def opens_with_get(path: str) -> bool:
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        adapter.match(path, method="GET")
    except HTTPException:  # not found, POST only, or a redirect elsewhere
        return False
    return True
