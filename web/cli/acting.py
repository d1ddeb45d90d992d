"""Who acts, and with which password.

A command that changes data authenticates the acting person (user id and password,
both components, as at a first signing) and checks the permission matrix, as the API
does. ``--user`` (``--by`` for account administration) defaults to ``$BATCHLINE_USER``.
``$BATCHLINE_PASSWORD`` is that person's password and nobody else's: used for another
user it would be a wrong password that counts toward *their* lockout (a newcomer who
exported admin's password and ran ``--user qa.quinn`` locked qa.quinn out). So for
anyone else the password is asked on the terminal, and without a terminal the command
fails at once — before any sign-in is attempted or counted.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys

import click

from engine.errors import BatchlineError

from .context import runtime

USER_ENV = "BATCHLINE_USER"
PASSWORD_ENV = "BATCHLINE_PASSWORD"
WITNESS_PASSWORD_ENV = "BATCHLINE_WITNESS_PASSWORD"
NEW_PASSWORD_ENV = "BATCHLINE_NEW_PASSWORD"

user_option = click.option(
    "--user",
    required=True,
    envvar=USER_ENV,
    help=f"Who is acting (recorded in the audit trail). Default: ${USER_ENV}. "
    f"The password is ${PASSWORD_ENV} when acting as ${USER_ENV}, else asked on the terminal.",
)

by_option = click.option(
    "--by",
    envvar=USER_ENV,
    help=f"The administrator acting. Default: ${USER_ENV} (password: ${PASSWORD_ENV} when acting as ${USER_ENV}, "
    "else asked on the terminal).",
)

reason_option = click.option("--reason", required=True, help="Why (recorded in the audit trail).")


def on_terminal() -> bool:
    """A person can be asked (stdin is a terminal, not a pipe or a script)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):  # closed or replaced stdin
        return False


def _no_password(user: str, why: str, export: str) -> BatchlineError:
    return BatchlineError(
        f"no password for {user}: {why}; export {export} or run on a terminal", code="password_required"
    )


def password_of(user: str) -> tuple[str, bool]:
    """The acting user's password and whether it came from the environment."""
    env_user = os.environ.get(USER_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if password is not None and env_user == user:
        return password, True
    if on_terminal():
        return click.prompt(f"Password for {user}", hide_input=True, err=True), False
    if password is None:
        why = f"{PASSWORD_ENV} is not set"
    elif not env_user:
        why = f"{PASSWORD_ENV} is used only for {USER_ENV}, which is not set"
    else:
        why = f"{PASSWORD_ENV} is for {USER_ENV}={env_user}"
    raise _no_password(user, why, f"{USER_ENV}={user} {PASSWORD_ENV}=...")


def cli_client() -> str:
    """Where a CLI sign-in comes from (rate limit and audit trail): the operating-system
    user on this host."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers)
        who = "unknown"
    return f"cli:{who}@{socket.gethostname()}"


def _sign_in(user: str, password: str, from_env: str | None):
    from engine import users

    try:
        return users.authenticate(runtime(), user, password, purpose="signature", client=cli_client())
    except users.AuthFailed as exc:
        if from_env and exc.code == users.AuthFailed.code:
            raise users.AuthFailed(f"{exc.message} (the password came from {from_env})", details=exc.details) from None
        raise


def acting(user: str, action: str):
    """The authenticated person, allowed to do ``action``."""
    from engine import permissions

    password, from_env = password_of(user)
    person = _sign_in(user, password, PASSWORD_ENV if from_env else None)
    permissions.check(person, action)
    return person


def witness_password(user: str) -> tuple[str, str | None]:
    """The witness's password (``$BATCHLINE_WITNESS_PASSWORD`` or asked) and where it came
    from; refused at once without a terminal. Nothing is checked yet."""
    password = os.environ.get(WITNESS_PASSWORD_ENV)
    if password is not None:
        return password, WITNESS_PASSWORD_ENV
    if not on_terminal():
        raise _no_password(f"witness {user}", f"{WITNESS_PASSWORD_ENV} is not set", f"{WITNESS_PASSWORD_ENV}=...")
    return click.prompt(f"Witness password for {user}", hide_input=True, err=True), None


def witness(user: str, password: tuple[str, str | None] | None = None):
    """The witness of a step, signed in with their own password (see ``witness_password``)."""
    secret, source = password or witness_password(user)
    return _sign_in(user, secret, source)


def new_password(username: str) -> str:
    """A new password for ``username``: ``$BATCHLINE_NEW_PASSWORD``, else asked twice."""
    password = os.environ.get(NEW_PASSWORD_ENV)
    if password is not None:
        return password
    if not on_terminal():
        raise BatchlineError(
            f"no new password for {username}: {NEW_PASSWORD_ENV} is not set; "
            f"export {NEW_PASSWORD_ENV}=... or run on a terminal",
            code="password_required",
        )
    return click.prompt(f"New password for {username}", hide_input=True, confirmation_prompt=True, err=True)


def admin(by: str | None) -> str:
    """The acting administrator; on an empty system the first account needs none."""
    from sqlalchemy import func, select

    from engine.models import User

    with runtime().transaction() as s:
        empty = s.scalar(select(func.count()).select_from(User)) == 0
    if empty:
        return "bootstrap"
    if not by:
        raise BatchlineError(f"say which administrator is acting: --by USER (or ${USER_ENV})", code="auth_required")
    return acting(by, "user.manage").username
