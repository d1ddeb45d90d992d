"""Status codes of the floor's pages on Flask's test client (issue 13, fast, no browser):
every UI form POST answers a success with 303 to a GET page; errors for a browser are
pages in users' words (404, 405, 403, 500, 503), the API keeps its JSON; a made-up task
is "No such task" (404), a completed one says who and when; a person whose duty a task
is not is still refused by the server."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from engine import batches

from .conftest import password
from .test_ui_pages import _record_step_one, correction_form, log_in, task_form, token

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

#: every POST route of the UI blueprint, and the test that shows its success is a 303
COVERED = {
    "ui.login": "test_each_form_post_answers_303",
    "ui.logout": "test_each_form_post_answers_303",
    "ui.submit_task": "test_each_form_post_answers_303",
    "ui.submit_correction": "test_each_form_post_answers_303",
    "ui.record_event": "test_each_form_post_answers_303",
    "ui.batch_state": "test_each_form_post_answers_303",
    "ui.reassign": "test_each_form_post_answers_303",
    "ui.start_batch_page": "test_each_form_post_answers_303",
    "ui.keep_alive": "test_keep_alive_is_cheap_and_says_the_time_left (200, a script's request)",
    "ui.dispose": "test_review_pages.py::test_review_forms_need_csrf_justification_and_signature",
    "ui.decide": "test_review_pages.py::test_qa_sees_the_review_controls_others_only_read",
    "ui.material_save": "test_every_other_post_redirects_with_303",
    "ui.lot_list": "test_every_other_post_redirects_with_303",
    "ui.lot_change": "tests/master_data/test_master_data_pages.py::test_qa_releases_from_the_page...",
    "ui.equipment_list": "test_every_other_post_redirects_with_303",
    "ui.equipment_change": "test_every_other_post_redirects_with_303",
    "ui.record_qualification": "tests/quals/test_pages.py::test_a_trainer_grants_and_revokes_on_the_page",
    "ui.recipe_save": "JSON for the recipe editor's script (not a form post)",
    "ui.recipe_submit": "JSON for the recipe editor's script (not a form post)",
    "ui.recipe_suggestions": "JSON for the recipe editor's script (not a form post)",
    "ui.scan_check": "tests/web/test_scan_check.py (200 JSON, the task page's script asks as a scan field is left)",
    "ui.check_witness": "test_the_witness_is_checked_before_any_password (200 JSON, a script's request)",
    "model_reviews.decide": "tests/analytics/test_model_review_pages.py (QA's decision on a trained model)",
}


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    return app.test_client()


def test_every_ui_post_route_is_covered(app):
    """Every POST address of the app outside the API is listed here with the test of its 303."""
    posts = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods and not rule.rule.startswith("/api")
    }
    assert posts == set(COVERED), posts ^ set(COVERED)


def test_each_form_post_answers_303(app, client, runtime, new_batch):
    page = client.get("/login").text
    r = client.post("/login", data={"csrf_token": token(page), "username": "op.anna", "password": password("op.anna")})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    batch_id = new_batch()
    url, csrf, key = task_form(client, batch_id)
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "7.05",
            "signer_id": "op.anna",
            "password": password("op.anna"),
        },
    )
    assert r.status_code == 303 and r.headers["Location"].endswith("/steps/1")
    r = client.post(url, data={"csrf_token": csrf, "idempotency_key": key, "ph": "7.05", "password": "x"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/steps/1")  # sent again: the first result
    url, form = correction_form(client, batch_id)
    r = client.post(url, data={**form, "value": "7.06", "reason": "typo", "password": password("op.anna")})
    assert r.status_code == 303, r.text
    r = client.post(f"/batches/{batch_id}/events", data={"csrf_token": csrf, "kind": "process", "description": "Foam"})
    assert r.status_code == 303 and r.headers["Location"].endswith("#exceptions")
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["Location"] == "/login"

    sup = app.test_client()
    log_in(sup, "sup.carl")
    csrf = token(sup.get("/batches/new").text)
    r = sup.post("/batches/new", data={"csrf_token": csrf, "recipe": "buffer_prep", "batch_id": "CODE-0001"})
    assert r.status_code == 303 and r.headers["Location"] == "/batches/CODE-0001"
    (task,) = batches.ready_tasks(runtime, "CODE-0001")
    r = sup.post(
        f"/batches/CODE-0001/tasks/{task['id']}/reassign",
        data={"csrf_token": csrf, "username": "op.ben", "reason": "Anna on break"},
    )
    assert r.status_code == 303
    for action in ("hold", "resume", "abort"):
        r = sup.post("/batches/CODE-0001/state", data={"csrf_token": csrf, "action": action, "reason": "test"})
        assert r.status_code == 303, action
    # a refused form is a page (its values kept), and knows the GET address to put in the history
    r = sup.post("/batches/new", data={"csrf_token": csrf, "recipe": "buffer_prep", "batch_id": "bad id"})
    assert r.status_code == 422 and 'value="bad id"' in r.text and 'data-page-url="/batches/new"' in r.text


def test_every_other_post_redirects_with_303(app, runtime):
    """Master data pages: a successful create answers 303 (no POST answered 302 remains)."""
    from engine import users

    if "md.mia" not in {u["username"] for u in users.list_users(runtime)}:
        users.create_user(runtime, "md.mia", "Mia Stock", ["qa", "maintenance"], by="test", password="Mia-secret-2025")
    c = app.test_client()
    page = c.get("/login").text
    c.post("/login", data={"csrf_token": token(page), "username": "md.mia", "password": "Mia-secret-2025"})
    csrf = token(c.get("/materials/").text)
    r = c.post(
        "/materials/",
        data={
            "csrf_token": csrf,
            "mode": "create",
            "material_id": "NACL-F1",
            "name": "Sodium chloride",
            "unit": "kg",
            "kind": "raw_material",
        },
    )
    assert r.status_code == 303, _error(r)
    r = c.post("/lots/", data={"csrf_token": csrf, "lot_id": "NACL-F1-L1", "material": "NACL-F1", "quantity": "5"})
    assert r.status_code == 303, _error(r)
    r = c.post("/equipment/", data={"csrf_token": csrf, "equipment_id": "PH-F1", "equipment_class": "ph_meter"})
    assert r.status_code == 303, _error(r)
    r = c.post("/equipment/", data={"csrf_token": csrf, "equipment_id": "PH-F1", "equipment_class": "ph_meter"})
    assert r.status_code in (409, 422) and 'data-page-url="/equipment/"' in r.text  # refused: a page, GET address


def _error(r) -> str:
    import re

    found = re.search(r'class="flash flash-error"[^>]*>([^<]*)', r.text)
    return found.group(1) if found else r.text[:300]


def test_keep_alive_is_cheap_and_says_the_time_left(client, runtime):
    log_in(client, "op.ben")
    csrf = token(client.get("/").text)
    r = client.post("/session/keep-alive", data={"csrf_token": csrf})
    assert r.status_code == 200 and r.json == {"seconds_left": 15 * 60, "warn_seconds": 120}
    assert client.post("/session/keep-alive", data={}).status_code == 400  # CSRF still required
    client.post("/logout", data={"csrf_token": csrf})
    r = client.post("/session/keep-alive", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    ("path", "status", "title"),
    [
        ("/nothing-here", 404, "Page not found"),
        ("/batches/NOPE/whatever", 404, "Page not found"),
        ("/recipes/999/xyz", 404, "Page not found"),
        ("/recipes/99999999999999999999999", 404, "Page not found"),
        ("/logout", 405, "Not a page to open"),
        ("/qualifications/grant", 405, "Not a page to open"),
        ("/batches/new", 403, "Not allowed"),
        ("/batches/NOPE", 404, "Not found"),
        ("/batches/NOPE/steps/1", 404, "Not found"),
    ],
)
def test_browser_errors_are_pages(client, path, status, title):
    log_in(client, "op.anna")
    r = client.get(path, headers=HTML)
    assert r.status_code == status and r.mimetype == "text/html", r.text[:500]
    assert f"<h1>{title}</h1>" in r.text and 'id="error-home"' in r.text
    assert '"code"' not in r.text  # not JSON
    if status == 405:
        assert "POST" in r.headers["Allow"]


def test_not_logged_in_an_unknown_address_offers_the_login(client):
    r = client.get("/nothing-here", headers=HTML)
    assert r.status_code == 404 and 'id="error-login"' in r.text and "Log out" not in r.text


def test_the_api_keeps_json_whatever_the_browser_accepts(client):
    for path, status in (("/api/nothing", 404), ("/api/batches", 401), ("/api/health", 200)):
        r = client.get(path, headers=HTML)
        assert r.status_code == status and r.mimetype == "application/json", path
    r = client.delete("/api/health", headers=HTML)
    assert r.status_code == 405 and r.json["code"] == "method_not_allowed"
    r = client.get("/nothing-here", headers={"Accept": "application/json"})  # a script asking for JSON
    assert r.status_code == 404 and r.json["code"] == "not_found"


def test_a_server_error_is_a_page_in_users_words(app, client, monkeypatch):
    log_in(client, "op.anna")

    def broken(*args, **kwargs):
        raise RuntimeError("boom <script>")

    monkeypatch.setattr(batches, "task_page", broken)
    r = client.get("/", headers=HTML)
    assert r.status_code == 500 and "<h1>Something went wrong</h1>" in r.text and "boom" not in r.text


def test_a_busy_database_under_a_page_is_a_503_page(app, client, monkeypatch):
    log_in(client, "op.anna")

    def busy(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(batches, "task_page", busy)
    r = client.get("/", headers=HTML)
    assert r.status_code == 503 and r.headers["Retry-After"] and "Nothing was recorded" in r.text


def test_made_up_and_completed_tasks(client, runtime, new_batch):
    batch_id = new_batch()
    (task,) = batches.ready_tasks(runtime, batch_id)
    log_in(client, "op.anna")
    csrf = token(client.get("/").text)
    for made_up in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", "x" * 90):
        r = client.get(f"/batches/{batch_id}/tasks/{made_up}", headers=HTML)
        assert r.status_code == 404 and f"No such task in batch {batch_id}." in r.text and "completed" not in r.text
        r = client.post(f"/batches/{batch_id}/tasks/{made_up}", data={"csrf_token": csrf, "idempotency_key": "k1"})
        assert r.status_code == 404 and "No such task" in r.text
    assert client.get(f"/batches/NOPE/tasks/{task['id']}", headers=HTML).status_code == 404
    _record_step_one(runtime, batch_id)
    r = client.get(f"/batches/{batch_id}/tasks/{task['id']}", headers=HTML)
    assert r.status_code == 200 and "completed by Anna Keller (op.anna)" in r.text
    assert f'href="/batches/{batch_id}/steps/1"' in r.text
    r = client.post(f"/batches/{batch_id}/tasks/{task['id']}", data={"csrf_token": csrf, "idempotency_key": "new"})
    assert r.status_code == 409 and "already completed" in r.text


def test_qa_sees_the_reason_and_the_server_still_refuses(app, runtime, new_batch):
    batch_id = new_batch()
    qa = app.test_client()
    log_in(qa, "qa.dora")
    (task,) = batches.ready_tasks(runtime, batch_id)
    url = f"/batches/{batch_id}/tasks/{task['id']}"
    page = qa.get(url).text
    assert "This step is for operators; you are signed in as QA." in page
    assert 'id="open-sign" disabled' in page and 'id="sign-submit" disabled' in page
    assert 'id="task-fields"' in page and "disabled aria-describedby=not-mine" in page
    r = qa.post(
        url,
        data={
            "csrf_token": token(page),
            "idempotency_key": token(page, "idempotency_key"),
            "ph": "7.05",
            "signer_id": "qa.dora",
            "password": password("qa.dora"),
        },
    )
    assert r.status_code == 403 and batches.steps(runtime, batch_id) == []


def test_the_witness_is_checked_before_any_password(client, runtime, new_batch):
    from .test_operator_ui import complete_first_step

    batch_id = new_batch()
    complete_first_step(runtime, batch_id)
    (task,) = batches.ready_tasks(runtime, batch_id)
    log_in(client, "op.anna")
    csrf = token(client.get(f"/batches/{batch_id}/tasks/{task['id']}").text)
    url = f"/batches/{batch_id}/tasks/{task['id']}/witness"
    assert client.post(url, data={"csrf_token": csrf, "witness_id": "op.ben"}).json == {"ok": True, "why": ""}
    mine = client.post(url, data={"csrf_token": csrf, "witness_id": "op.anna"}).json
    assert mine["ok"] is False and "another person" in mine["why"]
    # an unknown id is not told apart (the submission refuses it); hostile input is just text
    assert client.post(url, data={"csrf_token": csrf, "witness_id": "nobody"}).json["ok"] is True
    assert client.post(url, data={"csrf_token": csrf, "witness_id": "<script>" * 100}).status_code == 200
    assert client.post(url, data={"witness_id": "op.ben"}).status_code == 400  # CSRF
    made_up = f"/batches/{batch_id}/tasks/00000000-0000-4000-8000-000000000000/witness"
    assert client.post(made_up, data={"csrf_token": csrf, "witness_id": "op.ben"}).json["ok"] is False
