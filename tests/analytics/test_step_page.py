"""The operator sees an out-of-trend finding on the step's page: while the check (run
after commit by the job executor) is pending the page says so and refreshes itself; once
it has run, the finding is on the page."""

from __future__ import annotations

from engine import jobs
from tests.support import browser_login
from web.app import create_app

from .trend_recipe import OPERATOR, live_step, trained_plant


def test_step_page_shows_the_trend_finding(rt):
    trained_plant(rt)
    # 106 g: beyond the 0.27 % prediction limit of the 20 history batches (mean 99.8 g,
    # sd 1.5 g: 99.8 +/- 5.2 g), so out of trend
    live_step(rt, "B-PAGE", {"mass_g": 106, "temp_c": 20.0})
    client = create_app(runtime=rt).test_client()
    browser_login(client, OPERATOR)
    page = client.get("/batches/B-PAGE/steps/1").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and "Checking the values" in page
    assert jobs.run_due(rt) >= 1
    page = client.get("/batches/B-PAGE/steps/1").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert 'id="raised"' in page and "out of trend" in page
