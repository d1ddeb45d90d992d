"""The browser UI's server-side rules, without a browser (Flask's test client, fast):
CSRF on every POST, the inactivity timeout and the §11.200 signing rule, idempotent
submission, permissions, no open redirect, safe markdown, security headers."""

from __future__ import annotations

import re

import pytest

from engine import batches
from tests.support import idle_sessions
from web.ui.markdown import render_markdown

from .conftest import password


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def token(html: str, name: str = "csrf_token") -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


def log_in(client, username: str) -> None:
    page = client.get("/login").text
    r = client.post("/login", data={"csrf_token": token(page), "username": username, "password": password(username)})
    assert r.status_code == 303, r.text


def task_form(client, batch_id: str) -> tuple[str, str, str]:
    (task,) = [t for t in batches.ready_tasks(client.application.extensions["batchline"], batch_id)]
    url = f"/batches/{batch_id}/tasks/{task['id']}"
    page = client.get(url).text
    return url, token(page), token(page, "idempotency_key")


def test_pages_need_a_login_and_come_back_after_it(client, new_batch):
    batch_id = new_batch()
    r = client.get(f"/batches/{batch_id}")
    assert r.status_code == 302 and r.headers["Location"] == f"/login?next=/batches/{batch_id}"
    page = client.get(r.headers["Location"]).text
    r = client.post(
        f"/login?next=/batches/{batch_id}",
        data={"csrf_token": token(page), "username": "op.anna", "password": password("op.anna")},
    )
    assert r.headers["Location"] == f"/batches/{batch_id}"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
def test_login_never_redirects_off_site(client, target):
    page = client.get("/login").text
    r = client.post(
        "/login",
        query_string={"next": target},
        data={"csrf_token": token(page), "username": "op.anna", "password": password("op.anna")},
    )
    assert r.status_code == 303 and r.headers["Location"] == "/"


def test_every_post_needs_the_csrf_token(client, new_batch):
    batch_id = new_batch()
    log_in(client, "sup.carl")
    r = client.post(f"/batches/{batch_id}/state", data={"action": "hold", "reason": "x"})
    assert r.status_code == 400 and "expired" in r.text
    r = client.post(f"/batches/{batch_id}/state", data={"action": "hold", "reason": "x", "csrf_token": "forged"})
    assert r.status_code == 400
    assert batches.get_batch(client.application.extensions["batchline"], batch_id)["state"] == "running"


def test_login_form_needs_the_csrf_token_too(client):
    client.get("/login")
    r = client.post("/login", data={"username": "op.anna", "password": password("op.anna")})
    assert r.status_code == 400


def test_service_accounts_cannot_log_in(client, runtime):
    from engine import users

    users.create_user(
        runtime, "erp.link", "ERP link", ["service"], by="test", password="Service-secret-2025", kind="service"
    )
    page = client.get("/login").text
    r = client.post(
        "/login", data={"csrf_token": token(page), "username": "erp.link", "password": "Service-secret-2025"}
    )
    assert r.status_code == 401 and "Service accounts cannot log in" in r.text


def test_signing_rule_user_id_first_then_password_only_then_both_after_timeout(client, runtime, new_batch):
    batch_id = new_batch()
    log_in(client, "op.anna")
    url, csrf, key = task_form(client, batch_id)
    assert 'id="signer_id"' in client.get(url).text
    # without the user id the first signature of the session is refused, nothing stored
    r = client.post(
        url, data={"csrf_token": csrf, "idempotency_key": key, "ph": "7.00", "password": password("op.anna")}
    )
    assert r.status_code == 403 and "Enter your own user id" in r.text
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "7.00",
            "signer_id": "op.anna",
            "password": password("op.anna"),
        },
    )
    assert r.status_code == 303
    # the next signing in the same session: the password alone
    url, csrf, key = task_form(client, batch_id)
    assert 'id="signer_id"' not in client.get(url).text
    # after the inactivity timeout the session ends: log in again, and both components again
    # (the server-side session's last request is moved back past the timeout)
    idle_sessions(runtime, "op.anna", runtime.settings.session_timeout_minutes * 60 + 5)
    r = client.get(url)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    assert "without activity" in client.get(r.headers["Location"]).text
    log_in(client, "op.anna")
    assert 'id="signer_id"' in client.get(url).text


