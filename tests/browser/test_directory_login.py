"""A person of the plant's LDAP directory logs in through the normal login page in a real
browser: a real slapd (``tests.identity.slapd``, StartTLS required) and an app of its own
configured for it (the shared browser runtime has no directory and stays untouched)."""

from __future__ import annotations

import shutil
import threading

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.identity import slapd as slapd_server
from tests.support import IN_CI, make_runtime

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    if not slapd_server.available():
        message = "OpenLDAP's slapd / slapadd / ldapdelete not installed (make test-services)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the directory tests must run)")
        pytest.skip(message)
    server = slapd_server.start(tmp_path_factory.mktemp("slapd-browser"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def directory_app_url(directory, tmp_path_factory, sqlite_template):
    from web.app import create_app

    path = tmp_path_factory.mktemp("directory-browser") / "batchline.db"
    shutil.copy(sqlite_template, path)
    rt = make_runtime(f"sqlite:///{path}", **directory.settings())
    server = make_server("127.0.0.1", 0, create_app(runtime=rt), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="directory-browser-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    rt.close()


def test_a_directory_person_logs_in_through_the_login_page(browser, directory_app_url, artifacts):
    ctx = browser.new_context(base_url=directory_app_url, locale="en-GB", timezone_id="UTC")
    ctx.set_default_timeout(10_000)
    try:
        page = ctx.new_page()
        page.goto("/login")
        page.fill("#username", "dora")
        page.fill("#password", "wrong password")
        page.click("button:has-text('Log in')")
        expect(page.locator("body")).to_contain_text("user id or password is wrong", ignore_case=True)
        page.fill("#username", "dora")
        page.fill("#password", slapd_server.password_of("dora"))
        page.click("button:has-text('Log in')")
        expect(page.locator(".who-name")).to_contain_text("Dora Quality")
        page.screenshot(path=str(artifacts / "directory-login.png"))
    finally:
        ctx.close()
