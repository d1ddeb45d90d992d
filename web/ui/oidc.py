"""Sign-in with the organisation's OIDC provider, and the re-authentication a signature
needs (21 CFR 11.200), on the ``ui`` blueprint:

- ``/login/oidc`` sends the browser to the provider (authorization code, PKCE S256,
  state, nonce; ``engine.identity.oidc_state`` keeps nonce and verifier on the server);
- ``/login/oidc/callback`` takes the ``state`` back (once, same browser, unexpired),
  exchanges the code, verifies the ID token (``oidc_client.verify``) and then
  ``people.signed_in`` decides who this is in Batchline (created, roles from groups,
  deactivated when no group maps, ``identity_conflict`` for a taken user id);
- ``/login/oidc/reauth`` (opened by the sign dialog in a small window) asks the provider
  to check the person again now (``prompt=login``, ``max_age=0``); the callback checks
  the ``sub`` is the signer's and ``auth_time`` fresh, and hands the dialog a one-time
  signing grant (``signer_by_grant`` consumes it with the signature).

Every refusal is an HTML page in the user's words; nothing is created by a refused
callback.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import abort, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from engine.identity import oidc, oidc_state, people
from engine.identity.people import IdentityConflict
from engine.models import User
from engine.users import AuthFailed, Person

from ..runtime import runtime
from . import pages
from . import session as login
from .oidc_client import ProviderUnreachable, authorization_url, exchange, verify
from .pages import bp, sentence

log = logging.getLogger("batchline.web.oidc")

#: the signed cookie's random value that binds a pending request to this browser
BROWSER = "oidc_browser"
#: the sign dialog's hidden field carrying the grant
GRANT_FIELD = "oidc_grant"

# the way in and the way back from the provider are open to people not logged in yet
pages.PUBLIC.update({"ui.oidc_start", "ui.oidc_callback"})


def _config() -> oidc.OidcConfig:
    settings = runtime().settings
    if not oidc.enabled(settings):
        abort(404)
    return oidc.config_of(settings)


@bp.errorhandler(oidc.OidcNotConfigured)
def _not_configured(error: oidc.OidcNotConfigured):
    """A wrong OIDC setting: the administrator finds it in the log, the person a sentence."""
    log.error("OIDC sign-in is not configured correctly: %s", error)
    return _refused(
        "sign-in with the organisation account is not set up correctly; ask your administrator",
        "oidc_not_configured",
        500,
    )


def _browser() -> str:
    value = session.get(BROWSER)
    if not isinstance(value, str) or len(value) < 20:
        value = session[BROWSER] = secrets.token_urlsafe(32)
    return value


def _refused(message: str, code: str, status: int = 400, title: str = "Sign-in not completed"):
    page = render_template("ui/error.html", title=title, message=sentence(message), code=code)
    return page, status


@bp.app_template_global("oidc_button")
def oidc_button() -> str | None:
    """The login page's "Sign in with …" text, or None when OIDC is off."""
    settings = runtime().settings
    return f"Sign in with {settings.oidc_display_name}" if oidc.enabled(settings) else None


@bp.app_template_global("signs_with_oidc")
def signs_with_oidc(person: Person | None) -> bool:
    """Whether this person signs by re-authenticating at the provider (no password here)."""
    if person is None:
        return False
    cache = g.setdefault("oidc_people", {})
    if person.username not in cache:
        with runtime().transaction() as s:
            source = s.scalars(select(User.source).where(User.username == person.username)).first()
        cache[person.username] = source == oidc.SOURCE
    return bool(cache[person.username])


@bp.route("/login/oidc", methods=["GET"], endpoint="oidc_start")
def start():
    cfg = _config()
    next_url = login.safe_next(request.args.get("next"))
    state, pending = oidc_state.begin(runtime(), _browser(), "login", next_url=next_url)
    return _to_provider(cfg, state, pending, reauth=False)


@bp.route("/login/oidc/reauth", methods=["GET"], endpoint="oidc_reauth")
def reauth():
    """Opened by the sign dialog: the provider must check this person again, now."""
    cfg = _config()
    person = g.person
    if not signs_with_oidc(person):
        return _refused("only people who sign in with the organisation's account confirm here", "oidc_not_oidc", 403)
    state, pending = oidc_state.begin(runtime(), _browser(), "sign", username=person.username)
    return _to_provider(cfg, state, pending, reauth=True)


