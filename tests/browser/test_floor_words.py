"""Pages speak the floor's words (issue 13): no regular expressions, no camelCase limit
names, no BPMN file names or process ids, no raw ISO/UTC timestamps — times in the
site's zone with its abbreviation. The record's machine formats (API JSON) keep ISO UTC.
Templates are scanned too, so a new page cannot bring raw timestamps back."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine import batches
from tests.web.scan_recipe import RECIPE as SCAN_RECIPE
from tests.web.scan_recipe import install
from web.ui import times
from web.ui.diagram import diagram_view

from .conftest import password
from .test_operator_ui import complete_first_step, log_in
from .test_ui_pages import log_in as client_log_in
from .test_ui_pages import task_form

TEMPLATES = Path(__file__).resolve().parents[2] / "web" / "templates" / "ui"
#: templates other helpers own (the session and error pages have no stored times)
NOT_MINE = {"login.html", "base.html", "error.html", "_sign.html"}

REGEX_LIKE = re.compile(r"\[0-9\]|\[A-Z\]|\\d|\{\d+(,\d*)?\}|\(\?[:=!]")
LIMIT_KEYS = re.compile(r"\b(hard(Min|Max)|alert(Low|High)|action(Low|High))\b")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?")
BPMN_FILE = re.compile(r"\b[\w-]+\.bpmn\b")


def visible(html: str) -> str:
    """The text a person reads: no tags (attributes such as datetime= are for machines),
    no scripts, styles or hidden inputs."""
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", "", html)
    html = re.sub(r"(?s)<!--.*?-->", "", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_templates_render_no_raw_timestamps():
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        if path.name in NOT_MINE:
            continue
        text = path.read_text()
        for pattern, why in (
            (r"isoformat\(\)", "isoformat() shown as text"),
            (r"\|\s*utc\b", "the UTC filter (use |when)"),
            (r"(?<!value=\")\{\{\s*[\w.]+_(at|until|from)\s*\}\}", "a stored time printed raw"),
            (r"Dates are UTC", "UTC dates"),
        ):
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(TEMPLATES)}:{line}: {why}")
    assert problems == []


def test_when_shows_the_sites_zone_with_its_abbreviation():
    moment = datetime(2026, 12, 1, 20, 4, 5, tzinfo=UTC)
    zurich = times.site_zone("Europe/Zurich")
    assert times.when_text(moment, zurich) == "1 Dec 2026, 21:04 CET"
    assert times.when_text("2026-07-01T20:04:05+00:00", zurich) == "1 Jul 2026, 22:04 CEST"
    assert times.when_text(moment, zurich, "seconds") == "1 Dec 2026, 21:04:05 CET"
    assert times.when_text("2026-12-01T20:04:05", times.site_zone("UTC")) == "1 Dec 2026, 20:04 UTC"  # naive = UTC
    # an expiry date is a day of the calendar: it does not move west of Greenwich
    assert times.when_text("2027-01-31T00:00:00+00:00", times.site_zone("America/Chicago"), "date") == "31 Jan 2027"
    markup = str(times.when(moment, zurich))
    assert (
        markup == '<time datetime="2026-12-01T20:04:05Z" title="2026-12-01 20:04:05 UTC">1 Dec 2026, 21:04 CET</time>'
    )
    assert str(times.when(None, zurich)) == "—" and str(times.when("<b>x</b>", zurich)) == "&lt;b&gt;x&lt;/b&gt;"
    assert times.site_zone("Not/AZone") is UTC  # a wrong setting shows UTC, it does not fail every page


def test_diagram_tabs_are_named_by_their_process():
    main = '<bpmn:process id="mab" name="mAb upstream">'
    sub = '<bpmn:process id="mp_vessel_setup" name="Vessel set-up &amp; checks"><bpmndi:BPMNDiagram/>'
    bare = '<process id="hv_harvest">'
    view = diagram_view(
        {"bpmn": {"z_main.bpmn": main, "a_setup.bpmn": sub, "b.bpmn": bare}, "process_id": "mab", "done": []}
    )
    assert [f["label"] for f in view["files"]] == ["mAb upstream", "Vessel set-up & checks", "hv harvest"]


@pytest.fixture
def app(runtime):
    from web.app import create_app

    return create_app(runtime=runtime)


def test_pages_speak_the_floors_words(app, runtime, new_batch):
    ids = install(runtime, "FW")
    batch_id = new_batch()
    complete_first_step(runtime, batch_id, ph="7.30")  # an alert exception, with its limits
    batches.start_batch(runtime, SCAN_RECIPE, "FW-SCAN-1", user="sup.carl")
    (scan_task,) = batches.ready_tasks(runtime, "FW-SCAN-1")
    pages = {
        "op.anna": [
            "/",
            f"/batches/{batch_id}",
            f"/batches/{batch_id}/steps/1",
            f"/batches/FW-SCAN-1/tasks/{scan_task['id']}",
            "/batches",
            f"/lots/{ids['lot_ok']}",
            "/qualifications/",
        ],
        "sup.carl": [f"/batches/{batch_id}", "/equipment/", f"/equipment/{ids['vessel_ok']}", "/lots/"],
        "qa.dora": ["/review/", f"/review/{batch_id}", "/recipes/"],
    }
    seen = 0
    for who, urls in pages.items():
        client = app.test_client()
        client_log_in(client, who)
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, (who, url)
            text = visible(r.text)
            for name, pattern in (
                ("a regular expression", REGEX_LIKE),
                ("a camelCase limit name", LIMIT_KEYS),
                ("a raw ISO time", ISO_TIME),
                ("a BPMN file name", BPMN_FILE),
            ):
                found = pattern.search(text)
                assert found is None, (
                    f"{who} {url}: {name} {found.group(0)!r} in …{text[max(0, found.start() - 80) : found.end() + 80]}…"
                )
            seen += 1
            if url == "/recipes/":  # and each recipe's page (history included)
                urls.extend(sorted(set(re.findall(r'href="(/recipes/\d+)"', r.text)))[:3])
    assert seen >= 15
    # the machine formats stay ISO UTC
    body = app.test_client()
    client_log_in(body, "op.anna")
    assert ISO_TIME.search(str(batches.get_batch(runtime, batch_id)["created_at"]))


def test_a_value_beyond_the_hard_limit_is_refused_in_words(app, new_batch):
    batch_id = new_batch()
    client = app.test_client()
    client_log_in(client, "op.anna")
    url, csrf, key = task_form(client, batch_id)
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "idempotency_key": key,
            "ph": "8.5",
            "signer_id": "op.anna",
            "password": password("op.anna"),
        },
    )
    assert r.status_code == 422
    text = visible(r.text)
    assert "Buffer pH 8.5 pH is above the upper limit of 8.00 pH (hard limit); it cannot be recorded." in text
    assert LIMIT_KEYS.search(text) is None


@pytest.mark.browser
def test_the_limits_and_the_live_hint_read_as_words(page, new_batch, artifacts):
    batch_id = new_batch()
    log_in(page, "op.anna")
    page.goto(f"/batches/{batch_id}")
    page.click("#tasks a:has-text('Adjust buffer pH')")
    page.fill("#f-ph", "8.5")
    expect(page.locator("#f-ph-hint")).to_contain_text("allowed 6.00 to 8.00 pH")
    page.screenshot(path=str(artifacts / "floor-words-hard-limit.png"))
    assert LIMIT_KEYS.search(page.inner_text("main")) is None
    assert page.js_errors == []


def test_recorded_dates_and_times_read_as_words_and_stay_iso_in_the_record(app):
    from web.ui.record_rows import record_rows

    fields = {
        "sampled": {"key": "sampled", "label": "Sampled at", "type": "datetime", "subtype": "datetime"},
        "made": {"key": "made", "label": "Made on", "type": "datetime", "subtype": "date"},
        "shift": {"key": "shift", "label": "Shift start", "type": "datetime", "subtype": "time"},
    }
    step = {"values": {"sampled": "2026-12-01T10:04:05+01:00", "made": "2026-11-30", "shift": "06:00:00"}}
    with app.app_context():
        rows = {r["key"]: r["recorded"] for r in record_rows(step, fields)}
    zone = times.site_zone(app.extensions["batchline"].settings.site_timezone)
    assert rows["sampled"] == times.when_text("2026-12-01T09:04:05+00:00", zone, "seconds")
    assert rows["made"] == "30 Nov 2026" and rows["shift"] == "06:00:00"
    assert step["values"]["sampled"] == "2026-12-01T10:04:05+01:00"  # the record keeps what was entered


def test_without_a_setting_the_servers_zone_follows_summer_time(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Zurich")
    times.site_zone.cache_clear()
    try:
        zone = times.site_zone("")
        assert times.when_text("2026-07-01T12:00:00+00:00", zone) == "1 Jul 2026, 14:00 CEST"
        assert times.when_text("2026-12-01T12:00:00+00:00", zone) == "1 Dec 2026, 13:00 CET"
    finally:
        times.site_zone.cache_clear()