def test_a_repeated_submission_stores_one_step(client, runtime, new_batch):
    batch_id = new_batch()
    log_in(client, "op.anna")
    url, csrf, key = task_form(client, batch_id)
    form = {
        "csrf_token": csrf,
        "idempotency_key": key,
        "ph": "7.00",
        "remarks": "once",
        "signer_id": "op.anna",
        "password": password("op.anna"),
    }
    first = client.post(url, data=form)
    again = client.post(url, data={**form, "signer_id": ""})
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"] == f"/batches/{batch_id}/steps/1"
    assert len(batches.steps(runtime, batch_id)) == 1


def test_an_empty_password_is_not_a_failed_attempt(client, runtime, new_batch):
    from sqlalchemy import select

    from engine.models import User

    batch_id = new_batch()
    log_in(client, "op.ben")
    url, csrf, key = task_form(client, batch_id)
    r = client.post(url, data={"csrf_token": csrf, "idempotency_key": key, "ph": "7.00", "signer_id": "op.ben"})
    assert r.status_code == 401 and "Enter your password" in r.text
    with runtime.transaction() as s:
        assert s.scalars(select(User.failed_logins).where(User.username == "op.ben")).one() == 0


def test_operators_cannot_hold_or_reassign(client, new_batch):
    batch_id = new_batch()
    log_in(client, "op.anna")
    page = client.get(f"/batches/{batch_id}").text
    assert 'id="supervisor"' not in page
    r = client.post(f"/batches/{batch_id}/state", data={"csrf_token": token(page), "action": "hold", "reason": "x"})
    assert r.status_code == 403 and "supervisor" in r.text


def test_a_task_assigned_to_someone_else_says_so(client, runtime, new_batch):
    batch_id = new_batch()
    (task,) = batches.ready_tasks(runtime, batch_id)
    batches.reassign(runtime, batch_id, task["id"], "op.ben", by="sup.carl", reason="other suite")
    log_in(client, "op.anna")
    page = client.get(f"/batches/{batch_id}/tasks/{task['id']}").text
    assert "assigned to op.ben; only they can complete it" in page
    qa = client.application.test_client()
    log_in(qa, "qa.dora")
    page = qa.get(f"/batches/{batch_id}/tasks/{task['id']}").text
    # QA may complete tasks now (QA tasks), but this one is an operator task
    assert "This step is for operators; you are signed in as QA." in page


def test_hold_needs_a_reason(client, runtime, new_batch):
    batch_id = new_batch()
    log_in(client, "sup.carl")
    page = client.get(f"/batches/{batch_id}").text
    r = client.post(
        f"/batches/{batch_id}/state",
        data={"csrf_token": token(page), "action": "hold", "reason": " "},
        follow_redirects=True,
    )
    assert "give a reason" in r.text
    assert batches.get_batch(runtime, batch_id)["state"] == "running"


def test_unknown_batch_is_a_page_not_json(client):
    log_in(client, "op.anna")
    r = client.get("/batches/NOPE-1")
    assert r.status_code == 404 and r.mimetype == "text/html" and "NOPE-1" in r.text


def test_pages_send_security_headers(client):
    r = client.get("/login")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_diagram_data_marks_done_and_current(client, runtime, new_batch):
    batch_id = new_batch()
    log_in(client, "qa.dora")
    data = client.get(f"/batches/{batch_id}/diagram").json
    assert data["files"][0]["name"] == "buffer_prep.bpmn" and data["files"][0]["drawable"]
    assert data["current"] == ["adjust_ph"] and "start" in data["done"]


@pytest.mark.parametrize(
    "source,present,absent",
    [
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))", "<a"),
        ("![x](data:image/svg+xml,abc)", "![x](data:image/svg+xml,abc)", "<img"),
        (
            '[x](https://a.example/"onmouseover="alert(1))',
            'href="https://a.example/&#34;onmouseover=&#34;alert(1"',
            'onmouseover="',
        ),
        ("**<i>bold</i>**", "<strong>&lt;i&gt;bold&lt;/i&gt;</strong>", "<i>"),
        ("# Title\n- one\n- two", "<h3>Title</h3>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>", "<h1"),
        ("see [SOP](https://sop.example/1?a=1&b=2)", 'href="https://sop.example/1?a=1&amp;b=2"', "javascript"),
    ],
)
def test_markdown_escapes_first_and_allows_only_http_links(source, present, absent):
    html = str(render_markdown(source))
    assert present in html
    assert absent not in html


