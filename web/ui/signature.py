"""The sign dialog's answer: the logged-in person's electronic signature on a step or a
correction, by the 21 CFR 11.200(a) rules (see ``session`` for the continuous session)."""

from __future__ import annotations

from flask import g, request

from engine import users

from ..auth import client_address
from ..runtime import runtime
from . import session as login
from .oidc import signer_by_grant, signs_with_oidc

#: refusals that concern the signature rather than the form's values
SIGNING_CODES = {
    "auth_failed",
    "account_locked",
    "account_inactive",
    "password_expired",
    "self_witness",
    "witness_role",
    "witness_required",
    "signature_required",
    "sign_for_other",
    "too_many_attempts",
    "meaning_role",
    "correction_role",
}


def signer() -> tuple[users.Person | None, tuple[str, int] | None]:
    """The logged-in person's signature from the sign dialog, or (None, (why, status)).

    §11.200(a)(1): user id + password at the first signing of this continuous session,
    the password alone later; (a)(2): the signer is always the logged-in person."""
    person = g.person
    if signs_with_oidc(person):
        # no password here: a re-authentication at the provider just now (web.ui.oidc)
        return signer_by_grant(person)
    if login.signing_needs_user_id():
        entered = (request.form.get("signer_id") or "").strip()
        if entered != person.username:
            return None, (
                "Enter your own user id: you are logged in as "
                f"{person.username}, and nobody can sign for someone else.",
                403,
            )
    if not request.form.get("password"):
        return None, ("Enter your password to sign.", 401)
    try:
        signed_by = users.authenticate(
            runtime(), person.username, request.form.get("password") or "", purpose="signature", client=client_address()
        )
    except users.AuthFailed as exc:
        return None, (f"Your signature was not accepted: {exc.message}.", 401)
    except users.TooManyAttempts as exc:
        return None, (f"Your signature was not checked: {exc.message}.", 429)
    # both components were proven in this continuous session: later signings take the password only
    login.signed()
    return signed_by, None
