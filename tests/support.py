"""What the tests share besides fixtures: how a test runtime is made, the test people
and the recipe files (fixtures themselves are in ``tests/conftest.py``)."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from engine.config import load_settings
from engine.runtime import Runtime
from engine.users import Person

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "recipes"
PG_ADMIN_URL = os.environ.get("BATCHLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# cheap password hashing: tests do not defend against offline guessing. The secret key is
# random per test process (never a key written in the repository, which the server refuses;
# the key file made on first start is tested in tests/web/test_sessions_and_secrets.py)
TEST_SETTINGS = dict(
    job_backoff_seconds=0.01,
    worker_poll_seconds=0.05,
    webhook_urls=(),
    argon2_time_cost=1,
    argon2_memory_kib=1024,
    secret_key=secrets.token_urlsafe(48),
)

#: the password of every account in ``ACCOUNTS``
PASSWORD = "correct horse battery staple"
#: accounts every web/CLI/analytics-API test has: user id -> roles
#: ("alice" does everything except admin; "quentin" is a second QA person: author ≠ approver)
ACCOUNTS = {
    "alice": ["operator", "supervisor", "qa", "service"],
    "quentin": ["qa"],
    "qa": ["qa"],
    "qa2": ["qa"],
    "op": ["operator"],
    "sv": ["supervisor"],
    "uu": ["operator", "supervisor", "qa", "admin"],
}


#: the roles of the people engine tests name by user id (the engine trusts its caller's
#: authentication; it decides what their roles allow, engine.duties)
ROLE_PREFIXES = {"op.": ("operator",), "sup.": ("supervisor",), "qa.": ("qa",)}


def person(username: str) -> Person:
    """An already-authenticated person, roles from the user id's prefix (op., sup., qa.)."""
    roles = next((r for prefix, r in ROLE_PREFIXES.items() if username.startswith(prefix)), ())
    return Person(username, username.title(), roles)


def audit_dir_of(url: str) -> Path:
    """Where a PostgreSQL test database's audit key and anchors live (one directory per
    database, shared by the test and the child processes it starts). A SQLite database
    keeps them beside its file, as in production."""
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    return Path(tempfile.gettempdir()) / "batchline-test-audit" / name


def make_runtime(url: str, **overrides) -> Runtime:
    """The one way tests build a Runtime: test settings (fast hashing, no webhooks) plus
    what a test needs to change. ``tests/conftest.py`` clears exported ``BATCHLINE_*``
    settings first, so a shell set up for a real install cannot redirect a test."""
    if not url.startswith("sqlite") and "audit_key_file" not in overrides:
        overrides["audit_key_file"] = str(audit_dir_of(url) / "audit.key")
    settings = load_settings(database_url=url, **{**TEST_SETTINGS, **overrides})
    return Runtime(settings, load_connectors=False)


def read_recipe(*names: str) -> dict[str, bytes]:
    return {n: (RECIPES / n).read_bytes() for n in names}


def browser_login(client, username: str) -> None:
    """Log ``username`` in on a Flask test client the way the login page does (a
    server-side session and its token in the cookie), without typing the password."""
    from engine import sessions

    rt = client.application.extensions["batchline"]
    token = sessions.open_session(rt, username)
    with client.session_transaction() as cookie:
        cookie.clear()
        cookie["sid"] = token
        cookie["csrf"] = secrets.token_urlsafe(32)
        cookie["signed_once"] = False


def idle_sessions(rt, username: str, seconds: float) -> None:
    """Move the last request of ``username``'s browser sessions ``seconds`` back, as if
    the tablet had been left alone that long (the timeout is enforced on the server)."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from engine.models import LoginSession, User

    with rt.transaction() as s:
        user_id = s.scalars(select(User.id).where(User.username == username)).one()
        for row in s.scalars(select(LoginSession).where(LoginSession.user_id == user_id)):
            s.execute(
                update(LoginSession)
                .where(LoginSession.id == row.id)
                .values(last_seen_at=row.last_seen_at - timedelta(seconds=seconds))
            )


def approved_recipe(
    rt, files: dict[str, bytes], *, forms=None, user: str = "qa.lead", approver: str = "qa.approver", **kw
):
    """Import a recipe version and approve it as a fresh installation does: e-signed by a
    QA person other than its author (``engine.recipe_lifecycle.approve``); it is effective
    at once. The same content again is the same (already approved) version."""
    from engine import recipe_lifecycle, recipes, users

    rv = recipes.import_recipe(rt, files, forms=forms, user=user, **kw)
    if rv.status in ("draft", "in_review"):
        # engine tests name people by prefix (qa.x); web tests by their account (quentin)
        signer = person(approver) if "." in approver else users.person(rt, approver)
        rv = recipe_lifecycle.approve(rt, rv.id, signer=signer, reason="reviewed (test)")
    return rv


def approval(who: str, reason: str = "reviewed") -> dict:
    """The body of ``POST /api/recipes/{id}/approve``: ``who``'s e-signature (both
    components, meaning Approved) and the reason."""
    return {"signature": {"username": who, "password": PASSWORD, "meaning": "Approved"}, "reason": reason}
