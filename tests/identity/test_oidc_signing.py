"""A Part 11 signature by an OIDC person (21 CFR 11.200): the sign dialog's
re-authentication round trip through the real provider (``prompt=login``,
``max_age=0``) yields a one-time grant bound to the person and the browser session;
the step is recorded with it and the values typed are kept while it is missing. Replayed,
stale, someone else's or another session's grants are refused, and the API's
id + password signature tells an OIDC person to sign in the browser. SQLite and
PostgreSQL; the provider is a real Node process; Batchline is Flask's test client."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from engine import batches, recipes, users
from engine.identity import oidc_state
from engine.models import AuditEvent, OidcSigningGrant, Signature, User
from tests.browser.conftest import FIXTURES, RECIPE
from tests.identity.oidc_fixture import (  # noqa: F401  (fixtures)
    oidc_provider,
    provider_people,
    query_of,
    through_provider,
)
from tests.support import approved_recipe, make_runtime

LOCAL = "Local-secret-2025-x"


def _app_on(db_url, provider, **overrides):
    from web.app import create_app

    rt = make_runtime(db_url, **provider.settings(**overrides))
    return rt, create_app(runtime=rt)


@pytest.fixture
def plant(db_url, provider_people):  # noqa: F811
    rt, app = _app_on(db_url, provider_people)
    users.create_user(rt, "qa.dora", "Dora Lindqvist", ["qa"], by="test", password=LOCAL)
    users.create_user(rt, "sup.carl", "Carl Svensson", ["supervisor"], by="test", password=LOCAL)
    files = {p.name: p.read_bytes() for p in FIXTURES.glob("*.bpmn")}
    approved_recipe(rt, files, forms=recipes.load_forms_dir(FIXTURES), user="qa.dora")
    yield rt, app
    rt.close()


class Browser:
    """One browser: Batchline's test client and the provider's cookies."""

    def __init__(self, app):
        self.web = app.test_client()
        self.provider = httpx.Client(timeout=10)

    def sign_in(self, username: str) -> None:
        start = self.web.get("/login/oidc").headers["Location"]
        r = self.web.get(through_provider(start, username, browser=self.provider))
        assert r.status_code == 302, r.text

    def confirm(self, username: str, logins: list[str] | None = None, delay: float = 0.0):
        """The sign dialog's small window: returns Batchline's answer to its callback."""
        r = self.web.get("/login/oidc/reauth")
        assert r.status_code == 302, r.text
        q = query_of(r.headers["Location"])
        assert q["prompt"] == "login" and q["max_age"] == "0"
        callback = through_provider(r.headers["Location"], username, browser=self.provider, logins=logins)
        time.sleep(delay)
        return self.web.get(callback)

    def close(self) -> None:
        self.provider.close()


def grant_of(html: str) -> str:
    return re.search(r'data-grant="([^"]+)"', html).group(1)


def code_of(html: str) -> str:
    return re.search(r'data-code="([^"]*)"', html).group(1)


def task_url(rt, batch_id: str) -> str:
    (task,) = batches.ready_tasks(rt, batch_id)
    return f"/batches/{batch_id}/tasks/{task['id']}"


def form_of(web, url: str) -> dict[str, str]:
    page = web.get(url).text
    fields = dict(re.findall(r'name="(csrf_token|idempotency_key)" value="([^"]+)"', page))
    return fields


_ids = iter(range(1, 10_000))


def new_batch(rt) -> str:
    batch_id = f"OIDC-{next(_ids):04d}"
    batches.start_batch(rt, RECIPE, batch_id, user="sup.carl")
    return batch_id


def signatures_of(rt, username: str) -> list[Signature]:
    with rt.transaction() as s:
        rows = s.scalars(select(Signature).where(Signature.username == username)).all()
        s.expunge_all()
        return list(rows)


def active(rt, username: str) -> bool:
    with rt.transaction() as s:
        return bool(s.scalars(select(User.active).where(User.username == username)).one())


def test_an_oidc_person_signs_a_step_through_the_provider(plant):
    rt, app = plant
    b = Browser(app)
    try:
        b.sign_in("olga.op")
        batch_id = new_batch(rt)
        url = task_url(rt, batch_id)
        page = b.web.get(url).text
        assert 'id="oidc-confirm"' in page and 'name="oidc_grant"' in page and 'name="password"' not in page
        # without a grant: refused, nothing recorded, the value typed is still there
        form = form_of(b.web, url)
        r = b.web.post(url, data={**form, "ph": "7.10"})

        assert r.status_code == 401 and "Confirm your identity" in r.text and 'value="7.10"' in r.text
        assert batches.ready_tasks(rt, batch_id)[0]["id"] in url
        # the round trip: the provider asks for the password again although its session is alive
        logins: list[str] = []
        r = b.confirm("olga.op", logins=logins)
        assert r.status_code == 200 and logins == ["olga.op"]
        grant = grant_of(r.text)
        r = b.web.post(url, data={**form, "ph": "7.10", "oidc_grant": grant})
        assert r.status_code == 303, r.text
        assert not [t for t in batches.ready_tasks(rt, batch_id) if t["id"] in url]
        (sig,) = signatures_of(rt, "olga.op")
        assert sig.printed_name == "Olga Operator"
        # the grant is used up: the next step with the same grant is refused
        url2 = task_url(rt, new_batch(rt))
        form2 = form_of(b.web, url2)
        r = b.web.post(url2, data={**form2, "ph": "7.20", "oidc_grant": grant})
        assert r.status_code == 401 and "used already or has expired" in r.text
        assert len(signatures_of(rt, "olga.op")) == 1
    finally:
        b.close()


def test_a_stale_authentication_gives_no_grant(db_url, plant, provider_people):  # noqa: F811
    rt, _ = plant
    rt2, app = _app_on(db_url, provider_people, oidc_reauth_seconds=1)
    b = Browser(app)
    try:
        b.sign_in("olga.op")
        r = b.confirm("olga.op", delay=2.5)
        assert r.status_code == 403 and code_of(r.text) == "oidc_stale_auth" and "data-grant" not in r.text
    finally:
        b.close()
        rt2.close()


def test_confirming_as_someone_else_gives_no_grant(plant):
    rt, app = plant
    b = Browser(app)
    try:
        b.sign_in("olga.op")
        r = b.confirm("quinn.qa")
        assert r.status_code == 403 and code_of(r.text) == "oidc_other_person" and "data-grant" not in r.text
        with rt.transaction() as s:
            reasons = s.scalars(
                select(AuditEvent.reason).where(
                    AuditEvent.object_id == "olga.op", AuditEvent.action == "auth.signature_failed"
                )
            ).all()
        assert reasons == ["OIDC re-authentication refused: oidc_other_person"]
        with rt.transaction() as s:  # the other person's answer changed nothing about them
            assert s.scalars(select(User).where(User.username == "quinn.qa")).first() is None
    finally:
        b.close()


def test_a_grant_works_only_in_its_session_for_its_person(plant):
    rt, app = plant
    first, second = Browser(app), Browser(app)
    try:
        first.sign_in("olga.op")
        second.sign_in("olga.op")
        grant = grant_of(first.confirm("olga.op").text)
        batch_id = new_batch(rt)
        url = task_url(rt, batch_id)
        form = form_of(second.web, url)
        r = second.web.post(url, data={**form, "ph": "7.10", "oidc_grant": grant})
        assert r.status_code == 401 and "used already or has expired" in r.text
        # nor for another person, nor after it expired, nor twice (concurrent submits race for one use)
        with first.web.session_transaction() as cookie:
            session_id = oidc_state.digest(cookie["sid"])
        assert not oidc_state.consume(rt, grant, "quinn.qa", session_id)
        old = oidc_state.grant(rt, "olga.op", session_id, datetime.now(UTC))
        with rt.transaction() as s:
            s.execute(
                update(OidcSigningGrant)
                .where(OidcSigningGrant.id == oidc_state.digest(old))
                .values(created_at=datetime.now(UTC) - timedelta(seconds=rt.settings.oidc_grant_seconds + 1))
            )
        assert not oidc_state.consume(rt, old, "olga.op", session_id)
        assert oidc_state.consume(rt, grant, "olga.op", session_id)
        assert not oidc_state.consume(rt, grant, "olga.op", session_id)
        for hostile in (None, 42, "", "x" * 5000, ["a"]):
            assert not oidc_state.consume(rt, hostile, "olga.op", session_id)
    finally:
        first.close()
        second.close()


def test_someone_removed_from_the_provider_cannot_sign(plant, provider_people):  # noqa: F811
    rt, app = plant
    b = Browser(app)
    try:
        b.sign_in("olga.op")
        provider_people.people({})
        with pytest.raises(AssertionError, match="refused the sign-in: 401"):
            b.confirm("olga.op")
    finally:
        b.close()


def test_a_person_whose_groups_no_longer_map_cannot_sign(plant, provider_people):  # noqa: F811
    rt, app = plant
    b = Browser(app)
    try:
        b.sign_in("olga.op")
        provider_people.people({"olga.op": ("sub-olga-0001", "Olga Operator", ["canteen"])})
        r = b.confirm("olga.op")
        assert code_of(r.text) in {"no_role", "oidc_session"} and "data-grant" not in r.text
        assert not active(rt, "olga.op")
    finally:
        b.close()


def test_the_reauthentication_needs_an_oidc_person_logged_in(plant):
    rt, app = plant
    web = app.test_client()
    assert web.get("/login/oidc/reauth").status_code == 302  # to the login page
    page = web.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    web.post("/login", data={"csrf_token": csrf, "username": "sup.carl", "password": LOCAL})
    r = web.get("/login/oidc/reauth")
    assert r.status_code == 403 and code_of(r.text) == "oidc_not_oidc"


def test_over_the_api_an_oidc_person_is_told_to_sign_in_the_browser(plant):
    rt, app = plant
    b = Browser(app)
    try:
        b.sign_in("olga.op")
        batch_id = new_batch(rt)
        (task,) = batches.ready_tasks(rt, batch_id)
        headers = {"Authorization": "Bearer " + users.create_token(rt, "olga.op", "tests", by="test")}
        r = app.test_client().post(
            f"/api/batches/{batch_id}/tasks/{task['id']}/complete",
            json={"data": {"ph": 7.1}, "signature": {"username": "olga.op", "password": "anything"}},
            headers=headers,
        )
        assert r.status_code == 401 and r.json["code"] == "sign_in_browser"
        assert "sign this in the browser" in r.json["message"]
        assert batches.ready_tasks(rt, batch_id)[0]["id"] == task["id"]
    finally:
        b.close()


def test_an_oidc_qa_person_signs_a_qualification_with_a_grant(plant):
    """Every sign dialog of the browser offers the re-authentication (not only the task page)."""
    rt, app = plant
    b = Browser(app)
    try:
        b.sign_in("quinn.qa")
        page = b.web.get("/qualifications/").text
        assert 'id="oidc-confirm"' in page and 'id="revoke-oidc-confirm"' in page and 'name="password"' not in page
        form = {
            **form_of(b.web, "/qualifications/"),
            "username": "sup.carl",
            "qualification": "aseptic-gowning",
            "valid_until": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
        }
        r = b.web.post("/qualifications/grant", data=form)
        assert r.status_code == 401 and "Confirm your identity" in r.text
        grant = grant_of(b.confirm("quinn.qa").text)
        r = b.web.post("/qualifications/grant", data={**form, "oidc_grant": grant})
        assert r.status_code == 303, r.text
        assert "sup.carl holds aseptic-gowning" in b.web.get("/qualifications/").text
    finally:
        b.close()