def _to_provider(cfg: oidc.OidcConfig, state: str, pending: oidc_state.Pending, *, reauth: bool):
    try:
        return redirect(authorization_url(cfg, state, pending.nonce, pending.code_verifier, reauth=reauth))
    except ProviderUnreachable:
        return _unreachable()


def _unreachable():
    return _refused(
        "the organisation's sign-in service cannot be reached now; try again in a minute, or ask your administrator",
        "oidc_unreachable",
        502,
    )


@bp.route("/login/oidc/callback", methods=["GET"], endpoint="oidc_callback")
def callback():
    cfg = _config()
    # one state, at most one code: a callback with two of either is not the provider's
    doubled = len(request.args.getlist("state")) != 1 or len(request.args.getlist("code")) > 1
    state = None if doubled else request.args.get("state")
    pending = oidc_state.take(runtime(), state, session.get(BROWSER))
    if pending is None:
        return _refused(
            "this sign-in link is not valid (used already, expired, or started in another browser); "
            "please start the sign-in again",
            "oidc_state",
        )
    if request.args.get("iss") is not None and request.args.get("iss") != cfg.issuer:
        # RFC 9207: the answer names another issuer (a mix-up between providers)
        return _answer(pending, "the answer came from another sign-in service", "oidc_issuer", 401)
    if request.args.get("error"):
        why = str(request.args.get("error_description") or request.args["error"])[:200]
        return _answer(pending, f"the sign-in service did not sign you in ({why})", "oidc_provider_error", 401)
    code = request.args.get("code")
    if not isinstance(code, str) or not 1 <= len(code) <= 2000:
        return _answer(pending, "the sign-in service sent no authorization code; please start again", "oidc_no_code")
    try:
        claims = verify(cfg, exchange(cfg, code, pending.code_verifier), pending.nonce)
        if pending.purpose == "sign":
            return _reauthenticated(cfg, pending, claims)
        person = people.signed_in(runtime(), oidc.person_from_claims(cfg, claims))
    except ProviderUnreachable:
        return _unreachable()
    except IdentityConflict as exc:
        return _answer(pending, exc.message, exc.code, 409)
    except AuthFailed as exc:
        return _answer(pending, exc.message, exc.code, 403 if exc.code in {"no_role", "account_inactive"} else 401)
    login.start(person)
    return redirect(pending.next_url or url_for("ui.home"))


def _answer(pending: oidc_state.Pending, message: str, code: str, status: int = 400):
    """A refusal: a page for a sign-in, a message to the sign dialog for a re-authentication."""
    if pending.purpose == "sign":
        return render_template("ui/oidc_confirmed.html", grant=None, error=sentence(message), code=code), status
    return _refused(message, code, status)


def _reauthenticated(cfg: oidc.OidcConfig, pending: oidc_state.Pending, claims: dict[str, Any]):
    """A signature's re-authentication came back: the same person, just now -> a grant."""
    person = g.person
    token = session.get(login.TOKEN)
    if person is None or not token or person.username != pending.username:
        return _answer(pending, "you are no longer logged in as the person signing; log in again", "oidc_session", 401)
    with runtime().transaction() as s:
        signer = s.scalars(select(User).where(User.username == person.username)).one()
        s.expunge(signer)
    try:
        # the signer's own sub, authenticated just now; then: the provider still has this
        # person and their groups still give them a role (else refused and deactivated)
        at = oidc.check_reauth(cfg, claims, signer)
        people.signed_in(runtime(), oidc.person_from_claims(cfg, claims), purpose="signature")
    except (AuthFailed, IdentityConflict) as exc:
        oidc.signing_refused(runtime(), person.username, exc.code)
        return _answer(pending, exc.message, exc.code, 403)
    grant = oidc_state.grant(runtime(), person.username, oidc_state.digest(token), at)
    return render_template("ui/oidc_confirmed.html", grant=grant, error=None, code="oidc_confirmed")


def signer_by_grant(person: Person) -> tuple[Person | None, tuple[str, int] | None]:
    """An OIDC person's signature: the one-time grant of a re-authentication just now,
    from this browser session (used up by this signature; a replay is refused)."""
    token = session.get(login.TOKEN)
    grant = request.form.get(GRANT_FIELD) or ""
    if not grant:
        return None, ("Confirm your identity with the organisation's sign-in before you sign.", 401)
    if not token or not oidc_state.consume(runtime(), grant, person.username, oidc_state.digest(token)):
        return None, (
            "Your identity confirmation was used already or has expired. Confirm your identity again to sign.",
            401,
        )
    login.signed()
    return person, None