# --- corrections and attachments ------------------------------------------------------------


def _record_step_one(runtime, batch_id: str, ph: str = "7.30") -> None:
    from engine import users

    (task,) = batches.ready_tasks(runtime, batch_id)
    signer = users.authenticate(runtime, "op.anna", password("op.anna"), purpose="signature")
    batches.complete_task(runtime, batch_id, task["id"], {"ph": ph}, user="op.anna", signer=signer)


def correction_form(client, batch_id: str, field: str = "ph") -> tuple[str, dict]:
    url = f"/batches/{batch_id}/steps/1/correct"
    page = client.get(url, query_string={"field": field})
    assert page.status_code == 200, page.text
    return url, {"csrf_token": token(page.text), "idempotency_key": token(page.text, "idempotency_key"), "field": field}


def test_a_correction_without_a_reason_is_refused(client, runtime, new_batch):
    batch_id = new_batch()
    _record_step_one(runtime, batch_id)
    log_in(client, "op.anna")
    url, form = correction_form(client, batch_id)
    r = client.post(
        url, data={**form, "value": "7.03", "reason": "  ", "signer_id": "op.anna", "password": password("op.anna")}
    )
    assert r.status_code == 422 and "needs a reason" in r.text and "Give the reason" in r.text
    assert 'value="7.03"' in r.text  # what was typed comes back
    (step,) = batches.steps(runtime, batch_id)
    assert step["corrections"] == [] and step["current_values"]["ph"] == "7.30"


def test_a_correction_needs_step_correct(client, runtime, new_batch):
    batch_id = new_batch()
    _record_step_one(runtime, batch_id)
    log_in(client, "qa.dora")  # QA reads and reviews an operator's record; it does not correct it
    page = client.get(f"/batches/{batch_id}").text
    assert "correct-link" not in page and "Correct a value" not in page
    url = f"/batches/{batch_id}/steps/1/correct"
    r = client.get(url, query_string={"field": "ph"})
    # QA may correct QA's steps (step.correct), but not this operator step (engine.duties)
    assert r.status_code == 403 and r.mimetype == "text/html" and "You may not correct this step" in r.text
    r = client.post(
        url,
        data={
            "csrf_token": token(page),
            "idempotency_key": "k1",
            "field": "ph",
            "value": "7.03",
            "reason": "typo",
            "signer_id": "qa.dora",
            "password": password("qa.dora"),
        },
    )
    assert r.status_code == 403 and "operator or supervisor" in r.text
    (step,) = batches.steps(runtime, batch_id)
    assert step["corrections"] == []


def test_no_correction_after_the_review(client, runtime, new_batch):
    from sqlalchemy import update

    from engine.models import Batch, utcnow

    batch_id = new_batch()
    _record_step_one(runtime, batch_id)
    log_in(client, "op.anna")
    url, form = correction_form(client, batch_id)  # opened before the review...
    with runtime.transaction() as s:
        s.execute(update(Batch).where(Batch.batch_id == batch_id).values(reviewed_at=utcnow()))
    # ...signed after it: refused, nothing changed
    r = client.post(
        url, data={**form, "value": "7.03", "reason": "typo", "signer_id": "op.anna", "password": password("op.anna")}
    )
    assert r.status_code == 409 and "corrections are closed" in r.text
    (step,) = batches.steps(runtime, batch_id)
    assert step["corrections"] == [] and step["current_values"]["ph"] == "7.30"
    page = client.get(f"/batches/{batch_id}").text
    assert 'id="reviewed"' in page and "correct-link" not in page
    assert "corrections are closed" in client.get(url, query_string={"field": "ph"}).text


def test_a_refused_corrected_value_shows_the_field_message(client, runtime, new_batch):
    batch_id = new_batch()
    _record_step_one(runtime, batch_id)
    log_in(client, "op.anna")
    url, form = correction_form(client, batch_id)
    r = client.post(
        url, data={**form, "value": "9.50", "reason": "typo", "signer_id": "op.anna", "password": password("op.anna")}
    )
    assert r.status_code == 422 and 'class="field-error"' in r.text and "8.00" in r.text
    assert batches.steps(runtime, batch_id)[0]["corrections"] == []


