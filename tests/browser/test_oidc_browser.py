"""The OIDC sign-in and signature in a real browser (Debian chromium through Playwright)
against the real provider: the login page's "Sign in with …" button, the provider's own
login page, back to Batchline as a new person with mapped roles; then a step signed
through the sign dialog's re-authentication window, the value typed before it kept.

Batchline runs on its own server here (not the shared browser one): its redirect URI
must be registered at the provider before the provider starts, on a port reserved by
the provider fixture. SQLite only: the database paths are proven in the other files.
"""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from engine import batches, recipes, users
from engine.models import Signature, User
from tests.browser.conftest import CHROMIUM_ARGS, FIXTURES, RECIPE  # noqa: F401
from tests.identity.oidc_fixture import PASSWORD, oidc_provider, provider_people  # noqa: F401
from tests.support import approved_recipe, make_runtime

pytestmark = pytest.mark.browser

LOCAL = "Local-secret-2025-x"


@pytest.fixture
def oidc_site(tmp_path, sqlite_template, provider_people):  # noqa: F811
    from web.app import create_app

    path = tmp_path / "batchline.db"
    shutil.copy(sqlite_template, path)
    rt = make_runtime(f"sqlite:///{path}", **provider_people.settings(redirect=provider_people.browser_redirect))
    users.create_user(rt, "qa.dora", "Dora Lindqvist", ["qa"], by="test", password=LOCAL)
    users.create_user(rt, "sup.carl", "Carl Svensson", ["supervisor"], by="test", password=LOCAL)
    files = {p.name: p.read_bytes() for p in FIXTURES.glob("*.bpmn")}
    approved_recipe(rt, files, forms=recipes.load_forms_dir(FIXTURES), user="qa.dora")
    server = make_server("127.0.0.1", provider_people.app_port, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="oidc-browser-test-server", daemon=True)
    thread.start()
    yield rt, f"http://127.0.0.1:{provider_people.app_port}"
    server.shutdown()
    thread.join(timeout=10)
    rt.close()


@pytest.fixture
def page(browser, oidc_site):
    _, base_url = oidc_site
    ctx = browser.new_context(base_url=base_url, viewport={"width": 1024, "height": 768}, locale="en-GB")
    ctx.set_default_timeout(15_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    ctx.close()


def provider_login(page, username: str) -> None:
    page.wait_for_selector("#login")
    assert "Test provider sign-in" in page.title()
    page.fill("#login", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")


def sign_in(page, base_url: str, username: str) -> None:
    page.goto("/login")
    page.click("#oidc-login")
    provider_login(page, username)
    page.wait_for_url(lambda url: url.startswith(base_url) and "/login" not in url)


def test_sign_in_through_the_providers_login_page(page, oidc_site):
    rt, base_url = oidc_site
    page.goto("/login")
    assert page.inner_text("#oidc-login") == "Sign in with Test Provider"
    sign_in(page, base_url, "quinn.qa")
    assert page.url.startswith(base_url)
    assert "Quinn Quality" in page.inner_text(".who-name")
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == "quinn.qa")).one()
        assert u.source == "oidc" and sorted(u.roles) == ["operator", "qa"]
    assert page.js_errors == []


def test_a_step_signed_through_the_reauthentication_window(page, oidc_site):
    rt, base_url = oidc_site
    sign_in(page, base_url, "olga.op")
    batch_id = "OIDC-B-0001"
    batches.start_batch(rt, RECIPE, batch_id, user="sup.carl")
    (task,) = batches.ready_tasks(rt, batch_id)
    page.goto(f"/batches/{batch_id}/tasks/{task['id']}")
    page.fill("#f-ph", "7.15")
    page.click("#open-sign")
    assert page.is_visible("#oidc-confirm") and not page.is_visible("#password")
    # first as someone else: the window closes, the dialog says why, nothing is recorded
    with page.expect_popup() as popup_info:
        page.click("#oidc-confirm")
    popup = popup_info.value
    provider_login(popup, "quinn.qa")
    popup.wait_for_event("close")
    page.wait_for_selector(".oidc-status.flash-error")
    assert "as someone else" in page.inner_text(".oidc-status")
    assert batches.ready_tasks(rt, batch_id)[0]["id"] == task["id"]
    assert page.input_value("#f-ph") == "7.15"
    # then as herself
    with page.expect_popup() as popup_info:
        page.click("#oidc-confirm")
    popup = popup_info.value
    # the provider asks for the password again although its session is alive (prompt=login)
    provider_login(popup, "olga.op")
    popup.wait_for_event("close")
    deadline = time.monotonic() + 15
    while batches.ready_tasks(rt, batch_id) and batches.ready_tasks(rt, batch_id)[0]["id"] == task["id"]:
        assert time.monotonic() < deadline, "the step was not recorded"
        time.sleep(0.2)
    with rt.transaction() as s:
        (sig,) = s.scalars(select(Signature).where(Signature.username == "olga.op")).all()
        assert sig.printed_name == "Olga Operator"
    page.wait_for_load_state()
    (step,) = batches.steps(rt, batch_id)
    assert float(step["values"]["ph"]) == 7.15  # the value typed before the re-authentication
    assert page.js_errors == []
