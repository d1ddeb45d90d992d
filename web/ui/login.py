"""The login and logout pages. People log in with their own account; service accounts
use API tokens and cannot open a browser session. Too many failed logins from one
address or for one account answer 429 with ``Retry-After`` (``engine.throttle``)."""

from __future__ import annotations

from ipaddress import ip_address

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from engine import users

from ..auth import client_address
from ..errors import retry_headers
from ..runtime import runtime
from . import session as login
from .pages import bp, sentence


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    next_url = login.safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.person is not None:
            return redirect(next_url or url_for("ui.home"))
        return render_template("ui/login.html", next_url=next_url, username="", error=None, https_needed=https_needed())
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    try:
        person = users.authenticate(runtime(), username, password, purpose="login", client=client_address())
        if person.kind != "person":
            raise users.AuthFailed(
                "service accounts cannot log in to the browser; use an API token", code="account_service"
            )
    except (users.AuthFailed, users.TooManyAttempts) as exc:
        page = render_template(
            "ui/login.html",
            next_url=next_url,
            username=username,
            error=sentence(exc.message),
            error_code=exc.code,
            https_needed=https_needed(),
        )
        return page, int(getattr(exc, "status", 401)), retry_headers(exc)
    login.start(person)
    return redirect(next_url or url_for("ui.home"))


@bp.route("/logout", methods=["POST"])
def logout():
    login.end()
    flash("You are logged out. The next signature needs your user id and password again.", "info")
    return redirect(url_for("ui.login"))


def https_needed() -> bool:
    """The session cookie is ``Secure`` but this page came over plain HTTP from an address
    a browser does not trust as local: a login would seem to do nothing, so say why."""
    if not current_app.config.get("SESSION_COOKIE_SECURE") or request.is_secure:
        return False
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ip_address(host).is_loopback
    except ValueError:
        return True


@bp.route("/session/keep-alive", methods=["POST"])
def keep_alive():
    """The "Stay signed in" button: a cheap authenticated request that moves the session's last-seen
    time (the check before every request did that already), answering the seconds left.
    A session that has ended never gets here: the check answers a redirect to login."""
    return {"seconds_left": login.seconds_left(), "warn_seconds": login.warn_seconds()}


@bp.app_context_processor
def _session_clock() -> dict:
    """What the page's session script needs: the seconds left, when to warn, and whether
    this is the first page after a login (kept form values are put back there)."""
    if g.get("person") is None:
        return {"session_clock": None}
    return {
        "session_clock": {
            "seconds": login.seconds_left(),
            "warn": login.warn_seconds(),
            "after_login": bool(session.pop(login.AFTER_LOGIN, False)),
        }
    }
