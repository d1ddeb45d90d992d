"""The training run pages (Flask test client): the list and the report for everyone who
reads trends, the e-signed decision for QA other than the trainer, with the session's
CSRF token and the signing rule of the review pages."""

from __future__ import annotations

import re

from analytics import catalogue, training
from analytics.history import write_history
from tests.support import PASSWORD, browser_login

from .trend_recipe import RECIPE, history, import_trend_recipe


def _run(runtime, trainer="quentin"):
    import_trend_recipe(runtime)
    write_history(runtime, RECIPE, history(20), user="demo")
    return training.train(runtime, RECIPE, user=trainer)["training_id"]


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _form(page: str, **values) -> dict:
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    return {"csrf_token": _csrf(page), "idempotency_key": key, **values}


def test_qa_reads_the_report_and_approves(runtime, app):
    run = _run(runtime)
    client = app.test_client()
    browser_login(client, "qa")
    listing = client.get("/trends/trainings/")
    assert listing.status_code == 200 and f"Run {run}" in listing.text and "pending" in listing.text
    dashboard = client.get("/trends/")
    assert 'href="/trends/trainings/"' in dashboard.text
    page = client.get(f"/trends/trainings/{run}")
    assert page.status_code == 200
    assert (
        "mass_g [g] (value)" in page.text and "Held-out false alarms" in page.text and 'id="decide-form"' in page.text
    )
    url = f"/trends/trainings/{run}/decide"

    refused = client.post(url, data=_form(page.text, decision="approve", reason="ok", signer_id="qa", password="no"))
    assert refused.status_code == 401 and "not accepted" in refused.text
    missing = client.post(url, data=_form(page.text, decision="approve", reason="", signer_id="qa", password=PASSWORD))
    assert missing.status_code == 422
    odd = client.post(url, data=_form(page.text, decision="maybe", reason="x", signer_id="qa", password=PASSWORD))
    assert odd.status_code == 422
    other = client.post(url, data=_form(page.text, decision="approve", reason="x", signer_id="qa2", password=PASSWORD))
    assert other.status_code == 403
    no_csrf = client.post(url, data={"decision": "approve", "reason": "x", "signer_id": "qa", "password": PASSWORD})
    assert no_csrf.status_code == 400
    assert catalogue.list_models(runtime, RECIPE) == []

    form = _form(page.text, decision="approve", reason="report read", signer_id="qa", password=PASSWORD)
    done = client.post(url, data=form)
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/trends/trainings/{run}")
    assert len(catalogue.list_models(runtime, RECIPE)) == 3
    shown = client.get(f"/trends/trainings/{run}")
    assert "approved" in shown.text and "3 of 3 models scoring now" in shown.text and "decide-form" not in shown.text
    again = client.post(url, data=form)  # the same form again: the first result, nothing signed twice
    assert again.status_code == 303


def test_the_trainer_and_non_qa_cannot_decide(runtime, app):
    run = _run(runtime, trainer="qa")
    trainer = app.test_client()
    browser_login(trainer, "qa")
    page = trainer.get(f"/trends/trainings/{run}")
    assert 'id="trainer-note"' in page.text and 'id="decide-form"' not in page.text
    with trainer.session_transaction() as cookie:
        token = cookie["csrf"]
    forced = trainer.post(
        f"/trends/trainings/{run}/decide",
        data={"csrf_token": token, "decision": "approve", "reason": "mine", "signer_id": "qa", "password": PASSWORD},
    )
    assert forced.status_code == 403 and "segregation of duties" in forced.text
    operator = app.test_client()
    browser_login(operator, "op")
    assert operator.get(f"/trends/trainings/{run}").status_code == 200  # reads the report
    assert operator.post(f"/trends/trainings/{run}/decide", data={}).status_code in (400, 403)
    assert app.test_client().get(f"/trends/trainings/{run}").status_code == 302  # login first
    assert trainer.get("/trends/trainings/99999").status_code == 404
    assert catalogue.list_models(runtime, RECIPE) == []
