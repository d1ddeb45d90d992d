"""QA approves a training run of out-of-trend models in the browser: from the trend
dashboard to the run's evaluation report, the e-signed approval (user id + password at
the first signature), and the models scoring from then on. Screenshot (1024x768) in
test-artifacts/browser/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from analytics import catalogue, training
from analytics.history import write_history
from tests.analytics.trend_recipe import RECIPE, history, import_trend_recipe

from .conftest import password
from .test_operator_ui import log_in

pytestmark = pytest.mark.browser


def test_qa_opens_the_report_signs_and_the_models_score(page: Page, runtime, artifacts):
    import_trend_recipe(runtime, user="qa.dora")
    write_history(runtime, RECIPE, history(20, reviewed_prefix="MA-"), user="demo")
    run = training.train(runtime, RECIPE, user="qa.trainer")["training_id"]
    assert catalogue.list_models(runtime, RECIPE) == []

    log_in(page, "qa.dora")
    page.goto("/trends/")
    page.click("#training-runs")
    page.click(f"#trainings a:has-text('Run {run}')")
    expect(page.locator("h1")).to_contain_text(f"Training run {run}")
    expect(page.locator("#training-status")).to_have_text("pending")
    expect(page.locator("#report-models")).to_contain_text("mass_g [g] (value)")
    expect(page.locator("#report-models")).to_contain_text("of 5")  # the newest 5 of 20 batches held out

    page.check("#decision-approve")
    page.fill("#reason", "Evaluation report read: limits and held-out false alarms acceptable")
    page.fill("#signer_id", "qa.dora")
    page.fill("#password", "wrong password")
    page.click("#sign-decision")
    expect(page.locator("#decide-error")).to_contain_text("not accepted")
    expect(page.locator("#training-status")).to_have_text("pending")

    page.fill("#signer_id", "qa.dora")
    page.fill("#password", password("qa.dora"))
    page.click("#sign-decision")
    expect(page.locator("#training-status")).to_have_text("approved")
    expect(page.locator("#decision")).to_contain_text("Approved by Dora Lindqvist (qa.dora)")
    expect(page.locator("body")).to_contain_text("3 of 3 models scoring now")
    page.screenshot(path=str(artifacts / "model-approval.png"), full_page=True)
    assert len(catalogue.list_models(runtime, RECIPE)) == 3
    # the refused signature answers 401 and the trend pages have no favicon: resource
    # loads the console reports; no script error
    assert [e for e in page.js_errors if not e.startswith("Failed to load resource")] == []
