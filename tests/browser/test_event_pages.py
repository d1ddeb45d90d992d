""" "Record an event" in the browser without a browser (Flask's test client): an operator
reports an event from a task page and it becomes one exception for QA's review; a
refused report (no or too long a description, an unknown kind, no CSRF token, a batch
that takes nothing more, a role without event.record) records nothing; a resent form
records one event."""

from __future__ import annotations

import re

import pytest

from engine import batches, users
from engine.errors import BatchlineError

from .test_ui_pages import app, client, log_in, token  # noqa: F401 - fixtures

ADMIN = ("admin.erik", "Erik-secret-2025")


def event_form(client, batch_id: str) -> tuple[str, dict[str, str]]:  # noqa: F811
    """The task page's URL and its event form's hidden fields."""
    (task,) = batches.ready_tasks(client.application.extensions["batchline"], batch_id)
    url = f"/batches/{batch_id}/tasks/{task['id']}"
    page = client.get(url).text
    assert 'id="record-event"' in page and "<details" in page
    return url, {"csrf_token": token(page), "event_key": token(page, "event_key"), "task_id": task["id"]}


def events_of(runtime, batch_id: str) -> list[dict]:
    return [e for e in batches.exceptions(runtime, batch_id) if (e.get("category") or "").startswith("event.")]


def test_an_operator_records_an_event_from_the_task_page(client, runtime, new_batch):  # noqa: F811
    batch_id = new_batch()
    log_in(client, "op.anna")
    url, hidden = event_form(client, batch_id)
    data = {**hidden, "kind": "documentation", "description": "Line clearance form\nsigned late by the shift lead"}
    r = client.post(f"/batches/{batch_id}/events", data=data)
    assert r.status_code == 303 and r.headers["Location"] == url
    (exc,) = events_of(runtime, batch_id)
    assert exc["category"] == "event.documentation" and exc["raised_by"] == "op.anna"
    assert exc["details"]["task_id"] == hidden["task_id"]
    assert exc["details"]["description"].endswith("signed late by the shift lead")
    page = client.get(url).text
    assert f"Event recorded — it goes to QA&#39;s review (exception {exc['id']})." in page
    assert token(page, "event_key") != hidden["event_key"]  # a new form, a new key
    # the batch page lists it
    assert "Line clearance form" in client.get(f"/batches/{batch_id}").text


def test_a_resent_event_form_records_one_exception(client, runtime, new_batch):  # noqa: F811
    batch_id = new_batch()
    log_in(client, "op.anna")
    _, hidden = event_form(client, batch_id)
    data = {**hidden, "kind": "equipment", "description": "Balance B-12 display flickers"}
    first = client.post(f"/batches/{batch_id}/events", data=data)
    second = client.post(f"/batches/{batch_id}/events", data=data)
    assert first.status_code == second.status_code == 303
    (exc,) = events_of(runtime, batch_id)
    messages = re.findall(r"exception (\d+)\)", client.get(first.headers["Location"]).text)
    assert messages == [str(exc["id"]), str(exc["id"])]  # the second shows the first's answer


@pytest.mark.parametrize(
    ("kind", "description", "says"),
    [
        ("documentation", "", "Description is required"),
        ("documentation", "   \n ", "Description is required"),
        ("process", "x" * 2001, "longer than 2000 characters"),
        ("weather", "It rained", "Kind is one of documentation, process, equipment, material, safety"),
        ("", "No kind", "Kind is one of"),
        ("safety", "bell\x07", "Description"),
    ],
)
def test_a_refused_event_is_shown_on_the_task_page_and_nothing_is_recorded(
    client,  # noqa: F811
    runtime,
    new_batch,
    kind,
    description,
    says,
):
    batch_id = new_batch()
    log_in(client, "op.anna")
    _, hidden = event_form(client, batch_id)
    r = client.post(f"/batches/{batch_id}/events", data={**hidden, "kind": kind, "description": description})
    assert r.status_code == 422
    assert 'id="event-error"' in r.text and says in r.text and "Nothing was recorded." in r.text
    assert '<details class="card record-event" id="record-event" open>' in r.text
    assert 'id="task-form"' in r.text  # still the task page
    assert token(r.text, "event_key") == hidden["event_key"]  # the same form, sent again, is one event
    if description.strip() and len(description) <= 2000 and "\x07" not in description:
        assert description in r.text  # what was typed is kept
    assert events_of(runtime, batch_id) == []


