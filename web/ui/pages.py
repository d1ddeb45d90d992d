"""The ``ui`` blueprint and what every page of it shares: the login check before each
request, the page security headers after it (CSP, framing), the template filters and context, the error
pages, and the sentences and permission check the pages use.

Pages are rendered on the server (Jinja, autoescaped) from the engine's functions; the
only scripts are our own (live limit hints, the sign dialog, the bpmn-js diagram).
Every POST carries the session's CSRF token; every change is made as the logged-in
person, and a step is signed by that person only (21 CFR 11.200(a)(2)).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from engine import permissions
from engine.errors import BatchlineError

from ..errors import RETRY_AFTER_SECONDS, error_headers, http_error_response
from ..runtime import runtime
from . import entry, times
from . import session as login
from .markdown import render_markdown

bp = Blueprint("ui", __name__, url_prefix="/")
log = logging.getLogger("batchline.web")

PUBLIC = {"ui.login"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: http: https:; connect-src 'self'; font-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


# --- every request ---------------------------------------------------------------------


@bp.before_request
def _who_is_there():
    person, why = login.load_person()
    g.person = person
    if why:
        flash(why, "warning")
    if person is None and request.endpoint not in PUBLIC:
        # a POST after a timeout changes nothing: log in, then the page is shown again
        target = request.full_path if request.method == "GET" else login.page_address() or url_for("ui.home")
        return redirect(url_for("ui.login", next=target.rstrip("?")))
    if request.method == "POST":
        login.check_csrf()
    return None


@bp.after_request
def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # nosniff, no-store (batch records must not linger in a shared tablet's cache), the
    # cookie's flags and HSTS: web.headers, for every answer of the app
    return response


@bp.app_template_filter("utc")
def _utc(value: Any) -> str:
    """ISO time -> "2025-11-25 20:45:12 UTC" (records are kept and shown in UTC)."""
    if not value:
        return "—"
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("when")
def _when(value: Any, style: str = "datetime"):
    """A stored time in the site's zone, as people read it (``web.ui.times``)."""
    return times.when(value, times.site_zone(runtime().settings.site_timezone), style)


@bp.app_template_filter("action_words")
def _action_words(value: Any) -> str:
    """An audit action as words: "recipe.approved" -> "recipe approved"."""
    return str(value or "").replace(".", " ").replace("_", " ")


@bp.app_template_filter("audit_value")
def _audit_value(value: Any) -> str:
    """An audited old / new value for people: a recorded object shows its status (the
    whole JSON, hashes and ISO times included, stays in the audit trail and its export)."""
    text = "" if value is None else str(value)
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("status"), str):
            return parsed["status"].replace("_", " ")
    return text if len(text) <= 120 else text[:117] + "…"


@bp.app_template_filter("filesize")
def _filesize(value: Any) -> str:
    return entry.file_size(value)


@bp.app_template_filter("markdown")
def _markdown(value: str | None):
    return render_markdown(value)


@bp.context_processor
def _context() -> dict[str, Any]:
    person = g.get("person")
    return {
        "person": person,
        "csrf_token": login.csrf_token,
        "may": lambda action: bool(person) and permissions.allowed(person.roles, action),
        "timeout_minutes": runtime().settings.session_timeout_minutes,
        "has_trends": "trends.dashboard" in current_app.view_functions,
    }


# --- error pages -----------------------------------------------------------------------


@bp.errorhandler(BatchlineError)
def _engine_error(error: BatchlineError):
    status = int(getattr(error, "status", 422))
    return render_template(
        "ui/error.html", title=_error_title(status), message=sentence(error.message), code=error.code
    ), status


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    if error.code == 413:
        return _too_large()
    return error_page(error)


def _too_large():
    """A submission over MAX_CONTENT_LENGTH (settings.max_request_bytes) is refused before
    anything is read: nothing was recorded and no file was stored."""
    limit = entry.file_size(int(runtime().settings.max_request_bytes))
    back = request.path if request.method == "POST" else None  # the task / correction page again
    return render_template(
        "ui/error.html",
        title="File too large",
        message=f"What you sent is too large: at most {limit} can be sent at once (the file and the form "
        "together). Nothing was recorded and no file was stored. Make the file smaller (e.g. a PDF "
        "instead of a photo, or a lower resolution) and try again, or ask your supervisor.",
        code="413",
        back=back,
    ), 413


