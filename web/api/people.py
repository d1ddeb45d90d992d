"""Users and API tokens over HTTP (administrators only). Ids are never reused: accounts
are deactivated, not deleted, and can be reactivated; passwords are write-only."""

from __future__ import annotations

from flask_smorest import Blueprint

from engine import users

from ..auth import current_user, requires
from . import runtime
from .schemas import Reason, TokenIn, TokenOut, UserIn, UserOut

blp = Blueprint("people", __name__, url_prefix="/api", description="Users and API tokens")


@blp.route("/users", methods=["GET"])
@requires("user.manage")
@blp.response(200, UserOut(many=True))
def list_users():
    """Every account, active or not."""
    return users.list_users(runtime())


@blp.route("/users", methods=["POST"])
@requires("user.manage")
@blp.arguments(UserIn)
@blp.response(201, UserOut)
def create_user(body):
    """Create a person (with a password) or a service account (tokens only)."""
    return users.create_user(
        runtime(),
        body["username"],
        body["printed_name"],
        body["roles"],
        by=current_user(),
        password=body.get("password"),
        kind=body["kind"],
    )


@blp.route("/users/<username>/deactivate", methods=["POST"])
@requires("user.manage")
@blp.arguments(Reason)
@blp.response(200, UserOut)
def deactivate_user(body, username: str):
    """Deactivate an account; its id stays taken. The last active administrator cannot be
    deactivated (409 `last_admin`)."""
    return users.set_active(runtime(), username, False, by=current_user(), reason=body["reason"])


@blp.route("/users/<username>/reactivate", methods=["POST"])
@requires("user.manage")
@blp.arguments(Reason)
@blp.response(200, UserOut)
def reactivate_user(body, username: str):
    """Reactivate a deactivated account under its old id (409 `user_active` if it is active)."""
    return users.reactivate(runtime(), username, by=current_user(), reason=body["reason"])


@blp.route("/users/<username>/unlock", methods=["POST"])
@requires("user.manage")
@blp.arguments(Reason)
@blp.response(204)
def unlock_user(body, username: str):
    """Unlock an account locked after repeated failed logins at once (a lock also ends by
    itself after `lockout_minutes`, doubling with each further lock)."""
    users.unlock(runtime(), username, by=current_user(), reason=body["reason"])


@blp.route("/users/<username>/tokens", methods=["POST"])
@requires("user.manage")
@blp.arguments(TokenIn)
@blp.response(201, TokenOut)
def create_token(body, username: str):
    """A new API token for the account, shown once."""
    return {"token": users.create_token(runtime(), username, body["name"], by=current_user())}
