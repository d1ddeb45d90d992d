"""A real OIDC provider for the tests: panva's certified ``oidc-provider`` (npm, pinned in
``oidc_provider/package.json``; ``make test-services`` runs ``npm ci`` there) started as
a Node process on a free port for the whole session, and a helper that walks its login
page over real HTTP the way a browser would (redirects, cookies, the login form).

Without node or the npm package the tests are skipped with a reason, or — with
``CI=true`` — failed, so a green CI always means they ran against the real provider.
The people the provider knows are in a JSON file the test rewrites (``people(...)``);
the provider reads it at every sign-in, so removing a person or changing their groups
takes effect at the next sign-in.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.support import IN_CI

HERE = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "batchline"
OTHER_CLIENT_ID = "other-app"
CLIENT_SECRET = "test-client-secret-0123456789"
SECRET_ENV = "BATCHLINE_TEST_OIDC_SECRET"
#: the redirect URI of Flask test-client flows (never fetched: the helper stops there)
TEST_REDIRECT = "http://batchline.test/login/oidc/callback"
PASSWORD = "provider-pass-2025"

#: the provider's people at the start of every test: username -> (sub, name, groups)
PEOPLE = {
    "olga.op": ("sub-olga-0001", "Olga Operator", ["mfg-operators"]),
    "quinn.qa": ("sub-quinn-0002", "Quinn Quality", ["qa-team", "mfg-operators"]),
    "nora.none": ("sub-nora-0003", "Nora Nogroup", ["canteen"]),
}
GROUP_ROLES = ("mfg-operators=operator", "qa-team=qa", "mfg-supervisors=supervisor")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OidcProvider:
    issuer: str
    accounts_file: Path
    app_port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def browser_redirect(self) -> str:
        return f"http://127.0.0.1:{self.app_port}/login/oidc/callback"

    def people(self, people: dict[str, tuple[str, str, list[str]]] | None = None) -> None:
        """Who the provider knows from now on (default: ``PEOPLE``), all with ``PASSWORD``."""
        people = PEOPLE if people is None else people
        accounts = [
            {"sub": sub, "preferred_username": name, "name": printed, "groups": groups, "password": PASSWORD}
            for name, (sub, printed, groups) in people.items()
        ]
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"accounts": accounts}), encoding="utf-8")
        tmp.replace(self.accounts_file)

    def settings(self, redirect: str = TEST_REDIRECT, **overrides: Any) -> dict[str, Any]:
        """Batchline settings pointing at this provider (for ``make_runtime``)."""
        os.environ[SECRET_ENV] = CLIENT_SECRET
        values: dict[str, Any] = dict(
            oidc_issuer=self.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=f"env:{SECRET_ENV}",
            oidc_redirect_url=redirect,
            oidc_display_name="Test Provider",
            oidc_group_roles=GROUP_ROLES,
            oidc_scopes=("openid", "profile", "groups"),
        )
        values.update(overrides)
        return values


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: the OIDC tests must run against the real provider)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed (Node 20+ runs the test OIDC provider)")
    if not (HERE / "node_modules" / "oidc-provider" / "package.json").is_file():
        _missing(f"the oidc-provider npm package is not installed: make test-services (npm ci in {HERE})")
    accounts = tmp_path_factory.mktemp("oidc") / "accounts.json"
    port, app_port = free_port(), free_port()
    env = {
        **os.environ,
        "OIDC_ACCOUNTS": str(accounts),
        "OIDC_REDIRECT_URIS": f"{TEST_REDIRECT},http://127.0.0.1:{app_port}/login/oidc/callback",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_OTHER_CLIENT_ID": OTHER_CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    log = accounts.with_name("provider.log").open("w")
    process = subprocess.Popen([node, "server.js", str(port)], cwd=HERE, env=env, stdout=log, stderr=log)
    provider = OidcProvider(f"http://127.0.0.1:{port}", accounts, app_port, process)
    provider.people()
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"the OIDC provider stopped: {accounts.with_name('provider.log').read_text()[-2000:]}")
            try:
                if httpx.get(provider.issuer + "/.well-known/openid-configuration", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the OIDC provider did not answer within 20 s")
            time.sleep(0.1)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def provider_people(oidc_provider):
    """The provider with ``PEOPLE`` at the start of the test (a test may change them)."""
    oidc_provider.people()
    yield oidc_provider
    oidc_provider.people()


def through_provider(
    provider_url: str,
    username: str,
    password: str = PASSWORD,
    browser: httpx.Client | None = None,
    redirect: str = TEST_REDIRECT,
    logins: list[str] | None = None,
) -> str:
    """Follow the provider from the authorization URL to the redirect back, signing in on
    its login page when it asks; returns the callback's path and query (for the test
    client). ``browser`` keeps the provider's cookies (its session) between calls;
    ``logins`` collects the user names typed on its login page (to see it asked)."""
    own = browser is None
    browser = browser or httpx.Client(timeout=10)
    url = provider_url
    try:
        for _ in range(20):
            if url.startswith(redirect):
                parts = urlsplit(url)
                return parts.path + "?" + parts.query
            answer = browser.get(url)
            if answer.status_code in (302, 303) and "location" in answer.headers:
                url = urljoin(url, answer.headers["location"])
                continue
            if answer.status_code == 200 and 'name="login"' in answer.text:
                action = answer.text.split('action="', 1)[1].split('"', 1)[0]
                if logins is not None:
                    logins.append(username)
                posted = browser.post(urljoin(url, action), data={"login": username, "password": password})
                if posted.status_code not in (302, 303):
                    raise AssertionError(f"the provider refused the sign-in: {posted.status_code} {posted.text[:300]}")
                url = urljoin(url, posted.headers["location"])
                continue
            if answer.status_code == 200 and "<title>Submitting Callback</title>" in answer.text:
                # the provider's self-submitting form (signing in as another person ends its
                # earlier session first): a browser posts it at once
                action = re.search(r'<form method="post" action="([^"]+)"', answer.text).group(1)
                inputs = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"/>', answer.text))
                posted = browser.post(html.unescape(action), data=inputs)
                url = urljoin(url, posted.headers["location"])
                continue
            raise AssertionError(f"unexpected answer from the provider: {answer.status_code} {answer.text[:300]}")
        raise AssertionError("too many redirects at the provider")
    finally:
        if own:
            browser.close()


def query_of(path_and_query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path_and_query).query).items()}
