"""QA's review by exception in the browser (issue 9), as two QA people use it on a tablet:
the review list, a batch's review page showing only what needs a person, release refused
while exceptions are open (the page says why), an exception accepted with one signature,
an action-limit breach (major) accepted with two signatures by two QA people each in
their own session, one escalated to a deviation, a QA person who witnessed a step
refused, and the release by the other. Screenshots (1024x768) in test-artifacts/browser/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

from engine import batches, jobs, users
from engine.qms import subscribers
from engine.quality import exceptions as qx

from .conftest import PEOPLE, password
from .test_operator_ui import log_in

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser

SECOND_QA = "qa.erik"
PEOPLE.setdefault(SECOND_QA, ("Erik Nilsson", ["qa"], "Erik-secret-2025"))


@pytest.fixture(scope="module")
def demo_qms(runtime, base_url, tmp_path_factory):
    """``batchline qms-demo`` in its own process, subscribed to deviation requests and
    answering the browser test's server; answers its port."""
    from web import demo_qms as plant_qms

    port = plant_qms.free_port()
    out, _ = subscribers.add(
        runtime,
        name="browser-qms",
        url=f"http://127.0.0.1:{port}/events",
        event_types=["qms.deviation.requested"],
        kind="qms",
        secret=None,
        by="test",
    )
    state = tmp_path_factory.mktemp("qms") / "qms.sqlite"
    env = {**os.environ, "BATCHLINE_QMS_SECRET": out["secret"], "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "web.cli", "qms-demo", "--port", str(port), "--batchline", base_url]
    qms = subprocess.Popen([*command, "--state", str(state)], env=env, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}/deviations", timeout=2)
            break
        except requests.ConnectionError:
            assert qms.poll() is None and time.monotonic() < deadline, "the demo QMS did not start"
            time.sleep(0.2)
    yield port
    qms.terminate()
    qms.wait(timeout=10)


def _deviation(runtime, batch_id: str, exception_id: int, *, status: str | None = None) -> dict:
    """Run the job worker (it delivers the request to the demo QMS) until the QMS's answer
    is on the exception."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs.run_due(runtime)
        (exc,) = [e for e in batches.exceptions(runtime, batch_id) if e["id"] == exception_id]
        if exc["deviation"] and (status is None or exc["status"] == status):
            return exc
        time.sleep(0.2)
    raise AssertionError(f"the demo QMS did not answer for exception {exception_id}")


@pytest.fixture(scope="module")
def second_qa(runtime):
    if not any(u["username"] == SECOND_QA for u in users.list_users(runtime)):
        name, roles, secret = PEOPLE[SECOND_QA]
        users.create_user(runtime, SECOND_QA, name, roles, by="test", password=secret)
    return SECOND_QA


def reviewable_batch(runtime, new_batch) -> tuple[str, dict[str, int]]:
    """A complete buffer batch: pH at 6.60 (a critical parameter beyond its action limit: two signatures), the
    transfer witnessed by QA's Dora, an out-of-trend finding and an equipment event."""
    batch_id = new_batch()
    anna = users.authenticate(runtime, "op.anna", password("op.anna"), purpose="signature")
    dora = users.authenticate(runtime, "qa.dora", password("qa.dora"), purpose="signature")
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.complete_task(runtime, batch_id, task["id"], {"ph": "6.60", "remarks": None}, user="op.anna", signer=anna)
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.complete_task(
        runtime,
        batch_id,
        task["id"],
        {"volume": "200.0", "filter_intact": True},
        user="op.anna",
        signer=anna,
        witness=dora,
    )
    assert batches.get_batch(runtime, batch_id)["state"] == "complete"
    oot = qx.raise_exception(
        runtime,
        batch_id,
        category="oot.value",
        message="Buffer pH 6.60 pH is out of trend (rule 1); expected 6.95 to 7.10 pH",
        step_seq=1,
        parameter="ph",
        value=6.6,
        limits={"lower": 6.95, "upper": 7.10, "centre": 7.02, "unit": "pH"},
        details={"bpmn_id": "adjust_ph", "rule": 1, "unit": "pH"},
    )
    event = qx.raise_exception(
        runtime,
        batch_id,
        category="event.equipment",
        message="Hold tank agitator stopped for 4 min during the transfer",
        raised_by="op.ben",
        step_seq=2,
    )
    (action,) = [e for e in batches.exceptions(runtime, batch_id) if e["category"] == "limit.action"]
    return batch_id, {"action": action["id"], "oot": oot["id"], "event": event["id"]}


def dispose(page: Page, exc_id: int, decision: str, justification: str, username: str, *, user_id: bool) -> None:
    page.click(f"#exc-{exc_id} [data-dispose={decision}]")
    dialog = page.locator("#dispose-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#dispose-summary")).to_contain_text(f"#{exc_id}")
    page.fill("#justification", justification)
    if user_id:
        page.fill("#dispose-signer_id", username)
    else:
        expect(page.locator("#dispose-signer_id")).to_have_count(0)
    page.fill("#dispose-password", password(username))
    page.click("#dispose-submit")


