"""The electronic batch record in the browser (issue 3), as an operator, a witness and a
supervisor use it on a tablet: log in, find the task, enter values with live limit
hints, attach a file, sign (§11.200 signing rule), see exceptions at once, read the
record and the diagram, correct a recorded value with a reason and a signature, hold /
resume / reassign. Screenshots land in test-artifacts/browser/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from engine import batches, users

from .conftest import password

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold</b> & "quotes"'


def log_in(page: Page, username: str, secret: str | None = None) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", secret or password(username))
    page.click("button:has-text('Log in')")
    expect(page.locator(".who-name")).to_be_visible()


def open_task(page: Page, batch_id: str, name: str) -> None:
    page.goto(f"/batches/{batch_id}")
    page.click(f"#tasks a:has-text('{name}')")
    expect(page.locator("h1")).to_contain_text(name)


def sign(
    page: Page, username: str, *, user_id: bool, witness: str | None = None, witness_password: str | None = None
) -> None:
    page.click("#open-sign")
    dialog = page.locator("#sign-dialog")
    expect(dialog).to_be_visible()
    if user_id:
        page.fill("#signer_id", username)
    else:
        expect(page.locator("#signer_id")).to_have_count(0)
    page.fill("#password", password(username))
    if witness:
        page.fill("#witness_id", witness)
        page.fill("#witness_password", witness_password or password(witness))
    page.click("#sign-submit")


def complete_first_step(runtime, batch_id: str, ph: str = "7.05") -> None:
    """Step 1 done through the engine (for tests about step 2)."""
    (task,) = batches.ready_tasks(runtime, batch_id)
    signer = users.authenticate(runtime, "op.anna", password("op.anna"), purpose="signature")
    batches.complete_task(runtime, batch_id, task["id"], {"ph": ph, "remarks": None}, user="op.anna", signer=signer)


def test_operator_records_an_in_limit_step_then_a_witnessed_one(page: Page, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    # home page: my tasks across running batches
    expect(page.locator("h1")).to_have_text("My tasks")
    page.screenshot(path=str(artifacts / "my-tasks.png"), full_page=True)
    page.click(f".tasklist li:has-text('Batch {batch_id}') a:has-text('Adjust buffer pH')")
    expect(page.locator("h1")).to_contain_text("Adjust buffer pH")

    # instructions: markdown rendered, the SOP link kept, no raw markup
    instructions = page.locator(".instructions .markdown")
    expect(instructions.locator("strong")).to_have_text("1 M NaOH")
    expect(instructions.locator("a")).to_have_attribute("href", "https://sop.example.com/BUF-007")

    # live limit hints while typing
    ph = page.locator("#f-ph")
    hint = page.locator("#f-ph-hint")
    ph.fill("8.50")
    expect(hint).to_contain_text("outside hard limits", ignore_case=True)
    ph.fill("6.60")
    expect(hint).to_contain_text("Action")
    ph.fill("7.25")
    expect(hint).to_contain_text("Alert")
    ph.fill("7.05")
    expect(hint).to_have_text("Within limits.")
    page.fill("#f-remarks", "Meter calibrated 08:10")
    page.screenshot(path=str(artifacts / "task-page.png"), full_page=True)

    # the first signature of the session needs user id + password; the meaning is shown
    page.click("#open-sign")
    expect(page.locator("#sign-meaning")).to_have_text("Performed")
    expect(page.locator("#signer_id")).to_be_visible()
    page.screenshot(path=str(artifacts / "sign-dialog.png"))
    page.click("#sign-cancel")
    sign(page, "op.anna", user_id=True)

    page.wait_for_url(re.compile(r"/steps/1$"))
    expect(page.locator(".flash-success")).to_contain_text("recorded and signed")
    expect(page.locator("#raised")).to_have_count(0)
    signature = page.locator(".signature").first
    expect(signature).to_contain_text("Anna Keller")
    expect(signature).to_contain_text("Performed")
    expect(signature.locator(".sig-time")).to_contain_text("UTC")
    expect(page.locator(".value-row[data-key=ph] dd")).to_have_text("7.05 pH")

    # the next signature in the same session: password only; a witness signs too
    page.click("a:has-text('Next: Transfer to the hold tank')")
    expect(page.locator("h1")).to_contain_text("Transfer to the hold tank")
    page.fill("#f-volume", "200.0")
    page.check("#f-filter_intact")
    sign(page, "op.anna", user_id=False, witness="op.ben")
    page.wait_for_url(re.compile(r"/steps/2$"))
    sigs = page.locator(".signature")
    expect(sigs).to_have_count(2)
    expect(page.locator(".signature[data-role=witness]")).to_contain_text("Ben Okafor")
    expect(page.locator(".signature[data-role=witness]")).to_contain_text("Verified")
    page.screenshot(path=str(artifacts / "step-witnessed.png"), full_page=True)

    # the batch is complete; the diagram shows every task done
    page.goto(f"/batches/{batch_id}")
    expect(page.locator("#batch-state")).to_have_text("complete")
    expect(page.locator(".djs-element.bl-done[data-element-id=transfer]")).to_have_count(1)
    assert not page.js_errors, page.js_errors


def test_out_of_alert_value_is_recorded_and_the_exception_shown_at_once(page: Page, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    page.fill("#f-ph", "7.30")
    expect(page.locator("#f-ph-hint")).to_contain_text("alert exception")
    sign(page, "op.anna", user_id=True)
    page.wait_for_url(re.compile(r"/steps/1$"))
    raised = page.locator("#raised")
    expect(raised).to_be_visible()
    expect(raised).to_contain_text("Out of alert limit: Buffer pH 7.30 pH is above the upper alert limit")
    expect(raised.locator(".exception[data-severity=major]")).to_have_count(1)  # critical parameter
    page.screenshot(path=str(artifacts / "step-exception.png"), full_page=True)

    # the batch page lists it with its severity
    page.goto(f"/batches/{batch_id}")
    expect(page.locator("#exceptions .exception[data-severity=major]")).to_contain_text("Buffer pH 7.30")


def test_refused_form_comes_back_with_field_messages_and_values_kept(page: Page, new_batch):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    page.fill("#f-remarks", "pH left empty on purpose")
    sign(page, "op.anna", user_id=True)
    expect(page.locator("#form-error")).to_contain_text("nothing was stored")
    expect(page.locator(".field[data-key=ph] .field-error")).to_be_visible()
    expect(page.locator("#f-remarks")).to_have_value("pH left empty on purpose")
    # the password was proven: the retry asks for it alone
    page.fill("#f-ph", "7.00")
    sign(page, "op.anna", user_id=False)
    page.wait_for_url(re.compile(r"/steps/1$"))


def test_self_witness_is_refused_with_a_visible_message(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    complete_first_step(runtime, batch_id)
    log_in(page, "op.anna")
    open_task(page, batch_id, "Transfer to the hold tank")
    page.fill("#f-volume", "199.5")
    page.check("#f-filter_intact")
    # said as soon as the witness id is typed, before any password; Sign stays disabled
    # (the server refuses it too: tests/web/test_lockout_web.py, test_floor_codes.py)
    page.click("#open-sign")
    page.fill("#signer_id", "op.anna")
    page.fill("#witness_id", "op.anna")
    page.press("#witness_id", "Tab")
    error = page.locator("#witness-why")
    expect(error).to_be_visible()
    expect(error).to_contain_text("witness must be another person")
    expect(page.locator("#sign-submit")).to_be_disabled()
    expect(page.locator("#f-volume")).to_have_value("199.5")
    page.screenshot(path=str(artifacts / "self-witness-refused.png"))
    assert len(batches.steps(runtime, batch_id)) == 1  # nothing stored


def test_signing_as_someone_else_or_with_a_wrong_password_is_refused(page: Page, runtime, new_batch):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    page.fill("#f-ph", "7.00")
    page.click("#open-sign")
    page.fill("#signer_id", "op.ben")
    page.fill("#password", password("op.ben"))
    page.click("#sign-submit")
    expect(page.locator("#sign-error")).to_contain_text("nobody can sign for someone else")
    sign_wrong = page.locator("#sign-dialog")
    expect(sign_wrong).to_be_visible()  # reopened with the message
    page.fill("#signer_id", "op.anna")
    page.fill("#password", "not-my-password")
    page.click("#sign-submit")
    expect(page.locator("#sign-error")).to_contain_text("user id or password is wrong")
    assert batches.steps(runtime, batch_id) == []


def test_html_typed_into_a_text_field_is_shown_escaped(page: Page, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    page.fill("#f-ph", "7.10")
    page.fill("#f-remarks", XSS)
    sign(page, "op.anna", user_id=True)
    page.wait_for_url(re.compile(r"/steps/1$"))
    page.goto(f"/batches/{batch_id}")
    remark = page.locator("#step-1 .value-row[data-key=remarks] dd")
    expect(remark).to_have_text(XSS)
    expect(remark.locator("b, img, script")).to_have_count(0)
    assert page.evaluate("typeof window.__xss") == "undefined"

    # the diagram: step 1 done, step 2 current, end pending
    expect(page.locator(".djs-element.bl-done[data-element-id=adjust_ph]")).to_have_count(1)
    expect(page.locator(".djs-element.bl-current[data-element-id=transfer]")).to_have_count(1)
    expect(page.locator(".djs-element.bl-pending[data-element-id=end]")).to_have_count(1)
    page.screenshot(path=str(artifacts / "batch-page.png"), full_page=True)
    assert not page.js_errors, page.js_errors


def test_login_errors_are_clear_and_an_account_locks(page: Page, runtime, artifacts):
    users.create_user(runtime, "op.lena", "Lena Marsh", ["operator"], by="test", password="Lena-secret-2025")
    page.goto("/login")
    page.fill("#username", "op.lena")
    page.fill("#password", "wrong-password")
    page.click("button:has-text('Log in')")
    expect(page.locator(".flash-error")).to_have_text("User id or password is wrong.")
    for _ in range(runtime.settings.lockout_attempts - 1):
        page.fill("#password", "wrong-password")
        page.click("button:has-text('Log in')")
    expect(page.locator(".flash-error")).to_contain_text("locked")
    page.fill("#password", "Lena-secret-2025")
    page.click("button:has-text('Log in')")
    expect(page.locator(".flash-error[data-code=account_locked]")).to_contain_text("ask an administrator")
    page.screenshot(path=str(artifacts / "login-locked.png"))


def test_logout_means_user_id_and_password_again(page: Page, new_batch):
    batch_id = new_batch()
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    page.fill("#f-ph", "7.00")
    sign(page, "op.anna", user_id=True)
    page.wait_for_url(re.compile(r"/steps/1$"))
    page.click("button:has-text('Log out')")
    expect(page.locator(".flash-info")).to_contain_text("logged out")
    page.goto(f"/batches/{batch_id}")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    log_in(page, "op.anna")
    open_task(page, batch_id, "Transfer to the hold tank")
    page.click("#open-sign")
    expect(page.locator("#signer_id")).to_be_visible()


def test_supervisor_holds_resumes_and_reassigns(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "sup.carl")
    page.goto(f"/batches/{batch_id}")
    reason = page.locator("#state-reason")
    reason.fill("pH meter out of calibration")
    page.click("button[value=hold]")
    expect(page.locator("#batch-state")).to_have_text("held")
    expect(page.locator(".flash-success")).to_have_text("Batch put on hold.")
    page.fill("#state-reason", "meter replaced, calibration checked")
    page.click("button[value=resume]")
    expect(page.locator("#batch-state")).to_have_text("running")

    page.click("#tasks details.reassign summary")
    page.select_option("#tasks select[name=username]", "op.ben")
    page.fill("#tasks input[name=reason]", "Anna is in the other suite")
    page.click("#tasks button:has-text('Reassign')")
    expect(page.locator(".flash-success")).to_contain_text("reassigned to op.ben")
    expect(page.locator("#tasks")).to_contain_text("Assigned to Ben Okafor by Carl Svensson at ")
    page.screenshot(path=str(artifacts / "batch-supervisor.png"), full_page=True)
    (task,) = batches.ready_tasks(runtime, batch_id)
    assert task["assigned_to"] == "op.ben"


def test_operators_see_no_supervisor_actions(page: Page, new_batch):
    batch_id = new_batch()
    log_in(page, "op.ben")
    page.goto(f"/batches/{batch_id}")
    expect(page.locator("#supervisor")).to_have_count(0)
    expect(page.locator("details.reassign")).to_have_count(0)


@pytest.mark.parametrize("width,height,name", [(768, 1024, "portrait"), (1024, 768, "landscape")])
def test_task_page_fits_a_tablet(browser, base_url, new_batch, artifacts, width, height, name):
    batch_id = new_batch()
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height}, has_touch=True)
    try:
        page = context.new_page()
        log_in(page, "op.anna")
        open_task(page, batch_id, "Adjust buffer pH")
        page.fill("#f-ph", "7.35")
        # nothing wider than the screen; touch targets at least 44 px high
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for selector in ("#f-ph", "#f-remarks", "#open-sign"):
            box = page.locator(selector).bounding_box()
            assert box and box["height"] >= 44, (selector, box)
        page.screenshot(path=str(artifacts / f"task-page-{name}.png"), full_page=True)
    finally:
        context.close()


def test_a_correction_shows_reason_and_supersedes_the_signature(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    complete_first_step(runtime, batch_id, ph="7.30")
    corrector = users.authenticate(runtime, "op.anna", password("op.anna"), purpose="signature")
    batches.correct_step(runtime, batch_id, 1, "ph", "7.03", reason="Typo: meter showed 7.03", signer=corrector)
    log_in(page, "qa.dora")
    page.goto(f"/batches/{batch_id}")
    row = page.locator("#step-1 .value-row[data-key=ph]")
    expect(row.locator(".current")).to_have_text("7.03 pH")
    expect(row.locator("del.original")).to_have_text("7.30 pH")
    expect(page.locator("#step-1 .corrections")).to_contain_text("Reason: Typo: meter showed 7.03")
    expect(page.locator("#step-1 .signature.superseded[data-role=performer]")).to_contain_text("superseded")
    expect(page.locator("#step-1 .signature[data-role=corrector]")).to_contain_text("Corrected")
    expect(page.locator("#step-1 .exception[data-severity=major]", has_text="Out of alert limit")).to_be_visible()
    page.locator("#record").screenshot(path=str(artifacts / "record-corrected.png"))


def test_operator_corrects_a_value_with_a_reason_and_signs(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    complete_first_step(runtime, batch_id, ph="7.30")
    log_in(page, "op.anna")
    page.goto(f"/batches/{batch_id}")
    page.click("#step-1 .value-row[data-key=ph] .correct-link")
    expect(page.locator("h1")).to_contain_text("Correct step 1: Adjust buffer pH")
    expect(page.locator("#current-value")).to_have_text("7.30 pH")
    # the new value is typed into the field's own input (unit, limits, live hints)
    value = page.locator("#f-value")
    expect(value).to_have_value("7.30")
    value.fill("7.03")
    expect(page.locator("#f-value-hint")).to_have_text("Within limits.")
    page.fill("#reason", "Typing error: the meter showed 7.03")
    page.click("#open-sign")
    expect(page.locator("#sign-meaning")).to_have_text("Corrected")
    page.fill("#signer_id", "op.anna")  # the first signature of this session: user id + password
    page.fill("#password", password("op.anna"))
    page.screenshot(path=str(artifacts / "correction-sign.png"), full_page=True)
    page.click("#sign-submit")

    page.wait_for_url(re.compile(rf"/batches/{batch_id}#step-1$"))
    expect(page.locator(".flash-success")).to_contain_text("Buffer pH corrected and signed")
    step = page.locator("#step-1")
    row = step.locator(".value-row[data-key=ph]")
    expect(row.locator(".current")).to_have_text("7.03 pH")
    expect(row.locator("del.original")).to_have_text("7.30 pH")
    correction = step.locator(".correction[data-field=ph]")
    expect(correction.locator(".old")).to_have_text("7.30 pH")
    expect(correction.locator(".new")).to_have_text("7.03 pH")
    expect(correction).to_contain_text("Reason: Typing error: the meter showed 7.03")
    expect(correction).to_contain_text("op.anna")
    expect(correction).to_contain_text("UTC")
    performer = step.locator(".signature[data-role=performer]")
    expect(performer).to_have_class(re.compile(r"\bsuperseded\b"))
    expect(performer).to_contain_text("superseded by a correction")
    corrector = step.locator(".signature[data-role=corrector]")
    expect(corrector).to_contain_text("Anna Keller")
    expect(corrector).to_contain_text("Corrected")
    expect(corrector).not_to_have_class(re.compile(r"\bsuperseded\b"))
    step.screenshot(path=str(artifacts / "correction-record.png"))

    (recorded,) = batches.steps(runtime, batch_id)
    assert recorded["values"]["ph"] == "7.30" and recorded["current_values"]["ph"] == "7.03"
    assert [c["reason"] for c in recorded["corrections"]] == ["Typing error: the meter showed 7.03"]
    assert not page.js_errors, page.js_errors


def test_operator_attaches_a_file_and_the_record_links_to_it(page: Page, runtime, new_batch, artifacts):
    batch_id = new_batch()
    content = b"pH meter calibration 2025-11-25 08:10\nslope 99.1 %  offset -2.3 mV  PASS\n"
    log_in(page, "op.anna")
    open_task(page, batch_id, "Adjust buffer pH")
    page.fill("#f-ph", "7.05")
    upload = page.locator("#f-printout")
    expect(upload).to_have_attribute("type", "file")
    expect(page.locator("#f-printout-rules")).to_contain_text("At most 1.0 MB")
    # a file over the field's limit is flagged before anything is sent
    upload.set_input_files(files=[{"name": "photo.png", "mimeType": "image/png", "buffer": b"x" * 1_200_000}])
    expect(page.locator("#f-printout-hint")).to_contain_text("too large")
    page.click("#open-sign")
    expect(page.locator("#sign-dialog")).to_be_hidden()
    upload.set_input_files(files=[{"name": "calibration.txt", "mimeType": "text/plain", "buffer": content}])
    expect(page.locator("#f-printout-hint")).to_contain_text("calibration.txt")
    page.screenshot(path=str(artifacts / "task-attachment.png"), full_page=True)
    sign(page, "op.anna", user_id=True)
    page.wait_for_url(re.compile(r"/steps/1$"))

    page.goto(f"/batches/{batch_id}")
    link = page.locator("#step-1 .value-row[data-key=printout] a.attachment")
    expect(link).to_have_text("calibration.txt")
    expect(page.locator("#step-1 .value-row[data-key=printout]")).to_contain_text(f"({len(content)} bytes)")
    href = link.get_attribute("href")
    import hashlib

    assert href == f"/api/attachments/{hashlib.sha256(content).hexdigest()}"
    # the API answers the file to the logged-in browser session
    download = page.request.get(href)
    assert download.status == 200 and download.body() == content
    page.locator("#step-1").screenshot(path=str(artifacts / "record-attachment.png"))
    (recorded,) = batches.steps(runtime, batch_id)
    assert recorded["values"]["printout"] == {
        "filename": "calibration.txt",
        "content_type": "text/plain",
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
    }
    assert not page.js_errors, page.js_errors
