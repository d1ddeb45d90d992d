"""Who is acting: the user name every change is recorded under (audit trail, steps).

For now a trusted ``X-Batchline-User`` header — enough for a closed network and for
scripts. Real login, sessions, roles and API tokens replace this; they only need to
change ``current_user``, which every mutating endpoint calls.
"""
from __future__ import annotations

from functools import wraps

from flask import request
from flask_smorest import Blueprint

from .errors import ApiError

USER_HEADER = "X-Batchline-User"
MAX_USER_LEN = 200  # the width of the user columns in steps and the audit trail


def current_user() -> str:
    """The acting user's name, or a 401 ``auth_required`` when there is none."""
    user = (request.headers.get(USER_HEADER) or "").strip()
    if not user:
        raise ApiError(401, "auth_required", f"this request changes data: say who you are in the {USER_HEADER} header")
    if len(user) > MAX_USER_LEN or any(ord(c) < 32 for c in user):
        raise ApiError(400, "user_invalid", f"the {USER_HEADER} header must be a name of at most {MAX_USER_LEN} "
                                            "printable characters")
    return user


def user_required(view):
    """Refuse an anonymous change before its body is even read (401 before 422), and
    say so in the OpenAPI document."""

    @wraps(view)
    def checked(*args, **kwargs):
        current_user()
        return view(*args, **kwargs)

    return Blueprint.doc(security=[{"user": []}])(checked)
