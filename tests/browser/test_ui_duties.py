"""Separation of duties in the browser pages (Flask's test client): QA completes and signs
a QA task and corrects QA's step; a supervisor is told a QA task is not theirs and is
refused by the engine; nobody else gets a correction link on a QA step."""

from __future__ import annotations

import itertools

from engine import batches
from tests.engine.duty_tables import recipe_files
from tests.support import approved_recipe

from .conftest import password
from .test_ui_pages import app, client, log_in, token  # noqa: F401 - fixtures

_counter = itertools.count(1)


def duties_batch(runtime) -> tuple[str, dict[str, str]]:
    files, forms = recipe_files()
    approved_recipe(runtime, files, forms=forms, user="qa.author")  # once: same content
    batch_id = f"DUI-{next(_counter):04d}"
    batches.start_batch(runtime, "duties", batch_id, user="sup.carl")
    return batch_id, {t["bpmn_id"]: t["id"] for t in batches.ready_tasks(runtime, batch_id)}


def sign_task(client, url: str, who: str):  # noqa: F811 - the fixture is a parameter elsewhere
    page = client.get(url).text
    return client.post(
        url,
        data={
            "csrf_token": token(page),
            "idempotency_key": token(page, "idempotency_key"),
            "reading": "4.2",
            "signer_id": who,
            "password": password(who),
        },
    )


def test_qa_completes_and_corrects_a_qa_step_a_supervisor_does_neither(client, runtime, app):  # noqa: F811
    batch_id, ids = duties_batch(runtime)
    url = f"/batches/{batch_id}/tasks/{ids['qa_released']}"

    supervisor = app.test_client()
    log_in(supervisor, "sup.carl")
    page = supervisor.get(url).text
    assert "This step is for QA; you are signed in as supervisor." in page
    r = sign_task(supervisor, url, "sup.carl")
    assert r.status_code == 403 and "qa" in r.text
    assert batches.steps(runtime, batch_id) == []

    log_in(client, "qa.dora")
    assert 'id="not-mine"' not in client.get(url).text
    r = sign_task(client, url, "qa.dora")
    assert r.status_code == 303, r.text
    (step,) = batches.steps(runtime, batch_id)
    assert [(s["username"], s["meaning"]) for s in step["signatures"]] == [("qa.dora", "Released")]

    # the record: a correction link for QA, none for the supervisor or an operator
    assert "Correct a value" in client.get(f"/batches/{batch_id}").text
    for who in ("sup.carl", "op.anna"):
        other = app.test_client()
        log_in(other, who)
        assert "Correct a value" not in other.get(f"/batches/{batch_id}").text
        r = other.get(f"/batches/{batch_id}/steps/1/correct", query_string={"field": "reading"})
        assert r.status_code == 403 and "this needs the role: qa" in r.text

    page = client.get(f"/batches/{batch_id}/steps/1/correct", query_string={"field": "reading"})
    assert page.status_code == 200
    r = client.post(
        f"/batches/{batch_id}/steps/1/correct",
        data={
            "csrf_token": token(page.text),
            "idempotency_key": token(page.text, "idempotency_key"),
            "field": "reading",
            "value": "4.3",
            "reason": "transcription error",
            "password": password("qa.dora"),
        },
    )
    assert r.status_code == 303, r.text
    assert batches.steps(runtime, batch_id)[0]["current_values"]["reading"] == "4.3"