def test_the_event_form_needs_the_csrf_token(client, runtime, new_batch):  # noqa: F811
    batch_id = new_batch()
    log_in(client, "op.anna")
    _, hidden = event_form(client, batch_id)
    data = {**hidden, "kind": "material", "description": "Wrong lot label"}
    r = client.post(f"/batches/{batch_id}/events", data={**data, "csrf_token": ""})
    assert r.status_code == 400 and "expired" in r.text
    r = client.post(f"/batches/{batch_id}/events", data={**data, "csrf_token": "forged"})
    assert r.status_code == 400
    assert events_of(runtime, batch_id) == []


def test_an_ended_batch_takes_no_event(client, runtime, new_batch):  # noqa: F811
    batch_id = new_batch()
    log_in(client, "op.anna")
    _, hidden = event_form(client, batch_id)
    batches.change_state(runtime, batch_id, "abort", user="sup.carl", reason="test")
    r = client.post(f"/batches/{batch_id}/events", data={**hidden, "kind": "process", "description": "Too late"})
    assert r.status_code == 409 and "aborted" in r.text and "Nothing was recorded." in r.text
    assert 'id="record-event"' not in r.text  # the batch page, without the form: it takes nothing more
    assert events_of(runtime, batch_id) == []


def test_a_held_batch_takes_events_from_its_batch_page(client, runtime, new_batch):  # noqa: F811
    batch_id = new_batch()
    batches.change_state(runtime, batch_id, "hold", user="sup.carl", reason="pump check")
    log_in(client, "sup.carl")
    page = client.get(f"/batches/{batch_id}").text
    assert 'id="record-event"' in page and 'name="task_id"' not in page
    data = {"csrf_token": token(page), "event_key": token(page, "event_key"), "kind": "safety"}
    r = client.post(f"/batches/{batch_id}/events", data={**data, "description": "x" * 2001})
    assert r.status_code == 422 and 'id="event-error"' in r.text and 'id="batch-state"' in r.text
    r = client.post(f"/batches/{batch_id}/events", data={**data, "description": "Spill near the bench"})
    assert r.status_code == 303 and r.headers["Location"] == f"/batches/{batch_id}#exceptions"
    (exc,) = events_of(runtime, batch_id)
    assert exc["category"] == "event.safety" and exc["details"]["task_id"] is None


def test_a_role_without_event_record_sees_no_form_and_is_refused(app, runtime, new_batch):  # noqa: F811
    batch_id = new_batch()
    username, secret = ADMIN
    try:
        users.create_user(runtime, username, "Erik Admin", ["admin"], by="test", password=secret)
    except BatchlineError:
        pass  # made by an earlier test of this session
    admin = app.test_client()
    login_page = admin.get("/login").text
    r = admin.post("/login", data={"csrf_token": token(login_page), "username": username, "password": secret})
    assert r.status_code == 303
    (task,) = batches.ready_tasks(runtime, batch_id)
    for url in (f"/batches/{batch_id}/tasks/{task['id']}", f"/batches/{batch_id}"):
        page = admin.get(url)
        assert page.status_code == 200 and 'id="record-event"' not in page.text
    r = admin.post(
        f"/batches/{batch_id}/events",
        data={"csrf_token": token(page.text), "event_key": "k-admin", "kind": "process", "description": "x"},
    )
    assert r.status_code == 403 and "event record" in r.text
    assert events_of(runtime, batch_id) == []
