"""The trend pages as QA walks them in Chromium at 1024x768 and 768 px wide: the
application's navigation, batch names and findings that link to the batch and to the
exception on the review page, the recipe's alert/action limits drawn on a control chart
next to the usual range (and a point out of trend inside them shown as no limit breach),
the equipment T²/SPE chart of one batch, "not enough history" per value, local times.

The plant is written on its own SQLite database (a module-scoped server), so the other
browser tests' batches and review lists are not touched. Screenshots go to
/tmp/p11-trends-*.png and the test artefacts folder.
"""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from analytics import equipment
from analytics.history import write_history
from analytics.jobs import install
from analytics.simulator import Fault
from analytics.training import MIN_BATCHES
from engine import batches, jobs, users
from tests.analytics.trend_recipe import (
    BPMN,
    FORM,
    OPERATOR,
    RECIPE,
    history,
    import_trend_recipe,
    live_step,
    train_and_approve,
)
from tests.support import approved_recipe, make_runtime

from .conftest import PEOPLE, password

pytestmark = pytest.mark.browser

UP = RECIPE  # the top process: it runs from the batch start (samples are scored only while their unit procedure runs)
FEW = "trend_few"  # the same recipe under another key, with too little history
SHOTS = Path("/tmp")
WIDTHS = (1024, 768)


def run_jobs(rt) -> None:
    while jobs.run_due(rt, limit=50):
        pass


def train_and_score(rt) -> None:
    """Train the recipe's models on the history and score the live batches.

    Training and scoring stay in this one function on purpose: when models must be
    approved before they score, the approval step goes here, between the two."""
    train_and_approve(rt, RECIPE, user="qa.dora")
    train_and_approve(rt, FEW, user="qa.dora")
    install(rt)
    live_step(rt, "TR-OOT", {"mass_g": 106, "temp_c": 20.0})  # out of trend, inside the recipe's limits
    live_step(rt, "TR-ALERT", {"mass_g": 112, "temp_c": 20.0})  # beyond the alert limit (110 g)
    _, reference = equipment.simulated_samples(20, 7)
    drift = Fault("sensor_drift", 30.0, 0.01, "dissolved_o2")
    (samples,), _ = equipment.simulated_samples(1, 2027, reference=reference, faults=[drift])
    batches.start_batch(rt, RECIPE, "TR-EQ", user="sup.carl", parameters={})
    for i in range(0, 90, 15):
        equipment.record_samples(rt, "TR-EQ", UP, "BIOREACTOR-01", samples[i : i + 15])
        run_jobs(rt)
    run_jobs(rt)


@pytest.fixture(scope="module")
def plant(tmp_path_factory, sqlite_template):
    path = tmp_path_factory.mktemp("trends") / "batchline.db"
    shutil.copy(sqlite_template, path)
    rt = make_runtime(f"sqlite:///{path}", session_timeout_minutes=15)
    for username, (printed, roles, secret) in PEOPLE.items():
        users.create_user(rt, username, printed, roles, by="test", password=secret)
    users.create_user(rt, OPERATOR, "Trend Operator", ["operator"], by="test", password="trend-operator-pw-1")
    import_trend_recipe(rt)
    few_bpmn = BPMN.replace(b'name="Weigh (trended)"', b'name="Weigh (few batches)"')
    approved_recipe(rt, {"trend_few.bpmn": few_bpmn}, forms={"weigh_trend": FORM}, recipe=FEW)
    specs = history(20)
    write_history(rt, RECIPE, specs, user="demo")
    equipment.write_simulated_history(rt, [b["batch_id"] for b in specs], seed=7, unit_procedure=UP)
    write_history(rt, FEW, history(3, reviewed_prefix="F-"), user="demo")
    train_and_score(rt)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def url(plant) -> str:
    from web.app import create_app

    server = make_server("127.0.0.1", 0, create_app(runtime=plant), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="trends-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def qa(browser, url):
    """A QA person logged in at 1024x768, in a time zone other than UTC."""
    pages = []

    def open_page(width: int = 1024, timezone: str = "America/New_York"):
        ctx = browser.new_context(
            base_url=url, viewport={"width": width, "height": 768}, locale="en-GB", timezone_id=timezone
        )
        ctx.set_default_timeout(10_000)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.js_errors = errors
        page.goto("/login")
        page.fill("#username", "qa.dora")
        page.fill("#password", password("qa.dora"))
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/$"))
        pages.append(ctx)
        return page

    yield open_page
    for ctx in pages:
        ctx.close()


def fits(page) -> None:
    """No horizontal page scroll: the page is no wider than the window."""
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url}: {width} px wide in a {inner} px window"


