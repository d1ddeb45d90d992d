"""PostgreSQL with the application role (docs/operations.md): the role takes the backup
(it may read every table), the owner restores it over a record (``--force``), the role
gets its rights back — writing, and still no UPDATE of the record — and the trail verifies."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from engine import audit, backup, restore
from engine.append_only import grant_app_role
from tests.support import make_runtime

from .conftest import records

PLANT = ("BK-1", "BK-2", "BK-3")


@pytest.fixture
def app_role(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("roles and privileges are PostgreSQL's")
    role = f"batchline_app_{uuid.uuid4().hex[:8]}"
    yield role
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    admin.dispose()


def test_the_app_role_backs_up_and_the_owner_restores(plant, db_url, app_role, tmp_path):
    grant_app_role(plant.db, app_role)
    with plant.db.begin() as conn:
        conn.execute(text(f'ALTER ROLE "{app_role}" LOGIN'))
    before = records(plant, PLANT)
    app_url = make_url(db_url).set(username=app_role).render_as_string(hide_password=False)
    key = plant.settings.audit_key_file
    app = make_runtime(app_url, audit_key_file=key)
    try:
        taken = backup.take(app, tmp_path / "bk", user="os:test")
        assert taken["audit_head"]["id"] > 0
    finally:
        app.close()

    owner_run = make_runtime(app_url, audit_key_file=key, migration_database_url=db_url, database_app_role=app_role)
    try:
        out = restore.restore(owner_run, tmp_path / "bk", user="os:test", force=True)
        assert out["verify"]["ok"], out["verify"]["problems"]
        assert records(owner_run, PLANT) == before
        with owner_run.transaction() as s:  # the restore entry was written as the application role
            assert audit.verify(s, settings=owner_run.settings, anchors=True).ok
        with pytest.raises(DBAPIError, match="permission denied"):
            with owner_run.db.begin() as conn:
                conn.execute(text("UPDATE step SET \"user\" = 'mallory'"))
    finally:
        owner_run.close()
