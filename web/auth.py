"""Who is acting, and may they: authentication and the permission check for every
API endpoint.

Two ways in: an API token (``Authorization: Bearer bl_…``, for systems and scripts), or
the browser session set by the login page, held on the server (``web.ui.session`` is its
one home: timeout, logout and revocation; the API reads it only for GET requests).
Every endpoint declares its action with ``@requires("batch.start")``; the matrix itself
is ``engine.permissions.MATRIX`` so the CLI enforces the same rules.
"""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_smorest import Blueprint

from engine import batches, permissions, users
from engine.identity import oidc

from .errors import ApiError
from .runtime import runtime


def session_person():
    """The person logged in through the browser, if the session is still alive."""
    from .ui import session as browser  # the browser session's one home

    return browser.load_person()[0]


def current_person():
    """The authenticated person, or a 401 ``auth_required``."""
    if "person" in g:
        return g.person
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        person = users.token_person(runtime(), header[len("Bearer ") :].strip())
    else:
        person = session_person()
        if person is None:
            raise ApiError(401, "auth_required", "log in, or send an API token as 'Authorization: Bearer …'")
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # the browser UI writes through its own CSRF-protected forms; a cookie alone
            # never changes data through the API (no cross-site request forgery)
            raise ApiError(401, "auth_required", "API changes need an API token ('Authorization: Bearer …')")
    g.person = person
    return person


def current_user() -> str:
    return current_person().username


def requires(action: str):
    """Authenticate, then check the permission matrix — before the body is read, so an
    anonymous or unauthorised request gets 401/403, not a validation error."""
    if action not in permissions.MATRIX:
        raise KeyError(action)

    def decorate(view):
        @wraps(view)
        def checked(*args, **kwargs):
            permissions.check(current_person(), action)
            return view(*args, **kwargs)

        checked.batchline_action = action
        return Blueprint.doc(
            security=[{"token": []}],
            description=f"Permission: `{action}` ({', '.join(sorted(permissions.MATRIX[action]))}).",
        )(checked)

    return decorate


def client_address() -> str | None:
    """The caller's address for the per-address rate limit and the audit trail. Behind a
    reverse proxy, configure the proxy (and Werkzeug's ``ProxyFix``) so this is the
    client's address, not the proxy's (docs/security.md)."""
    return request.remote_addr


def signer_from(body_part, *, purpose: str = "signature"):
    """Re-authenticate a signer given in a request body: ``{"username", "password"}``.

    Over the API every signature carries both components (a token is no continuous
    session in the sense of §11.200). Call it only after the task was found and the
    caller may complete it (``engine.batches.may_complete``), and for the performer
    after ``own_signature``: a password check counts toward the signer's lockout."""
    if not body_part:
        return None
    oidc.refuse_password_signature(runtime(), body_part.get("username"))  # OIDC people sign in the browser
    return users.authenticate(
        runtime(), body_part.get("username"), body_part.get("password"), purpose=purpose, client=client_address()
    )


def own_signature(body_part):
    """The caller's own signature: one naming anyone else is refused (``sign_for_other``)
    before its password is checked, so it counts toward nobody's lockout."""
    if not body_part:
        return None
    batches.check_own_signature(body_part.get("username"), current_person())
    return signer_from(body_part)
