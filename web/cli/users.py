"""``batchline user``: people and service accounts (ids are never reused: deactivate,
never delete). The acting administrator is ``--by`` (default ``$BATCHLINE_USER``); on
an empty system the first account needs none."""

from __future__ import annotations

import click

from .acting import admin, by_option, new_password, reason_option
from .context import runtime
from .output import json_option, say, show
from .root import main


@main.group()
def user():
    """People and service accounts (ids are never reused: deactivate, never delete)."""


@user.command("add")
@click.argument("username")
@click.option("--name", "printed_name", required=True, help="Printed name, shown with every signature.")
@click.option("--roles", required=True, help="Comma-separated: operator, supervisor, qa, admin, service.")
@click.option("--service", is_flag=True, help="A service account (API token only, no password, signs nothing).")
@by_option
@json_option
def user_add(username, printed_name, roles, service, by):
    """Create USERNAME (a person's password is asked for, or BATCHLINE_NEW_PASSWORD)."""
    from engine import users

    actor = admin(by)
    password = None if service else new_password(username)
    show(
        users.create_user(
            runtime(),
            username,
            printed_name,
            [r.strip() for r in roles.split(",") if r.strip()],
            by=actor,
            password=password,
            kind="service" if service else "person",
        )
    )


@user.command("list")
@json_option
def user_list():
    """Every account, active or not."""
    from engine import users

    show(users.list_users(runtime()), ["username", "printed_name", "kind", "roles", "active", "locked", "locked_until"])


@user.command("token")
@click.argument("username")
@click.option("--name", "token_name", default="cli", help="What the token is for.")
@by_option
@json_option
def user_token(username, token_name, by):
    """Create an API token for USERNAME; it is printed once, only its hash is kept."""
    from engine import users

    token = users.create_token(runtime(), username, token_name, by=admin(by))
    say(token, {"username": username, "name": token_name, "token": token})


@user.command("password")
@click.argument("username")
@by_option
@json_option
def user_password(username, by):
    """Set USERNAME's password (also unlocks the account)."""
    from engine import users

    users.set_password(runtime(), username, new_password(username), by=admin(by))
    say(f"password of {username} set", {"username": username, "password_set": True})


@user.command("deactivate")
@click.argument("username")
@reason_option
@by_option
@json_option
def user_deactivate(username, reason, by):
    """Deactivate USERNAME (the id stays taken for ever; `user reactivate` undoes it). The
    last active administrator cannot be deactivated."""
    from engine import users

    account = users.set_active(runtime(), username, False, by=admin(by), reason=reason)
    say(f"{username} deactivated", account)


local_option = click.option(
    "--local",
    is_flag=True,
    help="Break glass: act as the server's operator (this machine, with the database), without an "
    "administrator's login; recorded as local-operator:<os user>@<host>.",
)


def _actor(by: str | None, local: bool) -> dict:
    """Who acts: an administrator (password checked) or, with --local, the server's operator."""
    return {"local": True} if local else {"by": admin(by)}


@user.command("unlock")
@click.argument("username")
@reason_option
@local_option
@by_option
@json_option
def user_unlock(username, reason, local, by):
    """Unlock USERNAME after a lockout at once (a lock also ends by itself after the
    configured lockout_minutes). With --local no administrator needs to log in: for the
    server's operator when every administrator is locked out."""
    from engine import users

    account = users.unlock(runtime(), username, reason=reason, **_actor(by, local))
    say(f"{username} unlocked" + (" (break glass, as the server's operator)" if local else ""), account)


@user.command("reactivate")
@click.argument("username")
@reason_option
@local_option
@by_option
@json_option
def user_reactivate(username, reason, local, by):
    """Reactivate USERNAME, deactivated earlier (same id: ids are never reused)."""
    from engine import users

    if local:
        account = users.reactivate(runtime(), username, by=users.local_operator(), reason=reason)
    else:
        account = users.reactivate(runtime(), username, by=admin(by), reason=reason)
    say(f"{username} reactivated", account)


def sync_directory(rt) -> list[dict]:
    """Bring the directory's people in step (the function a worker job can call): those
    who left, or lost every mapped group, are deactivated; roles and names follow."""
    from engine.identity import ldap_signin

    return ldap_signin.sync(rt)


@user.command("sync-directory")
@json_option
def user_sync_directory():
    """Deactivate the LDAP directory's people who left it (or lost every mapped group) and
    bring roles and names in step, all audited; prints what changed."""
    changes = sync_directory(runtime())
    lines = [
        f"{c['username']}: {c['change']}"
        + (f" ({c['reason']})" if c.get("reason") else f" {c['old']} -> {c['new']}" if c.get("new") else "")
        for c in changes
    ]
    say("\n".join(lines) if lines else "nothing to change", {"changes": changes})