def test_a_repeated_correction_is_made_once(client, runtime, new_batch):
    batch_id = new_batch()
    _record_step_one(runtime, batch_id)
    log_in(client, "op.anna")
    url, form = correction_form(client, batch_id)
    data = {**form, "value": "7.03", "reason": "typo", "signer_id": "op.anna", "password": password("op.anna")}
    first = client.post(url, data=data)
    again = client.post(url, data={**data, "signer_id": ""})
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"] == f"/batches/{batch_id}#step-1"
    assert len(batches.steps(runtime, batch_id)[0]["corrections"]) == 1


def test_a_correction_is_signed_by_the_logged_in_person_only(client, runtime, new_batch):
    batch_id = new_batch()
    _record_step_one(runtime, batch_id)
    log_in(client, "op.anna")
    url, form = correction_form(client, batch_id)
    r = client.post(
        url, data={**form, "value": "7.03", "reason": "typo", "signer_id": "op.ben", "password": password("op.ben")}
    )
    assert r.status_code == 403 and "nobody can sign for someone else" in r.text
    assert batches.steps(runtime, batch_id)[0]["corrections"] == []


def test_a_file_too_large_is_refused_with_a_clear_page_and_nothing_stored(client, runtime, new_batch):
    import io

    from sqlalchemy import func, select

    from engine.models import Attachment

    def stored() -> int:
        with runtime.transaction() as s:
            return s.scalar(select(func.count()).select_from(Attachment))

    batch_id = new_batch()
    log_in(client, "op.anna")
    url, csrf, key = task_form(client, batch_id)
    before = stored()
    big = io.BytesIO(b"\0" * (runtime.settings.max_request_bytes + 1000))
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "7.00",
            "signer_id": "op.anna",
            "password": password("op.anna"),
            "printout": (big, "scan.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 413 and r.mimetype == "text/html"
    assert "File too large" in r.text and "at most 2.0 MB" in r.text and "no file was stored" in r.text
    assert f'href="{url}"' in r.text  # back to the task
    assert stored() == before and batches.steps(runtime, batch_id) == []


def test_a_file_over_the_field_limit_is_not_stored(client, runtime, new_batch):
    import io

    batch_id = new_batch()
    log_in(client, "op.anna")
    url, csrf, key = task_form(client, batch_id)
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "7.00",
            "signer_id": "op.anna",
            "password": password("op.anna"),
            "printout": (io.BytesIO(b"x" * 1_200_000), "photo.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 422 and "Meter printout: the file is too large" in r.text
    assert batches.steps(runtime, batch_id) == []
    # a file of a type the field does not accept
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "7.00",
            "password": password("op.anna"),
            "printout": (io.BytesIO(b"MZ"), "tool.exe", "application/x-msdownload"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 422 and "not accepted here" in r.text


def test_a_stored_file_is_kept_when_the_form_is_refused(client, runtime, new_batch):
    import io

    batch_id = new_batch()
    log_in(client, "op.anna")
    url, csrf, key = task_form(client, batch_id)
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "",
            "signer_id": "op.anna",
            "password": password("op.anna"),
            "printout": (io.BytesIO(b"cal ok"), "cal.txt", "text/plain"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 422 and "Attached: <strong>cal.txt</strong>" in r.text
    kept = re.search(r'name="printout__kept" value="([^"]+)"', r.text).group(1)
    import html

    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "7.00",
            "password": password("op.anna"),
            "printout__kept": html.unescape(kept),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303, r.text
    assert batches.steps(runtime, batch_id)[0]["values"]["printout"]["filename"] == "cal.txt"


def test_an_attached_file_can_be_corrected_by_a_new_file(client, runtime, new_batch):
    import io

    batch_id = new_batch()
    _record_step_one(runtime, batch_id, ph="7.05")
    log_in(client, "sup.carl")
    url, form = correction_form(client, batch_id, field="printout")
    assert 'type="file"' in client.get(url, query_string={"field": "printout"}).text
    r = client.post(
        url,
        data={
            **form,
            "reason": "printout was missing",
            "signer_id": "sup.carl",
            "password": password("sup.carl"),
            "value": (io.BytesIO(b"cal ok"), "late-printout.txt", "text/plain"),
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 303, r.text
    (step,) = batches.steps(runtime, batch_id)
    assert step["values"].get("printout") is None
    assert step["current_values"]["printout"]["filename"] == "late-printout.txt"
    page = client.get(f"/batches/{batch_id}").text
    assert 'class="attachment"' in page and "late-printout.txt" in page