def finding_of(plant, batch_id: str, prefix: str = "") -> dict:
    found = [e for e in batches.exceptions(plant, batch_id) if e["source"] == "trend"]
    found = [e for e in found if str(e.get("parameter") or "").startswith(prefix)]
    assert found, f"no trend finding for {batch_id}"
    return found[0]


def pages_to_walk() -> dict[str, str]:
    return {
        "dashboard": "/trends/",
        "chart": f"/trends/{RECIPE}/steps/weigh/mass_g?batch=TR-OOT",
        "duration": f"/trends/{RECIPE}/durations/weigh?batch=TR-OOT",
        "equipment": f"/trends/batches/TR-EQ/equipment/{UP}",
        "few": f"/trends/{FEW}/steps/weigh/mass_g",
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_trend_pages_have_the_navigation_and_fit(qa, artifacts, width):
    page = qa(width)
    for name, path in pages_to_walk().items():
        answer = page.goto(path)
        assert answer.status == 200, path
        nav = page.locator("nav.mainnav")
        assert nav.locator("a", has_text="Batches").count() == 1 and nav.locator("a", has_text="Review").count() == 1
        assert nav.locator("a.active", has_text="Trends").count() == 1
        assert page.locator("header.topbar .who-name").inner_text() == "Dora Lindqvist"
        fits(page)
        text = page.locator("main").inner_text()
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), f"raw ISO time on {path}"
        page.screenshot(path=str(SHOTS / f"p11-trends-{name}-{width}.png"), full_page=True)
        page.screenshot(path=str(artifacts / f"trends-{name}-{width}.png"), full_page=True)
    assert page.js_errors == []


def test_findings_link_to_the_batch_the_exception_and_the_chart(qa, plant):
    page = qa()
    page.goto("/trends/")
    oot = finding_of(plant, "TR-OOT")
    row = page.locator(f"#findings tr[data-id='{oot['id']}']")
    assert row.locator("td[data-label=Step]").inner_text() == "Weigh glucose"  # the step's name, not its BPMN id
    row.locator("a.tr-batch").click()
    page.wait_for_url("**/batches/TR-OOT")
    assert "TR-OOT" in page.locator("h1").inner_text()
    page.go_back()
    row.locator("a.tr-review-link").click()
    page.wait_for_url(f"**/review/TR-OOT#exc-{oot['id']}")
    assert page.locator(f"#exc-{oot['id']}").is_visible()
    page.goto("/trends/")
    row.locator("a.tr-chart-link").click()
    page.wait_for_url(re.compile(rf".*/trends/{RECIPE}/steps/weigh/mass_g\?batch=TR-OOT$"))
    assert page.locator("h1").inner_text().startswith("Mass at Weigh glucose")
    # the chart's points table links its batches too
    page.locator("table.tr-table a", has_text="H-020").click()
    page.wait_for_url("**/batches/H-020")


def test_recipe_limits_are_drawn_with_a_legend_and_out_of_trend_is_no_breach(qa):
    page = qa()
    page.goto(f"/trends/{RECIPE}/steps/weigh/mass_g?batch=TR-OOT")
    svg = page.locator("svg.tr-chart")
    lines = {}
    for line in svg.locator("line.tr-line").all():
        lines.setdefault(line.get_attribute("data-label"), []).append(float(line.get_attribute("y1")))
    usual = "Usual range (from 20 batches)"
    assert sorted(lines) == sorted(["Action limit", "Alert limit", usual, "Centre"])
    assert len(lines["Action limit"]) == len(lines["Alert limit"]) == len(lines[usual]) == 2
    # drawn where they belong: action outside alert outside the usual range, around the centre (SVG y grows down)
    (a_hi, a_lo), (l_hi, l_lo), (u_hi, u_lo) = (sorted(lines[k]) for k in ("Action limit", "Alert limit", usual))
    assert a_hi < l_hi < u_hi < lines["Centre"][0] < u_lo < l_lo < a_lo
    labels = svg.locator("text.tr-line-label").all_text_contents()
    assert "Action limit 120" in labels and "Alert limit 110" in labels and any(t.startswith("Centre ") for t in labels)
    legend = page.locator("ul.tr-legend").inner_text()
    for words in ("Action limit", "80 – 120 g", "Alert limit", "90 – 110 g", usual, "Centre"):
        assert words in legend
    assert "Out of trend, inside the recipe limits" in legend
    # this batch: out of trend (a diamond, ringed), inside the recipe's limits: not a limit breach
    mine = svg.locator("[data-batch='TR-OOT']")
    assert mine.count() == 1 and "tr-oot" in mine.get_attribute("class") and "tr-current" in mine.get_attribute("class")
    verdict = page.locator("#verdict").inner_text()
    assert "out of trend" in verdict and "not a limit breach" in verdict
    # a batch beyond the alert limit is a limit breach, drawn as one
    page.goto(f"/trends/{RECIPE}/steps/weigh/mass_g?batch=TR-ALERT")
    point = page.locator("svg.tr-chart [data-batch='TR-ALERT']")
    assert "tr-breach-alert" in point.get_attribute("class")
    assert "outside the alert limits: a limit breach" in page.locator("#verdict").inner_text()


