"""Shared fixtures: a Batchline runtime on SQLite and on PostgreSQL.

Every test that takes ``rt`` runs twice, once per database. PostgreSQL is reached at
``BATCHLINE_TEST_PG_URL`` (default: the local server, user postgres); each test run gets
a database of its own. Off CI an unreachable PostgreSQL skips those tests with a reason;
with ``CI=true`` it fails the run, so a green CI always means both databases passed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

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


def make_runtime(url: str, **overrides) -> Runtime:
    settings = load_settings(database_url=url, **{**TEST_SETTINGS, **overrides})
    return Runtime(settings, load_connectors=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """One migrated SQLite file, copied for each test (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "batchline.db"
    rt = make_runtime(f"sqlite:///{path}")
    rt.create_schema()
    rt.close()
    return path


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test run, migrated once, dropped at the end."""
    name = f"batchline_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    rt = make_runtime(url)
    rt.create_schema()
    rt.close()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'")
            )
        ]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "batchline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _truncate(url)
    return url


@pytest.fixture
def rt(db_url):
    runtime = make_runtime(db_url)
    yield runtime
    runtime.close()


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)


def read_recipe(*names: str) -> dict[str, bytes]:
    return {n: (RECIPES / n).read_bytes() for n in names}
