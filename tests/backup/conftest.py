"""A plant to back up (batches with steps, signatures, a correction, an exception, a
witnessed step — made through the API as people do), and fresh target databases to
restore into: a new SQLite file, or a new PostgreSQL database per test."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.audit.keys import key_path
from engine.exports import record
from tests.support import PASSWORD, PG_ADMIN_URL, approval, make_runtime

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
ME = {"username": "alice", "password": PASSWORD}
SV = {"username": "sv", "password": PASSWORD}


def _complete(client, batch: str, bpmn_id: str, data: dict, **extra) -> None:
    tasks = {t["bpmn_id"]: t for t in client.get(f"/api/batches/{batch}/tasks").json}
    r = client.post(
        f"/api/batches/{batch}/tasks/{tasks[bpmn_id]['id']}/complete", json={"data": data, "signature": ME, **extra}
    )
    assert r.status_code == 200, r.json


@pytest.fixture
def plant(client):
    """Three batches of the signed recipe: one complete (an alert-limit exception, a
    correction, a witnessed transfer), one running with an exception, one just started."""
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    r = client.post(
        "/api/recipes", json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms}
    )
    assert r.status_code == 201, r.json
    r = client.post(
        f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
    )
    assert r.status_code == 200, r.json
    for batch in ("BK-1", "BK-2", "BK-3"):
        r = client.post(
            "/api/batches", json={"recipe": "signed_steps", "batch_id": batch, "parameters": {"lot": "L-7"}}
        )
        assert r.status_code == 201, r.json
    _complete(client, "BK-1", "weigh", {"mass_g": 115, "comment": "scale drift"})  # alert limit 90..110
    r = client.post(
        "/api/batches/BK-1/steps/1/corrections",
        json={"field": "comment", "value": "balance B-12 drifted", "reason": "typo in comment", "signature": ME},
    )
    assert r.status_code == 201, r.json
    _complete(client, "BK-1", "transfer", {"transferred": True}, witness=SV)
    _complete(client, "BK-2", "weigh", {"mass_g": 120, "comment": "high"})
    return client.application.extensions["batchline"]


def records(rt, batch_ids) -> dict[str, str]:
    """Each batch's record content hash (engine.exports.record)."""
    return {b: record.build(rt, b)["content_hash"] for b in batch_ids}


@pytest.fixture
def fresh(db_url, tmp_path, request):
    """A new, empty, migrated database of the same kind as ``db_url`` (its URL), whose
    audit key is the source's key put back (as a key kept with the secrets is)."""
    made: list[str] = []

    def make(with_key: bool = True) -> str:
        if db_url.startswith("sqlite"):
            folder = tmp_path / f"target-{uuid.uuid4().hex[:6]}"
            folder.mkdir()
            shutil.copy(request.getfixturevalue("sqlite_template"), folder / "batchline.db")
            url = f"sqlite:///{folder / 'batchline.db'}"
        else:
            name = f"batchline_restore_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
            made.append(name)
        source, target = make_runtime(db_url), make_runtime(url)
        try:
            target.create_schema()
            here = key_path(target.settings)
            here.parent.mkdir(parents=True, exist_ok=True)
            here.unlink(missing_ok=True)
            here.with_name("audit-anchors.jsonl").unlink(missing_ok=True)
            if with_key:
                shutil.copyfile(key_path(source.settings), here)
                here.chmod(0o600)
        finally:
            source.close()
            target.close()
        return url

    yield make
    if made:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
