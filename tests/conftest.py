"""Shared fixtures: a Batchline runtime on SQLite and on PostgreSQL, and the web app on it.

Every test that takes ``rt`` (a bare runtime) or ``runtime`` (one with the test people of
``tests.support.ACCOUNTS``) runs twice, once per database. PostgreSQL is reached at
``BATCHLINE_TEST_PG_URL`` (default: the local server, user postgres); each test run gets
a database of its own. Off CI an unreachable PostgreSQL skips those tests, and the run
ends with a line saying so; with ``CI=true`` it fails the run, so a green CI always means
both databases passed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine import users
from engine.audit.keys import ANCHOR_FILE
from tests.support import ACCOUNTS, IN_CI, PASSWORD, PG_ADMIN_URL, audit_dir_of, make_runtime

# A shell set up for a real install (BATCHLINE_DATABASE_URL, BATCHLINE_USER, ...) must not
# steer the tests: they build their settings themselves. Test knobs stay.
for _name in [n for n in os.environ if n.startswith("BATCHLINE_")]:
    if _name not in {"BATCHLINE_TEST_PG_URL", "BATCHLINE_CHROMIUM"}:
        del os.environ[_name]

_PG_SKIPPED: list[str] = []


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
        _PG_SKIPPED.append(message)
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
            # the append-only triggers refuse TRUNCATE; emptying a test database is what
            # a superuser restoring an empty backup does (replica mode skips triggers)
            conn.execute(text("SET LOCAL session_replication_role = replica"))
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
    audit_dir_of(url).joinpath(ANCHOR_FILE).unlink(missing_ok=True)  # an empty database has no anchors
    return url


@pytest.fixture
def rt(db_url):
    """A bare runtime: an empty, migrated database."""
    runtime = make_runtime(db_url)
    yield runtime
    runtime.close()


@pytest.fixture
def runtime(db_url):
    """A runtime with the test people (``tests.support.ACCOUNTS``, all with ``PASSWORD``),
    a small request limit and no job retries, as the web, CLI and analytics API tests use."""
    rt = make_runtime(db_url, max_request_bytes=200_000, job_max_attempts=1)
    for name, roles in ACCOUNTS.items():
        users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
    yield rt
    rt.close()


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


class _Tokens(dict):
    """Authorization headers by user id, an API token made on first use (any of ACCOUNTS)."""

    def __init__(self, rt):
        super().__init__()
        self.rt = rt

    def __missing__(self, name: str) -> dict[str, str]:
        self[name] = {"Authorization": "Bearer " + users.create_token(self.rt, name, "tests", by="test")}
        return self[name]


@pytest.fixture
def client(app):
    """A test client that is alice unless a request says otherwise. ``client.auth[name]``
    is the Authorization header of any test account (alice; quentin, qa, qa2: QA people;
    op: operator; sv: supervisor), made on first use."""
    rt = app.extensions["batchline"]
    c = app.test_client()
    c.auth = _Tokens(rt)
    c.environ_base["HTTP_AUTHORIZATION"] = c.auth["alice"]["Authorization"]
    return c


@pytest.fixture
def anon(app):
    return app.test_client()


def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Say it loudly when PostgreSQL was skipped: a green run then covered SQLite only."""
    if _PG_SKIPPED:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED: this run covered SQLite only", red=True)
        terminalreporter.write_line(_PG_SKIPPED[0])
