"""The qualifications page and what My tasks and the task page say about a missing
qualification (server-rendered pages on the Flask test client, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import qualifications, users
from tests.quals.recipe import QUAL, install
from tests.support import PASSWORD, browser_login


@pytest.fixture
def page(app, runtime):
    users.create_user(runtime, "tr", "Tess Trainer", ["trainer"], by="test", password=PASSWORD)
    c = app.test_client()
    browser_login(c, "tr")
    with c.session_transaction() as cookie:
        c.csrf = cookie["csrf"]
    return c


def _post(c, action: str, **form):
    data = {"csrf_token": c.csrf, "signer_id": "tr", "password": PASSWORD, **form}
    return c.post(f"/qualifications/{action}", data=data)


def test_a_trainer_grants_and_revokes_on_the_page(page, runtime):
    assert b"Sign and grant" in page.get("/qualifications/").data
    until = (qualifications.today() + timedelta(days=30)).isoformat()
    r = _post(page, "grant", username="op", qualification=QUAL, valid_until=until)
    assert r.status_code == 303, r.data[:2000]
    shown = page.get("/qualifications/").data.decode()
    assert QUAL in shown and until in shown and "current" in shown
    r = _post(page, "grant", username="tr", qualification=QUAL, valid_until=until, password="wrong")
    assert r.status_code == 403 and b"own qualification" in r.data
    r = _post(page, "revoke", username="op", qualification=QUAL, reason="left the team")
    assert r.status_code == 303
    assert "revoked" in page.get("/qualifications/").data.decode()
    assert len(qualifications.list_for(runtime, "op")["history"]) == 2


def test_an_operator_reads_but_cannot_record(app, runtime):
    c = app.test_client()
    browser_login(c, "op")
    r = c.get("/qualifications/")
    assert r.status_code == 200 and b"Sign and grant" not in r.data
    with c.session_transaction() as cookie:
        csrf = cookie["csrf"]
    r = c.post("/qualifications/grant", data={"csrf_token": csrf, "username": "op", "qualification": QUAL})
    assert r.status_code == 403


def test_my_tasks_and_the_task_page_say_why(client, app, runtime):
    install(runtime)
    assert client.post("/api/batches", json={"recipe": "aseptic_steps", "batch_id": "AS-9"}).status_code == 201
    c = app.test_client()
    browser_login(c, "op")
    home = c.get("/").data.decode()
    assert f"blocked: needs {QUAL} (not held)" in home
    task = next(t for t in client.get("/api/batches/AS-9/tasks").json if t["bpmn_id"] == "gown")
    shown = c.get(f"/batches/AS-9/tasks/{task['id']}").data.decode()
    assert f"it needs {QUAL} (not held)" in shown
