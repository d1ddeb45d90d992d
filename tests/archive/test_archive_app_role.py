"""On PostgreSQL in production the application runs as a role without UPDATE, DELETE or
TRUNCATE on the append-only tables (``batchline db upgrade --grant-to``): archiving works
as that role, and the role still cannot change or remove an archive's row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from engine import archive, audit
from engine.append_only import grant_app_role
from engine.models import WorkflowTask
from tests.support import make_runtime


@pytest.fixture
def app_role(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("roles and privileges are PostgreSQL's")
    role = f"batchline_app_{uuid.uuid4().hex[:8]}"
    yield role
    eng = create_engine(db_url)
    with eng.begin() as conn:
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
    eng.dispose()


def test_the_application_role_archives_and_cannot_undo_it(plant, runtime, db_url, app_role, archive_dir):
    plant.start("R-1")
    plant.decide("R-1")
    grant_app_role(runtime.db, app_role)
    with runtime.db.begin() as conn:
        conn.execute(text(f'ALTER ROLE "{app_role}" LOGIN'))
    app_url = make_url(db_url).set(username=app_role).render_as_string(hide_password=False)
    app = make_runtime(app_url, audit_key_file=runtime.settings.audit_key_file, archive_dir=str(archive_dir))
    try:
        out = archive.run(app, by="system", before=datetime.now(UTC) + timedelta(days=1))
        assert [a["batch_id"] for a in out["archived"]] == ["R-1"], out
        with app.transaction() as s:
            assert s.scalar(select(func.count()).select_from(WorkflowTask)) == 0
        for sql in ("UPDATE archived_batch SET location = 'x'", "DELETE FROM archived_batch"):
            with pytest.raises(Exception, match="permission denied|append_only"):
                with app.transaction() as s:
                    s.execute(text(sql))
        with app.transaction() as s:
            assert audit.verify(s, settings=app.settings).ok
    finally:
        app.close()
