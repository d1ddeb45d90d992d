"""A supervisor starts a batch from the browser (the recipe's effective version, an id,
parameters); operators cannot; the engine's refusals are shown and start nothing."""

from __future__ import annotations

import uuid

import pytest

from engine import batches

from .test_ui_pages import log_in, token


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def start(client, **form):
    page = client.get("/batches/new")
    assert page.status_code == 200, page.text
    return client.post("/batches/new", data={"csrf_token": token(page.text), **form})


def test_a_supervisor_starts_a_batch_with_parameters(client, runtime):
    log_in(client, "sup.carl")
    listing = client.get("/batches").text
    assert 'id="start-batch"' in listing
    page = client.get("/batches/new").text
    assert "buffer_prep" in page and "qa_batch_release" not in page  # QA's own flows are the engine's to start
    batch_id = f"BUF-UI-{uuid.uuid4().hex[:6].upper()}"
    r = start(
        client, recipe="buffer_prep", batch_id=batch_id, parameters="target_ph = 7.1\nurgent = true\nnote = first"
    )
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/batches/{batch_id}")
    shown = batches.get_batch(runtime, batch_id)
    assert shown["state"] == "running" and shown["created_by"] == "sup.carl"
    assert shown["parameters"] == {"target_ph": 7.1, "urgent": True, "note": "first"}
    assert f"Batch {batch_id} started" in client.get(r.headers["Location"]).text
    again = start(client, recipe="buffer_prep", batch_id=batch_id, parameters="")  # a second click
    assert again.status_code == 422 and batch_id in again.text
    assert len([b for b in batches.list_batches(runtime) if b["batch_id"] == batch_id]) == 1


@pytest.mark.parametrize(
    "form, said",
    [
        ({"recipe": "buffer_prep", "batch_id": "bad id with spaces", "parameters": ""}, "batch"),
        ({"recipe": "buffer_prep", "batch_id": "BUF-P1", "parameters": "no equals sign"}, "name = value"),
        ({"recipe": "buffer_prep", "batch_id": "BUF-P2", "parameters": "x = nan"}, "finite"),
        ({"recipe": "no_such_recipe", "batch_id": "BUF-P3", "parameters": ""}, "no_such_recipe"),
        ({"recipe": "buffer_prep", "batch_id": "B" * 5000, "parameters": ""}, ""),
        ({"recipe": "buffer_prep", "batch_id": "BUF-P4", "parameters": "p = 1\n" * 60}, "at most"),
    ],
)
def test_refusals_are_shown_and_start_nothing(client, runtime, form, said):
    log_in(client, "sup.carl")
    before = len(batches.list_batches(runtime))
    r = start(client, **form)
    assert r.status_code in (413, 422), r.status_code
    if r.status_code == 422:
        assert 'id="start-error"' in r.text and said.lower() in r.text.lower()
    assert len(batches.list_batches(runtime)) == before


def test_operators_cannot_start_and_the_form_needs_its_csrf_token(client):
    log_in(client, "op.anna")
    assert 'id="start-batch"' not in client.get("/batches").text
    assert client.get("/batches/new").status_code == 403
    assert client.post("/batches/new", data={"recipe": "buffer_prep", "batch_id": "BUF-X"}).status_code in (400, 403)


def test_the_form_needs_its_csrf_token(client, runtime):
    log_in(client, "sup.carl")
    r = client.post("/batches/new", data={"recipe": "buffer_prep", "batch_id": "BUF-NOCSRF"})
    assert r.status_code == 400
    assert not [b for b in batches.list_batches(runtime) if b["batch_id"] == "BUF-NOCSRF"]


def test_qa_flows_are_not_offered_to_start(rt):
    """QA's release, deviation and approval flows are started by the engine, about something."""
    import workflows
    from engine import recipes
    from web.app import create_app
    from web.ui.start_batch import startable

    for key in ("qa_batch_release", "tpl_hold_time"):
        entry = workflows.get(key)
        recipes.import_recipe(rt, dict(entry.files), forms=entry.forms, user="qa.x", recipe=key, approve=True)
    with create_app(runtime=rt).app_context():
        offered = {r["recipe"] for r in startable()}
    assert offered == {"tpl_hold_time"}
