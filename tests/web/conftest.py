"""Fixtures for the web API and CLI tests: a fresh database per test (SQLite and
PostgreSQL, through the shared ``db_url`` fixture), an app on it, and recipes loaded
through the API."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import load_settings
from engine.runtime import Runtime
from web.app import create_app

TESTS = Path(__file__).resolve().parent.parent
LOOP_BPMN = (TESTS / "recipes" / "loop.bpmn").read_text(encoding="utf-8")
EXCHANGE_BPMN = (TESTS / "web" / "exchange.bpmn").read_text(encoding="utf-8")
USER = {"X-Batchline-User": "alice"}


@pytest.fixture
def runtime(db_url):
    rt = Runtime(load_settings(database_url=db_url, max_request_bytes=200_000, job_max_attempts=1,
                               webhook_urls=()), load_connectors=False)
    yield rt
    rt.close()


@pytest.fixture
def app(runtime):
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def import_recipe(client, xml: str = LOOP_BPMN, *, name: str = "loop.bpmn", approve: bool = True) -> dict:
    r = client.post("/api/recipes", json={"bpmn": {name: xml}, "approve": approve}, headers=USER)
    assert r.status_code == 201, r.json
    return r.json


def start_batch(client, recipe: str = "sampling_loop", batch_id: str = "B-001", parameters=None) -> dict:
    r = client.post("/api/batches", json={"recipe": recipe, "batch_id": batch_id, "parameters": parameters or {}},
                    headers=USER)
    assert r.status_code == 201, r.json
    return r.json


def first_task(client, batch_id: str = "B-001") -> str:
    r = client.get(f"/api/batches/{batch_id}/tasks")
    assert r.status_code == 200, r.json
    return r.json[0]["id"]


@pytest.fixture
def batch(client):
    """A running batch of the sampling loop, waiting for its first sample."""
    import_recipe(client)
    return start_batch(client)
