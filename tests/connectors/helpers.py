"""What the connector tests share: the test recipes of this folder, a real Batchline HTTP
server on the test's runtime, the demo partner LIMS and a LIMS connector pointing at it."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import select
from werkzeug.serving import make_server

from engine import connector_config, jobs, users
from engine.models import AuditEvent
from tests.support import approved_recipe

HERE = Path(__file__).resolve().parent
#: the LIMS connector's secret in these tests (written here only; never in a real plant)
LIMS_SECRET = "lims-shared-secret-4f0c2b9e7d1a"


def recipe(rt, name: str):
    return approved_recipe(rt, {name: (HERE / name).read_bytes()}, user="qa.lead")


@contextmanager
def batchline_server(rt):
    from web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def service_token(rt, name: str = "svc.lims") -> str:
    users.create_user(rt, name, "LIMS service", ["service"], by="test", password="correct horse battery staple")
    return users.create_token(rt, name, "lims", by="test")


def add_lims(rt, endpoint: str, **fields) -> dict:
    return connector_config.add(
        rt,
        name="lims",
        type="lims-rest",
        endpoint=endpoint,
        secret=LIMS_SECRET,
        by="admin.x",
        timeout_seconds=2.0,
        **fields,
    )


def work_until(rt, done, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        if jobs.run_due(rt, limit=50) == 0:
            time.sleep(0.05)


def audit_text(rt) -> str:
    with rt.transaction() as s:
        rows = s.scalars(select(AuditEvent)).all()
        return json.dumps([[r.action, r.field, r.old, r.new] for r in rows], default=str)
