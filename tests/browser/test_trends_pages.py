"""The trend pages through Flask's test client (no browser; the fast suite): who may open
them, and what a wrong, unknown, hostile or oversized address gets - a page that says
so (404) or an empty chart, never a server error or unescaped text."""

from __future__ import annotations

import pytest

from engine import users

from .test_ui_pages import log_in

UP = "up_production"


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def qa(app):
    client = app.test_client()
    log_in(client, "qa.dora")
    return client


def test_anonymous_goes_to_the_login_and_comes_back(app, new_batch):
    batch_id = new_batch()
    r = app.test_client().get(f"/trends/batches/{batch_id}/equipment/{UP}")
    assert r.status_code == 302 and r.headers["Location"] == f"/login?next=/trends/batches/{batch_id}/equipment/{UP}"


def test_without_analytics_read_the_page_says_not_allowed_in_the_layout(app, runtime):
    if not any(u["username"] == "adm.trends" for u in users.list_users(runtime)):
        users.create_user(runtime, "adm.trends", "Admin Only", ["admin"], by="test", password="a-long-test-password-1")
    client = app.test_client()
    page = client.get("/login").text
    from .test_ui_pages import token

    client.post(
        "/login",
        data={"csrf_token": token(page), "username": "adm.trends", "password": "a-long-test-password-1"},
    )
    r = client.get("/trends/")
    assert r.status_code == 403 and "analytics.read" in r.text and 'class="mainnav"' in r.text


def test_an_unknown_batch_or_recipe_is_a_404_page(qa):
    r = qa.get(f"/trends/batches/NO-SUCH-BATCH/equipment/{UP}")
    assert r.status_code == 404 and "NO-SUCH-BATCH" in r.text and 'class="mainnav"' in r.text
    assert qa.get("/trends/no_such_recipe/steps/weigh/mass_g").status_code == 404
    assert qa.get("/trends/no_such_recipe/durations/weigh").status_code == 404
    assert qa.get("/trends/?recipe=no_such_recipe").status_code == 200  # nothing found is not an error


def test_a_batch_without_samples_or_model_says_so(qa, new_batch):
    batch_id = new_batch()
    r = qa.get(f"/trends/batches/{batch_id}/equipment/{UP}")
    assert r.status_code == 200
    assert "0 samples received" in r.text and "No model watches this unit procedure yet" in r.text
    assert "<svg" not in r.text


@pytest.mark.parametrize(
    "unit_procedure",
    ["<script>alert(1)</script>", "x" * 5000, "up production", "%00", "..%2F..%2Fetc%2Fpasswd", "üñí"],
)
def test_hostile_unit_procedure_names_are_escaped_or_refused(qa, new_batch, unit_procedure):
    batch_id = new_batch()
    r = qa.get(f"/trends/batches/{batch_id}/equipment/{unit_procedure}")
    # not a BPMN id: 404 page; a NUL byte is refused before routing (web.input_limits, 422)
    assert r.status_code == (422 if unit_procedure == "%00" else 404), r.status_code
    assert "<script>alert(1)</script>" not in r.text


def test_hostile_batch_ids_and_queries(qa):
    for batch_id in ("<b>x</b>", "x" * 5000, "%27%20OR%201=1"):
        r = qa.get(f"/trends/batches/{batch_id}/equipment/{UP}")
        assert r.status_code == 404 and "<b>x</b>" not in r.text
    r = qa.get("/trends/buffer_prep/steps/bt_adjust_ph/ph?batch=<i>y</i>&limit=abc")
    assert r.status_code == 200 and "<i>y</i>" not in r.text
    r = qa.get("/trends/buffer_prep/steps/bt_adjust_ph/ph?limit=-5")
    assert r.status_code == 200
    r = qa.get("/trends/buffer_prep/steps/bt_adjust_ph/ph?limit=99999999999999999999999")
    assert r.status_code == 200


def test_the_pages_ask_for_nothing_outside_the_app(qa):
    r = qa.get("/trends/")
    assert r.status_code == 200
    assert "http://" not in r.text.replace("http://www.w3.org/2000/svg", "") and "https://" not in r.text
    js = qa.get("/trends/static/local-time.js")
    assert js.status_code == 200 and "fetch(" not in js.text and "XMLHttpRequest" not in js.text
