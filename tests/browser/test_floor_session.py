"""The session clock in a real browser (issue 13): a warning before the inactivity
timeout with a "Stay signed in" button that keeps the session, and — when it has ended —
what the operator typed is kept in the browser (never passwords) and put back after
logging in again on the same page. The server's timeout is real: the session's last
request is moved back in the database (``idle_sessions``) while Playwright's clock moves
the page's timers forward by the same time."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from engine import batches, users
from tests.support import idle_sessions

from .conftest import password

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


@pytest.fixture
def operator(runtime) -> str:
    """An operator of these tests only: moving their sessions back touches nobody else."""
    name = "op.flo"
    if name not in {u["username"] for u in users.list_users(runtime)}:
        users.create_user(runtime, name, "Flo Meyer", ["operator"], by="test", password="Flo-secret-2025")
    return name


def flo_login(page: Page, name: str) -> None:
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", "Flo-secret-2025")
    page.click("button:has-text('Log in')")
    expect(page.locator(".who-name")).to_be_visible()


def open_first_task(page: Page, runtime, batch_id: str) -> str:
    (task,) = batches.ready_tasks(runtime, batch_id)
    url = f"/batches/{batch_id}/tasks/{task['id']}"
    page.goto(url)
    expect(page.locator("h1")).to_contain_text("Adjust buffer pH")
    return url


def test_the_warning_comes_before_the_timeout_and_stay_signed_in_keeps_the_session(
    page: Page, runtime, new_batch, operator, artifacts
):
    batch_id = new_batch()
    page.clock.install()
    flo_login(page, operator)
    open_first_task(page, runtime, batch_id)
    warning = page.locator("#session-warning")
    expect(warning).to_have_count(0)
    # 13 minutes of a 15-minute session: the warning, 2 minutes before the end
    page.clock.fast_forward("13:01")
    expect(warning).to_be_visible()
    expect(page.locator("#session-warning-text")).to_contain_text("Your session ends in 2 minutes")
    expect(page.locator("#log-in-again")).to_be_hidden()
    page.screenshot(path=str(artifacts / "floor-session-warning.png"))
    # the server agrees: the session is still alive, and "Stay signed in" keeps it
    idle_sessions(runtime, operator, 13 * 60)
    with page.expect_response(re.compile(r"/session/keep-alive$")) as answer:
        page.click("#stay-signed-in")
    assert answer.value.status == 200
    expect(warning).to_be_hidden()
    # another 14 minutes from then: still signed in (no warning before 13 minutes)
    page.clock.fast_forward("12:00")
    expect(warning).to_be_hidden()
    page.reload()
    expect(page.locator(".who-name")).to_be_visible()
    assert page.js_errors == []


def test_what_was_typed_comes_back_after_the_timeout_and_a_new_login(
    page: Page, runtime, new_batch, operator, artifacts
):
    batch_id = new_batch()
    page.clock.install()
    flo_login(page, operator)
    url = open_first_task(page, runtime, batch_id)
    page.fill("#f-ph", "7.05")
    page.fill("#f-remarks", "Meter calibrated " + HOSTILE)
    page.click("#open-sign")
    page.fill("#signer_id", operator)
    page.fill("#password", "Flo-secret-2025")
    page.click("#sign-cancel")
    # the tablet is left alone past the timeout: the server ends the session, the page says so
    idle_sessions(runtime, operator, 15 * 60 + 5)
    page.clock.fast_forward("15:05")
    expect(page.locator("#session-warning-text")).to_contain_text("Your session has ended")
    expect(page.locator("#session-warning-text")).to_contain_text("kept in this browser")
    expect(page.locator("#stay-signed-in")).to_be_hidden()
    page.screenshot(path=str(artifacts / "floor-session-ended.png"))
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert "7.05" in stored and "Flo-secret-2025" not in stored and operator + '"' not in stored.split("forms")[1]
    page.click("#log-in-again")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.locator("#draft-waiting")).to_contain_text("kept in this browser")
    page.fill("#username", operator)
    page.fill("#password", "Flo-secret-2025")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    expect(page.locator("#draft-restored")).to_contain_text("Check every value")
    expect(page.locator("#f-ph")).to_have_value("7.05")
    expect(page.locator("#f-remarks")).to_have_value("Meter calibrated " + HOSTILE)
    assert page.evaluate("window.__xss") is None  # put back as text, never as markup
    expect(page.locator("#f-ph-hint")).to_have_text("Within limits.")  # the hints run on the kept values
    page.screenshot(path=str(artifacts / "floor-session-restored.png"))
    # nothing is signed by itself; signing now records the kept values (user id again: new session)
    page.click("#open-sign")
    page.fill("#signer_id", operator)
    page.fill("#password", "Flo-secret-2025")
    page.click("#sign-submit")
    page.wait_for_url(re.compile(r"/steps/1$"))
    expect(page.locator(".value-row[data-key=ph] dd")).to_have_text("7.05 pH")
    assert page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('batchline.draft')).length") == 0


def test_a_form_sent_after_the_session_ended_is_kept_and_comes_back(page: Page, runtime, new_batch, operator):
    """The page's clock did not notice (a sleeping tablet): the server refuses the POST,
    changes nothing, and after the login the form is there again, password fields empty."""
    batch_id = new_batch()
    flo_login(page, operator)
    url = open_first_task(page, runtime, batch_id)
    page.fill("#f-ph", "7.10")
    page.click("#record-event summary")
    page.fill("#event-description", "Spill near the hood")
    idle_sessions(runtime, operator, 15 * 60 + 5)
    page.click("#open-sign")
    page.fill("#signer_id", operator)
    page.fill("#password", "Flo-secret-2025")
    page.click("#sign-submit")
    page.wait_for_url(re.compile(r"/login\?next="))
    expect(page.locator(".flash-warning")).to_contain_text("without activity")
    assert batches.steps(runtime, batch_id) == []
    page.fill("#username", operator)
    page.fill("#password", "Flo-secret-2025")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    expect(page.locator("#f-ph")).to_have_value("7.10")
    expect(page.locator("#event-description")).to_be_visible()  # the collapsed form is opened
    expect(page.locator("#event-description")).to_have_value("Spill near the hood")
    expect(page.locator("#password")).to_have_value("")
    # an event form sent after the timeout goes back to the task page (where the form was), not a 405
    idle_sessions(runtime, operator, 15 * 60 + 5)
    page.select_option("#event-kind", index=1)
    page.click("#event-submit")
    page.wait_for_url(re.compile(r"/login\?next=" + re.escape(url) + "$"))


def test_huge_kept_values_are_not_kept_and_a_tampered_store_is_ignored(page: Page, runtime, new_batch, operator):
    batch_id = new_batch()
    page.clock.install()
    flo_login(page, operator)
    url = open_first_task(page, runtime, batch_id)
    page.fill("#f-ph", "7.00")
    page.evaluate("document.querySelector('#f-remarks').value = 'x'.repeat(50000)")
    idle_sessions(runtime, operator, 15 * 60 + 5)
    page.clock.fast_forward("15:05")
    expect(page.locator("#session-warning-text")).to_contain_text("Your session has ended")
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert "7.00" in stored and "xxxxxxxxxx" not in stored  # a 50,000-character value is not kept
    # someone edits the store: markup, wrong types and unknown fields are put back as text or not at all
    key = page.evaluate("Object.keys(sessionStorage).find(k => k.startsWith('batchline.draft'))")
    tampered = (
        '{"saved": %d, "reason": "timeout", "forms": {"task-form": {"ph#1": {"a": 1}, "remarks#1": "%s", '
        '"csrf_token#1": "evil", "zz#1": "x"}}}'
    )
    page.evaluate(
        "([k, v]) => sessionStorage.setItem(k, v)",
        [key, tampered % (page.evaluate("Date.now()"), HOSTILE.replace('"', '\\"'))],
    )
    page.click("#log-in-again")
    page.fill("#username", operator)
    page.fill("#password", "Flo-secret-2025")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    expect(page.locator("#f-remarks")).to_have_value(HOSTILE)
    expect(page.locator("#f-ph")).to_have_value("")
    assert page.evaluate("window.__xss") is None
    assert page.locator("input[name=csrf_token]").first.input_value() != "evil"
    assert page.js_errors == []


def test_another_person_logging_in_gets_nothing_of_it(page: Page, runtime, new_batch, operator):
    batch_id = new_batch()
    page.clock.install()
    flo_login(page, operator)
    url = open_first_task(page, runtime, batch_id)
    page.fill("#f-ph", "7.20")
    idle_sessions(runtime, operator, 15 * 60 + 5)
    page.clock.fast_forward("15:05")
    expect(page.locator("#log-in-again")).to_be_visible()
    page.click("#log-in-again")
    page.fill("#username", "op.ben")
    page.fill("#password", password("op.ben"))
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    expect(page.locator("#f-ph")).to_have_value("")
    expect(page.locator("#draft-restored")).to_have_count(0)
