"""A batch of the signed test recipe through the API (SQLite and PostgreSQL): a weighing
signed by alice outside its alert limit (an exception), corrected with a reason (the
performer's signature superseded), and — for ``done_batch`` — the witnessed transfer
(sv's signature), so the batch is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import PASSWORD, approval

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
ME = {"username": "alice", "password": PASSWORD}
SV = {"username": "sv", "password": PASSWORD}
BATCH = "EXP-1"


def task(client, bpmn_id: str) -> str:
    return {t["bpmn_id"]: t for t in client.get(f"/api/batches/{BATCH}/tasks").json}[bpmn_id]["id"]


def complete(client, bpmn_id: str, data: dict, **extra):
    r = client.post(
        f"/api/batches/{BATCH}/tasks/{task(client, bpmn_id)}/complete", json={"data": data, "signature": ME, **extra}
    )
    assert r.status_code == 200, r.json
    return r.json


@pytest.fixture
def running_batch(client):
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    r = client.post(
        "/api/recipes", json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms}
    )
    assert r.status_code == 201, r.json
    r = client.post(
        f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
    )
    assert r.status_code == 200
    r = client.post("/api/batches", json={"recipe": "signed_steps", "batch_id": BATCH, "parameters": {"lot": "L-7"}})
    assert r.status_code == 201, r.json
    complete(client, "weigh", {"mass_g": 115, "comment": "scale drift"})  # alert limit 90..110
    r = client.post(
        f"/api/batches/{BATCH}/steps/1/corrections",
        json={"field": "comment", "value": "balance B-12 drifted", "reason": "typo in comment", "signature": ME},
    )
    assert r.status_code == 201, r.json
    return client


@pytest.fixture
def done_batch(running_batch):
    complete(running_batch, "transfer", {"transferred": True}, witness=SV)
    assert running_batch.get(f"/api/batches/{BATCH}").json["state"] == "complete"
    return running_batch
