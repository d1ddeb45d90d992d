"""Fixtures for the web API and CLI tests: a fresh database per test (SQLite and
PostgreSQL, through the shared ``db_url`` fixture), an app on it, and recipes loaded
through the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import users
from engine.config import load_settings
from engine.runtime import Runtime
from web.app import create_app

TESTS = Path(__file__).resolve().parent.parent
LOOP_BPMN = (TESTS / "recipes" / "loop.bpmn").read_text(encoding="utf-8")
EXCHANGE_BPMN = (TESTS / "web" / "exchange.bpmn").read_text(encoding="utf-8")
#: filled in per test with a bearer token of "alice" (operator, supervisor, qa, service)
USER: dict[str, str] = {}
#: a second QA person, to approve what alice imported (author ≠ approver)
QA2: dict[str, str] = {}
PASSWORD = "correct horse battery staple"
#: accounts every web/CLI test has: user id -> roles
ACCOUNTS = {
    "alice": ["operator", "supervisor", "qa", "service"],
    "quentin": ["qa"],
    "qa": ["qa"],
    "qa2": ["qa"],
    "op": ["operator"],
    "sv": ["supervisor"],
    "uu": ["operator", "supervisor", "qa", "admin"],
}


@pytest.fixture
def runtime(db_url):
    rt = Runtime(
        load_settings(
            database_url=db_url,
            max_request_bytes=200_000,
            job_max_attempts=1,
            webhook_urls=(),
            argon2_time_cost=1,
            argon2_memory_kib=1024,
        ),
        load_connectors=False,
    )
    for name, roles in ACCOUNTS.items():
        users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
    USER.clear()
    USER["Authorization"] = "Bearer " + users.create_token(rt, "alice", "tests", by="test")
    QA2.clear()
    QA2["Authorization"] = "Bearer " + users.create_token(rt, "quentin", "tests", by="test")
    yield rt
    rt.close()


@pytest.fixture
def app(runtime):
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    """A client that is alice unless a request says otherwise."""
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = USER["Authorization"]
    return c


@pytest.fixture
def anon(app):
    return app.test_client()


def import_recipe(client, xml: str = LOOP_BPMN, *, name: str = "loop.bpmn", approve: bool = True) -> dict:
    r = client.post("/api/recipes", json={"bpmn": {name: xml}}, headers=USER)
    assert r.status_code == 201, r.json
    if approve:  # by another QA person: the author never approves
        a = client.post(f"/api/recipes/{r.json['id']}/approve", json={"reason": "reviewed"}, headers=QA2)
        assert a.status_code == 200, a.json
        return a.json
    return r.json


def start_batch(client, recipe: str = "sampling_loop", batch_id: str = "B-001", parameters=None) -> dict:
    r = client.post(
        "/api/batches", json={"recipe": recipe, "batch_id": batch_id, "parameters": parameters or {}}, headers=USER
    )
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
