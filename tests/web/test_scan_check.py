"""``POST /api/scans/check`` and the task page's ``…/scan-check``: a scanned lot or
equipment id checked as the field is left, by the step's own checks, and again when the
step is recorded. Hostile input: wrong types, missing fields, oversize ids, another
batch's task, a person without the duty, a held batch, too many checks. (Replays and
concurrent submits do not apply: a check records nothing and reserves nothing; the step
transaction decides under the batch lock.)"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from engine import batches, users
from engine.errors import InvalidInput
from engine.models import MaterialLot
from tests.support import PASSWORD, browser_login
from web.api import scans

from .scan_recipe import RECIPE, install

URL = "/api/scans/check"


@pytest.fixture
def scan(runtime):
    """(ids, batch_id, task_id): a running batch of the scan recipe, its task waiting."""
    scans._recent.clear()
    ids = install(runtime, "T")
    batches.start_batch(runtime, RECIPE, "SC-1", user="sv")
    (task,) = batches.ready_tasks(runtime, "SC-1")
    yield ids, "SC-1", task["id"]
    scans._recent.clear()


def ask(client, batch_id, task_id, field, value, who="op"):
    body = {"batch_id": batch_id, "task_id": task_id, "field": field, "value": value}
    return client.post(URL, json=body, headers=client.auth[who])


def test_a_usable_lot_and_vessel_are_ok(client, scan):
    ids, batch_id, task_id = scan
    r = ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"] + "\n")  # a scanner's newline
    assert r.status_code == 200, r.json
    assert r.json == {"ok": True, "field": "buffer_lot", "message": "Can be used here."}
    assert ask(client, batch_id, task_id, "vessel", ids["vessel_ok"]).json["ok"] is True


@pytest.mark.parametrize(
    "field, key, words",
    [
        ("buffer_lot", "lot_quarantine", "is in quarantine, not released: awaiting CoA"),
        ("buffer_lot", "lot_expired", "expired on "),
        ("buffer_lot", "lot_other", "is SCAN-NACL, not SCAN-PBS"),
        ("vessel", "vessel_dirty", "is dirty: clean it"),
        ("vessel", "vessel_busy", "is in use by batch OTHER-1"),
        ("vessel", "vessel_maint", "is in maintenance: agitator seal replaced"),
        ("vessel", "vessel_overdue", "calibration expired on"),
        ("vessel", "balance", "is a balance, not a mixing vessel"),
    ],
)
def test_what_the_step_would_refuse_is_said_at_once(client, scan, field, key, words):
    ids, batch_id, task_id = scan
    r = ask(client, batch_id, task_id, field, ids[key])
    assert r.status_code == 200, r.json
    assert r.json["ok"] is False and words in r.json["message"], r.json
    assert r.json["message"][0].isupper() and r.json["message"].endswith(".")
    assert not re.search(r"\d{4}-\d{2}-\d{2}|_", r.json["message"]), r.json  # dates and classes in words


def test_an_unknown_id_says_not_found_and_nothing_else(client, scan):
    ids, batch_id, task_id = scan
    for field, what in (("buffer_lot", "Lot"), ("vessel", "Equipment")):
        r = ask(client, batch_id, task_id, field, "T-NOPE-1")
        assert r.json == {"ok": False, "field": field, "message": f"{what} T-NOPE-1 was not found."}


def test_the_ids_own_format_is_checked_first(client, scan):
    _, batch_id, task_id = scan
    r = ask(client, batch_id, task_id, "buffer_lot", "X" * 150)  # longer than an id may be: not looked up
    assert r.status_code == 200 and r.json["ok"] is False and "too long" in r.json["message"]
    r = ask(client, batch_id, task_id, "buffer_lot", "   ")
    assert r.json["ok"] is False and "required" in r.json["message"]
    r = ask(client, batch_id, task_id, "buffer_lot", "LOT\x00-1")  # refused before it reaches the check
    assert r.status_code in (400, 422) and "ok" not in r.json
    r = ask(client, batch_id, task_id, "buffer_lot", "LOT\x1b-1")
    assert r.json["ok"] is False and "control characters" in r.json["message"], r.json


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"batch_id": "SC-1"},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "buffer_lot"},  # no value
        {"batch_id": "SC-1", "task_id": "{task}", "field": "buffer_lot", "value": 12345},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "buffer_lot", "value": None},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "buffer_lot", "value": ["a"]},
        {"batch_id": "SC-1", "task_id": "{task}", "field": ["buffer_lot"], "value": "x"},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "buffer_lot", "value": "X" * 201},
        {"batch_id": "B" * 101, "task_id": "{task}", "field": "buffer_lot", "value": "x"},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "f" * 101, "value": "x"},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "order_no", "value": "x"},  # not a scanned field
        {"batch_id": "SC-1", "task_id": "{task}", "field": "nope", "value": "x"},
        {"batch_id": "SC-1", "task_id": "{task}", "field": "__class__", "value": "x"},
    ],
)
def test_bad_bodies_are_refused_without_an_answer(client, scan, body):
    _, _, task_id = scan
    body = {k: (v.replace("{task}", task_id) if isinstance(v, str) else v) for k, v in body.items()}
    r = client.post(URL, json=body, headers=client.auth["op"])
    assert r.status_code == 422, r.json
    assert "ok" not in r.json


def test_not_json_is_refused(client, scan):
    r = client.post(URL, data="value=x", content_type="application/x-www-form-urlencoded", headers=client.auth["op"])
    assert r.status_code in (400, 415, 422)
    r = client.post(URL, data="[1, 2]", content_type="application/json", headers=client.auth["op"])
    assert r.status_code in (400, 422)


def test_only_who_may_complete_the_task_gets_an_answer(client, runtime, anon, scan):
    ids, batch_id, task_id = scan
    assert anon.post(URL, json={"batch_id": batch_id}).status_code == 401
    r = ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"], who="qa")  # QA has no operator duty
    assert r.status_code == 403, r.json
    assert "ok" not in r.json
    # another batch's task: not found in this batch
    batches.start_batch(runtime, RECIPE, "SC-2", user="sv")
    (other,) = batches.ready_tasks(runtime, "SC-2")
    r = ask(client, batch_id, other["id"], "buffer_lot", ids["lot_ok"])
    assert r.status_code == 404 and r.json["code"] == "task_not_found"
    assert ask(client, "SC-404", task_id, "buffer_lot", ids["lot_ok"]).status_code == 404
    assert ask(client, batch_id, "not-a-uuid", "buffer_lot", ids["lot_ok"]).status_code in (404, 422)
    # assigned to someone else: only they may ask
    batches.reassign(runtime, "SC-2", other["id"], "alice", by="sv", reason="training")
    assert ask(client, "SC-2", other["id"], "buffer_lot", ids["lot_ok"]).status_code == 403
    # a held batch accepts no step, and so answers no scan
    batches.change_state(runtime, batch_id, "hold", user="sv", reason="investigation")
    r = ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"])
    assert r.status_code == 409 and r.json["code"] == "batch_held"


def test_too_many_checks_are_refused_for_a_while(client, scan):
    ids, batch_id, task_id = scan
    for _ in range(scans.MAX_CHECKS):
        assert ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"]).status_code == 200
    r = ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"])
    assert r.status_code == 429 and r.json["code"] == "too_many_checks" and int(r.headers["Retry-After"]) >= 1
    assert ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"], who="alice").status_code == 200  # per person


def test_a_lot_quarantined_after_the_check_is_refused_when_signing(client, runtime, scan):
    ids, batch_id, task_id = scan
    assert ask(client, batch_id, task_id, "buffer_lot", ids["lot_ok"]).json["ok"] is True
    with runtime.transaction() as s:
        s.execute(update(MaterialLot).where(MaterialLot.lot_id == ids["lot_ok"]).values(status="quarantine"))
    signer = users.authenticate(runtime, "op", PASSWORD, purpose="signature")
    values = {"buffer_lot": ids["lot_ok"], "vessel": ids["vessel_ok"], "order_no": "0123456789", "volume": "10"}
    with pytest.raises(InvalidInput) as refused:
        batches.complete_task(runtime, batch_id, task_id, values, user="op", signer=signer)
    assert "quarantine, not released" in refused.value.details["fields"]["buffer_lot"][0]
    assert batches.steps(runtime, batch_id) == []


def test_the_task_page_asks_with_its_session_and_csrf_token(app, runtime, scan):
    ids, batch_id, task_id = scan
    page = app.test_client()
    browser_login(page, "op")
    url = f"/batches/{batch_id}/tasks/{task_id}/scan-check"
    html = page.get(f"/batches/{batch_id}/tasks/{task_id}").text
    assert 'data-scan="materialLot"' in html and 'id="f-buffer_lot-scan"' in html and 'aria-live="polite"' in html
    assert "Format: 10 digits" in html and "[0-9]{10}" not in html
    with page.session_transaction() as cookie:
        csrf = cookie["csrf"]
    r = page.post(url, data={"csrf_token": csrf, "field": "buffer_lot", "value": ids["lot_quarantine"]})
    assert r.status_code == 200 and r.json["ok"] is False and "awaiting CoA" in r.json["message"]
    assert page.post(url, data={"field": "buffer_lot", "value": ids["lot_ok"]}).status_code == 400  # no CSRF token
    r = page.post(url, data={"csrf_token": csrf, "field": "buffer_lot"})  # no value
    assert r.status_code == 422 and r.json["error"] == "scan_value_invalid"
    qa = app.test_client()
    browser_login(qa, "qa")
    with qa.session_transaction() as cookie:
        qa_csrf = cookie["csrf"]
    r = qa.post(url, data={"csrf_token": qa_csrf, "field": "buffer_lot", "value": ids["lot_ok"]})
    assert r.status_code == 403 and r.json["ok"] is False and r.json["error"], r.json
