"""Recipes and batches set up through the REST API, as a client system would."""

from __future__ import annotations

from pathlib import Path

from tests.support import approval

TESTS = Path(__file__).resolve().parent.parent
LOOP_BPMN = (TESTS / "recipes" / "loop.bpmn").read_text(encoding="utf-8")
EXCHANGE_BPMN = (TESTS / "web" / "exchange.bpmn").read_text(encoding="utf-8")


def import_recipe(client, xml: str = LOOP_BPMN, *, name: str = "loop.bpmn", approve: bool = True) -> dict:
    r = client.post("/api/recipes", json={"bpmn": {name: xml}}, headers=client.auth["alice"])
    assert r.status_code == 201, r.json
    if approve:  # by another QA person: the author never approves
        a = client.post(
            f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "reviewed"), headers=client.auth["quentin"]
        )
        assert a.status_code == 200, a.json
        return a.json
    return r.json


def start_batch(client, recipe: str = "sampling_loop", batch_id: str = "B-001", parameters=None) -> dict:
    r = client.post(
        "/api/batches",
        json={"recipe": recipe, "batch_id": batch_id, "parameters": parameters or {}},
        headers=client.auth["alice"],
    )
    assert r.status_code == 201, r.json
    return r.json


def first_task(client, batch_id: str = "B-001") -> str:
    r = client.get(f"/api/batches/{batch_id}/tasks")
    assert r.status_code == 200, r.json
    return r.json[0]["id"]
