"""Browser tests: the real app on a real HTTP server (werkzeug, in a thread) on a fresh
SQLite database, driven by Playwright through Debian's /usr/bin/chromium.

Playwright cannot download a browser here, so the tests use the distribution's
chromium (``make browser`` installs it). Without it: skipped with a reason, or — with
``CI=true`` — failed, so a green CI always means the browser tests ran. Screenshots go
to ``test-artifacts/browser/`` (git-ignored) for people to look at. Tests that need no
browser (``test_ui_pages.py``, Flask's test client) share the same app setup and run
in the fast suite.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine import batches, recipes, users
from tests.support import approved_recipe, make_runtime

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
ARTIFACTS = HERE.parent.parent / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("BATCHLINE_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"]
RECIPE = "buffer_prep"

#: user id -> (printed name, roles, password)
PEOPLE = {
    "op.anna": ("Anna Keller", ["operator"], "Anna-secret-2025"),
    "op.ben": ("Ben Okafor", ["operator"], "Ben-secret-2025"),
    "sup.carl": ("Carl Svensson", ["supervisor"], "Carl-secret-2025"),
    "qa.dora": ("Dora Lindqvist", ["qa"], "Dora-secret-2025"),
}


def password(username: str) -> str:
    return PEOPLE[username][2]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        message = f"Debian chromium not found at {CHROMIUM} (install it: make browser, or apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: browser tests must run)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def runtime(tmp_path_factory, sqlite_template):
    path = tmp_path_factory.mktemp("browser") / "batchline.db"
    shutil.copy(sqlite_template, path)
    # production cookie settings (Secure): Chromium keeps a Secure cookie from http://127.0.0.1
    rt = make_runtime(f"sqlite:///{path}", session_timeout_minutes=15)
    for username, (printed, roles, secret) in PEOPLE.items():
        users.create_user(rt, username, printed, roles, by="test", password=secret)
    files = {p.name: p.read_bytes() for p in FIXTURES.glob("*.bpmn")}
    approved_recipe(rt, files, forms=recipes.load_forms_dir(FIXTURES), user="qa.dora")
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def base_url(runtime) -> str:
    """The app served over HTTP on a free port of 127.0.0.1 for the whole session."""
    from web.app import create_app

    app = create_app(runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser, base_url):
    ctx = browser.new_context(
        base_url=base_url, viewport={"width": 1024, "height": 768}, locale="en-GB", timezone_id="UTC"
    )
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors
    return page


_batch_counter = iter(range(1, 10_000))


@pytest.fixture
def new_batch(runtime):
    """Start a fresh batch of the test recipe; returns its id."""

    def start() -> str:
        batch_id = f"BUF-{next(_batch_counter):04d}"
        batches.start_batch(runtime, RECIPE, batch_id, user="sup.carl")
        return batch_id

    return start


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
