"""What the tests share besides fixtures: how a test runtime is made, the test people
and the recipe files (fixtures themselves are in ``tests/conftest.py``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from engine.config import load_settings
from engine.runtime import Runtime

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "recipes"
PG_ADMIN_URL = os.environ.get("BATCHLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# cheap password hashing: tests do not defend against offline guessing
TEST_SETTINGS = dict(
    job_backoff_seconds=0.01, worker_poll_seconds=0.05, webhook_urls=(), argon2_time_cost=1, argon2_memory_kib=1024
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
