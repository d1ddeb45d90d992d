"""The session cookie in a real browser against the real HTTP server: scripts cannot read
it, and after the Log out button a copy of it (replayed with ``requests``, as a thief
who copied it from the tablet would) opens nothing — page, API or trend pages."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from .test_operator_ui import log_in

pytestmark = pytest.mark.browser


def replay(base_url: str, cookie: str) -> dict[str, int]:
    jar = {"session": cookie}
    return {
        path: requests.get(base_url + path, cookies=jar, allow_redirects=False, timeout=10).status_code
        for path in ("/batches", "/api/batches", "/trends/")
    }


def test_logout_makes_a_copied_cookie_worthless(page: Page, context, base_url):
    log_in(page, "sup.carl")
    (cookie,) = [c for c in context.cookies() if c["name"] == "session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["secure"] is True
    assert "session=" not in page.evaluate("document.cookie")  # HttpOnly: no script reads it
    assert replay(base_url, cookie["value"]) == {"/batches": 200, "/api/batches": 200, "/trends/": 200}
    page.click("button:has-text('Log out')")
    expect(page.locator(".flash-info")).to_contain_text("logged out")
    assert replay(base_url, cookie["value"]) == {"/batches": 302, "/api/batches": 401, "/trends/": 302}
    # and the browser itself is logged out too
    page.goto("/batches")
    expect(page).to_have_url(f"{base_url}/login?next=/batches")


def test_answers_are_not_stored_and_not_sniffed(base_url):
    for path in ("/login", "/api/health", "/api/openapi.json"):
        answer = requests.get(base_url + path, timeout=10)
        assert answer.headers["Cache-Control"] == "no-store", path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert "Strict-Transport-Security" not in answer.headers  # plain HTTP: no HSTS
    refused = requests.delete(base_url + "/api/health", timeout=10)
    assert refused.status_code == 405 and refused.json()["code"] == "method_not_allowed"
    assert "GET" in refused.headers["Allow"]