def _error_title(status: int) -> str:
    return {401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Not possible now"}.get(
        status, "Not accepted"
    )


# --- error pages for any address that is not the API (floor1) ----------------------------

#: Werkzeug's own wording replaced by the floor's, by status: (title, sentence)
PAGE_WORDS = {
    400: ("Not accepted", "The page could not understand what was sent. Go back and try again."),
    401: ("Not signed in", "Log in to see this page."),
    403: ("Not allowed", "Your account may not open this page."),
    404: ("Page not found", "There is no page at this address. It may have been mistyped, or the link is old."),
    405: (
        "Not a page to open",
        "This address takes a form's submission, not a visit. Nothing was recorded. "
        "Open the page the form is on and use its button.",
    ),
    500: (
        "Something went wrong",
        "The server met an error it did not expect; the details are in its log. If you were recording "
        "something, open the batch record to see whether it was recorded before you try again.",
    ),
    503: ("Busy — try again", "The database is busy or out of reach. Nothing was recorded. Try again in a moment."),
}


def wants_page() -> bool:
    """A browser opening a page (not the API, not a script asking for JSON) gets an HTML
    error page in users' words; /api/... keeps the JSON error format."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return False
    if not request.accept_mimetypes:
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "text/html"


def _words(error: HTTPException) -> tuple[str, str]:
    """The floor's title and sentence; a description our code wrote (not Werkzeug's
    default) is already in users' words and is kept."""
    status = error.code or 500
    own = error.description and error.description != type(error).description and status != 500
    if own:  # "No such task in batch B-1.", "You may not correct this step ..."
        return _error_title(status), sentence(error.description or "")
    return PAGE_WORDS.get(status, (_error_title(status), error.description or ""))


def error_page(error: HTTPException):
    """Any HTTP error answered as a page: who is logged in (for the menu), the sentence,
    and a way back (the previous page when it is ours, and the home page)."""
    status = error.code or 500
    if "person" not in g:
        try:
            g.person = login.load_person()[0]
        except Exception:  # the database itself may be what failed: the page without a menu
            log.warning("no session check for an error page", exc_info=True)
            g.person = None
    title, text = _words(error)
    back = login.referrer_path()
    context = _context() if request.blueprint != bp.name else {}
    page = render_template(
        "ui/error.html", title=title, message=text, code=str(status), back=back, back_label="Back", **context
    )
    return page, status, error_headers(error)


def _any_address_error(error: HTTPException):
    """Errors outside the UI's own routes (an unknown address, a GET of a POST-only one):
    a page for a browser, the API's JSON for everyone else."""
    if request.blueprint == bp.name:  # the UI's own routes always answer pages
        return _http_error(error)
    if not wants_page():
        return http_error_response(error)
    return error_page(error)


for _status in (400, 401, 403, 404, 405, 406, 409, 415, 422, 429, 500, 503):
    bp.app_errorhandler(_status)(_any_address_error)


@bp.errorhandler(OperationalError)
def _database_busy(error: OperationalError):
    """A page whose database was busy: the same 503 and Retry-After as the API, as a page."""
    log.warning("database busy or unavailable under a page: %s", getattr(error, "orig", error))
    title, text = PAGE_WORDS[503]
    page = render_template("ui/error.html", title=title, message=text, code="503", back=None)
    return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


@bp.errorhandler(IntegrityError)
def _concurrent_change(error: IntegrityError):
    """Two submissions changed the same thing at the same moment: nothing of this one was stored."""
    log.warning("a unique key refused a concurrent insert under a page: %s", getattr(error, "orig", error))
    text = (
        "Someone else changed the same thing at the same moment, so nothing of yours was stored. "
        "Open the page again to see the current state, then repeat what you did if it is still needed."
    )
    return render_template("ui/error.html", title="Changed at the same time", message=text, code="409"), 409


# --- shared by the pages ---------------------------------------------------------------


def sentence(text: str) -> str:
    """Engine messages are lower-case fragments; on a page they read as sentences."""
    text = (text or "").strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def require(action: str) -> None:
    """The same permission matrix as the API and the CLI (engine.permissions)."""
    if not permissions.allowed(g.person.roles, action):
        roles = ", ".join(sorted(permissions.MATRIX[action]))
        abort(403, description=f"You may not {action.replace('.', ' ')} (this needs the role: {roles}).")
