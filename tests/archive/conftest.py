"""Batches of the signed test recipe through the API (SQLite and PostgreSQL), run by op and
witnessed by sv, then released or rejected by QA: what the archive tests archive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import PASSWORD, approval

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def sig(user: str, meaning: str | None = None) -> dict:
    out = {"username": user, "password": PASSWORD}
    if meaning:
        out["meaning"] = meaning
    return out


class Plant:
    """Starts and runs batches of the signed recipe through the API."""

    def __init__(self, client):
        self.client = client
        forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
        r = client.post(
            "/api/recipes", json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms}
        )
        assert r.status_code == 201, r.json
        ok = client.post(
            f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
        )
        assert ok.status_code == 200, ok.json

    def complete(self, batch_id: str, bpmn_id: str, data: dict, witness: str | None = None) -> dict:
        tasks = {t["bpmn_id"]: t["id"] for t in self.client.get(f"/api/batches/{batch_id}/tasks").json}
        body = {"data": data, "signature": sig("op")}
        if witness:
            body["witness"] = sig(witness)
        r = self.client.post(
            f"/api/batches/{batch_id}/tasks/{tasks[bpmn_id]}/complete", json=body, headers=self.client.auth["op"]
        )
        assert r.status_code == 200, r.json
        return r.json

    def start(self, batch_id: str, mass: float = 100, *, finish: bool = True) -> list[dict]:
        r = self.client.post("/api/batches", json={"recipe": "signed_steps", "batch_id": batch_id})
        assert r.status_code == 201, r.json
        raised = self.complete(batch_id, "weigh", {"mass_g": mass, "comment": "ok"})["exceptions"]
        if finish:
            raised += self.complete(batch_id, "transfer", {"transferred": True}, witness="sv")["exceptions"]
        return raised

    def dispose(self, batch_id: str, exc_id: int, user: str = "quentin"):
        return self.client.post(
            f"/api/batches/{batch_id}/exceptions/{exc_id}/disposition",
            json={"decision": "accept", "justification": "within the validated range", "signature": sig(user)},
            headers=self.client.auth[user],
        )

    def decide(self, batch_id: str, decision: str = "release", user: str = "qa2"):
        meaning = "Released" if decision == "release" else "Rejected"
        r = self.client.post(
            f"/api/batches/{batch_id}/{decision}",
            json={"signature": sig(user, meaning), "comment": "record reviewed by exception"},
            headers=self.client.auth[user],
        )
        assert r.status_code == 200, r.json
        return r.json


@pytest.fixture
def plant(client):
    return Plant(client)


@pytest.fixture(autouse=True)
def archive_dir(request, tmp_path):
    """Each test its own archive folder (a PostgreSQL test database's key folder is shared)."""
    from dataclasses import replace

    if "runtime" not in request.fixturenames:
        return None
    rt = request.getfixturevalue("runtime")
    rt.settings = replace(rt.settings, archive_dir=str(tmp_path / "archive"))
    return tmp_path / "archive"