def test_the_equipment_finding_opens_a_time_series_chart(qa, plant):
    page = qa()
    found = finding_of(plant, "TR-EQ", f"{UP}:")
    page.goto("/trends/")
    page.locator(f"#findings tr[data-id='{found['id']}'] a.tr-chart-link").click()
    page.wait_for_url(f"**/trends/batches/TR-EQ/equipment/{UP}")
    scored = equipment.equipment_samples(plant, "TR-EQ", UP)["unit_procedures"][0]["scores"]
    assert len(scored) > 50
    t2 = page.locator("svg.tr-ts[data-statistic='T²']")
    spe = page.locator("svg.tr-ts[data-statistic='SPE']")
    assert t2.locator("circle.tr-point").count() == len(scored) == spe.locator("circle.tr-point").count()
    over = sum(p["t2_over"] for p in scored)
    assert over > 0 and t2.locator("circle.tr-ts-over").count() == over
    assert t2.locator("line[data-label=Limit]").count() == 1
    statistic = "T²" if found["details"]["statistic"] == "T2" else "SPE"
    ring = page.locator(f"svg.tr-ts[data-statistic='{statistic}'] circle.tr-ts-finding")
    assert ring.count() == 1 and f"#{found['id']}" in ring.locator("title").text_content()
    assert "hours since the unit procedure started" in t2.text_content()
    flagged = page.locator("#flagged").inner_text()
    assert "Dissolved o2" in flagged and "%" in flagged
    assert page.locator(f"#equipment-findings tr[data-id='{found['id']}']").count() == 1
    # QA's review page draws the same statistic inline, and links the equipment page (not an empty chart)
    page.goto("/review/TR-EQ")
    exc = page.locator(f"#exc-{found['id']}")
    assert exc.locator("svg.tr-ts").count() == 1 and "No values recorded" not in exc.inner_text()
    exc.locator("a", has_text="Open the equipment chart").click()
    page.wait_for_url(f"**/trends/batches/TR-EQ/equipment/{UP}")
    fits(page)


def test_too_little_history_is_said_per_value(qa):
    page = qa()
    page.goto(f"/trends/?recipe={FEW}")
    page.locator(f"#unwatched-{FEW} summary").click()
    rows = page.locator(f"#unwatched-{FEW} tr.tr-coverage")
    assert rows.count() == 3  # duration, mass, room temperature
    for row in rows.all():
        assert f"Not enough history: 3 released batches, {MIN_BATCHES} needed" in row.inner_text()
    page.goto(f"/trends/{FEW}/steps/weigh/mass_g")
    assert f"3 released batches, {MIN_BATCHES} needed" in page.locator("#no-model").inner_text()
    assert page.locator("svg.tr-chart line[data-label='Action limit']").count() == 2  # recipe limits even so
    # the well-trained recipe watches everything its history allows
    page.goto(f"/trends/?recipe={RECIPE}")
    assert page.locator(f"#unwatched-{RECIPE}").count() == 0


def test_times_are_local(qa):
    page = qa(timezone="Asia/Tokyo")
    page.goto(f"/trends/{RECIPE}/steps/weigh/mass_g?batch=TR-OOT")
    first = page.locator("time.local-time").first
    assert "UTC" in first.get_attribute("title") and "UTC" not in first.inner_text()
    utc_hour = int(first.get_attribute("datetime")[11:13])
    shown = re.search(r"(\d\d):\d\d", first.inner_text())
    assert shown and int(shown.group(1)) == (utc_hour + 9) % 24