def decide(page: Page, username: str, *, user_id: bool, comment: str = "") -> None:
    page.click("[data-decide=release]")
    expect(page.locator("#decide-dialog")).to_be_visible()
    page.fill("#comment", comment)
    if user_id:
        page.fill("#decide-signer_id", username)
    page.fill("#decide-password", password(username))
    page.click("#decide-submit")


def test_qa_reviews_by_exception_and_releases(
    page: Page, browser, base_url, runtime, new_batch, second_qa, demo_qms, artifacts
):
    batch_id, ids = reviewable_batch(runtime, new_batch)

    # Erik (QA, did nothing in the batch) finds it in the review list with its open exceptions
    log_in(page, second_qa)
    page.click(".mainnav a:has-text('Review')")
    row = page.locator(f"tr[data-batch='{batch_id}']")
    expect(row.locator("td[data-severity=critical]")).to_have_text("1")  # pH (critical) beyond its action limit
    expect(row.locator("td[data-severity=major]")).to_have_text("1")  # the equipment event
    expect(row.locator("td[data-severity=minor]")).to_have_text("1")  # the out-of-trend finding
    page.screenshot(path=str(artifacts / "review-list.png"), full_page=True)
    row.locator("a").click()

    # only what needs a person, critical/major first, with context
    expect(page.locator("#headline-text")).to_have_text("3 exceptions in 2 record entries")
    severities = page.locator("#exceptions .review-exc").evaluate_all("els => els.map(e => e.dataset.severity)")
    assert severities == ["critical", "major", "minor"]
    action = page.locator(f"#exc-{ids['action']}")
    expect(action.locator(".exc-value")).to_contain_text("6.6")
    expect(action.locator(".exc-value")).to_contain_text("action")
    expect(action).to_contain_text("1 · Adjust buffer pH")
    expect(action).to_contain_text("2 QA signatures (two different people)")
    expect(page.locator(f"#exc-{ids['oot']} svg.tr-chart")).to_have_count(1)  # the trend chart of the OOT finding
    expect(page.locator("#pdf-link")).to_have_attribute("href", f"/api/batches/{batch_id}/record.pdf")
    expect(page.locator("#blocking li")).to_have_count(3)
    page.screenshot(path=str(artifacts / "review-page.png"))
    page.screenshot(path=str(artifacts / "review-page-full.png"), full_page=True)

    # release is refused while exceptions are open, and the page says why
    decide(page, second_qa, user_id=True)
    error = page.locator("#decide-error")
    expect(error).to_contain_text("Not released: 3 items still block the release")
    expect(error.locator("li")).to_have_count(3)
    page.screenshot(path=str(artifacts / "review-release-blocked.png"))
    assert batches.get_batch(runtime, batch_id)["state"] == "complete"
    page.click("#decide-dialog [data-close]")

    # Erik accepts the OOT finding (one signature; password only: he signed once already)
    dispose(page, ids["oot"], "accept", "Within the validated range; no product impact.", second_qa, user_id=False)
    expect(page.locator(".flash-success")).to_contain_text(f"Exception {ids['oot']} accepted")
    expect(page.locator(f"#exc-{ids['oot']}")).to_have_count(0)
    # ... gives the first of two signatures on the action-limit breach
    dispose(
        page,
        ids["action"],
        "accept",
        "pH re-adjusted before transfer; buffer released by QC.",
        second_qa,
        user_id=False,
    )
    expect(page.locator(".flash-success")).to_contain_text("(1 of 2)")
    expect(page.locator(f"#exc-{ids['action']}")).to_contain_text("1 of 2 signatures given")
    # ... cannot give the second one himself
    dispose(page, ids["action"], "accept", "again", second_qa, user_id=False)
    expect(page.locator("#dispose-error")).to_contain_text("second signature must come from another QA person")
    page.screenshot(path=str(artifacts / "review-second-signature-refused.png"))
    page.click("#dispose-dialog [data-close]")
    # ... and escalates the equipment event
    dispose(page, ids["event"], "escalate", "Agitation loss: impact assessment needed.", second_qa, user_id=False)
    event = page.locator(f"#exc-{ids['event']}")
    expect(event).to_have_attribute("data-status", "escalated")
    expect(event.locator(".deviation")).to_contain_text("waiting for the QMS")
    # the demo QMS (its own process) opens the deviation and its number appears on the exception
    number = _deviation(runtime, batch_id, ids["event"])["deviation"]["number"]
    assert re.fullmatch(r"DEV-\d{4}-\d{4}", number), number
    page.reload()
    expect(page.locator(f"#exc-{ids['event']} .deviation-number")).to_have_text(number)
    page.screenshot(path=str(artifacts / "review-deviation-number.png"))

    # Dora (QA, witnessed the transfer) signs the second signature in her own session ...
    dora = browser.new_context(base_url=base_url, viewport={"width": 1024, "height": 768}, timezone_id="UTC")
    other = dora.new_page()
    log_in(other, "qa.dora")
    other.goto(f"/review/{batch_id}")
    expect(other.locator("#performer-note")).to_be_visible()
    dispose(other, ids["action"], "accept", "Agree: re-adjusted, QC release on file.", "qa.dora", user_id=True)
    expect(other.locator(".flash-success")).to_contain_text(f"Exception {ids['action']} accepted")
    # ... but is refused the release: she performed (witnessed) a step
    # the QMS closes the deviation (with its CAPA): the exception closes with it
    assert requests.post(f"http://127.0.0.1:{demo_qms}/deviations/{number}/close", timeout=10).status_code == 200
    closed = _deviation(runtime, batch_id, ids["event"], status="closed")
    assert closed["deviation"]["capa"].startswith("CAPA-")
    other.reload()
    expect(other.locator("#release-ready")).to_be_visible()
    decide(other, "qa.dora", user_id=False)
    expect(other.locator("#decide-error")).to_contain_text("you performed or witnessed steps of batch")
    other.screenshot(path=str(artifacts / "review-performer-refused.png"))
    assert batches.get_batch(runtime, batch_id)["state"] == "complete"
    dora.close()

    # Erik releases it
    page.reload()
    expect(page.locator("#nothing-open")).to_be_visible()
    decide(page, second_qa, user_id=False, comment="Reviewed by exception.")
    page.wait_for_url(re.compile(rf"/review/{batch_id}$"))
    expect(page.locator("#released")).to_contain_text("Released by Erik Nilsson")
    expect(page.locator("#batch-state")).to_have_text("released")
    page.screenshot(path=str(artifacts / "review-released.png"))
    assert batches.get_batch(runtime, batch_id)["state"] == "released"
    page.goto("/review/")
    expect(page.locator(f"tr[data-batch='{batch_id}']")).to_have_count(0)
    # the refused submissions answer 409 / 403 (the browser logs those); no script error
    script_errors = [e for e in page.js_errors if not e.startswith("Failed to load resource")]
    assert not script_errors, script_errors
