"""Browser sign-in with a real OIDC provider (panva's oidc-provider, a Node process),
walked over real HTTP, with Batchline served by Flask's test client; on SQLite and
PostgreSQL. What is proven: the person is created with the roles of their mapped groups,
later group changes change the roles (audited), a person with no mapped group or
removed from the provider is refused (and deactivated, audited), every forged or replayed
callback is refused with a page in the user's words and creates nothing, and a user id
taken by a local account is an ``identity_conflict``."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from sqlalchemy import func, select, update

from engine import users
from engine.identity import oidc
from engine.models import AuditEvent, LoginSession, OidcRequest, User
from tests.identity.oidc_fixture import (  # noqa: F401  (fixtures)
    PEOPLE,
    TEST_REDIRECT,
    oidc_provider,
    provider_people,
    query_of,
    through_provider,
)
from tests.support import make_runtime

LOCAL_PASSWORD = "Local-admin-secret-2025"


@pytest.fixture
def oidc_rt(db_url, provider_people):  # noqa: F811
    rt = make_runtime(db_url, **provider_people.settings())
    users.create_user(rt, "break.glass", "Break Glass", ["admin"], by="test", password=LOCAL_PASSWORD)
    yield rt
    rt.close()


@pytest.fixture
def web(oidc_rt):
    from web.app import create_app

    return create_app(runtime=oidc_rt).test_client()


def start(web, next_url: str | None = None) -> str:
    r = web.get("/login/oidc" + (f"?next={next_url}" if next_url else ""))
    assert r.status_code == 302, r.text
    return r.headers["Location"]


def sign_in(web, username: str, next_url: str | None = None):
    """The whole round trip; returns Batchline's answer to the callback."""
    return web.get(through_provider(start(web, next_url), username))


def person_row(rt, username: str) -> User | None:
    with rt.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).first()
        if u is not None:
            s.expunge(u)
        return u


def audit_actions(rt, username: str) -> list[tuple[str, object, object]]:
    with rt.transaction() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.object_id == username).order_by(AuditEvent.id))
        return [(r.action, _value(r.old), _value(r.new)) for r in rows]


def _value(text: str | None) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def count(rt, model) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def code_of(html: str) -> str:
    return re.search(r'data-code="([^"]*)"', html).group(1)


def test_login_page_offers_the_provider_and_the_local_login(web):
    page = web.get("/login").text
    assert "Sign in with Test Provider" in page and 'id="oidc-login"' in page
    assert 'name="password"' in page  # break-glass and service accounts keep the local login


def test_the_authorization_request_uses_pkce_state_and_nonce(web, oidc_rt):
    q = query_of(start(web))
    assert q["response_type"] == "code" and q["client_id"] == "batchline"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 40 and len(q["nonce"]) >= 40 and q["redirect_uri"] == TEST_REDIRECT
    assert "openid" in q["scope"].split()
    # the verifier and nonce stay on the server; state only as its hash
    with oidc_rt.transaction() as s:
        (row,) = s.scalars(select(OidcRequest)).all()
        assert row.id != q["state"] and row.nonce == q["nonce"] and row.code_verifier not in q.values()


def test_first_sign_in_creates_the_person_with_mapped_roles(web, oidc_rt, provider_people):  # noqa: F811
    r = sign_in(web, "quinn.qa", next_url="/batches")
    assert r.status_code == 302 and r.headers["Location"] == "/batches"
    u = person_row(oidc_rt, "quinn.qa")
    assert u.source == "oidc" and u.external_id == f"{provider_people.issuer}|sub-quinn-0002"
    assert sorted(u.roles) == ["operator", "qa"] and u.printed_name == "Quinn Quality" and u.password_hash is None
    actions = [a for a, _, _ in audit_actions(oidc_rt, "quinn.qa")]
    assert actions == ["user.create", "auth.login"]
    home = web.get("/")
    assert home.status_code == 200 and "Quinn Quality" in home.text
    assert count(oidc_rt, LoginSession) == 1


def test_a_group_change_changes_the_roles_audited(web, oidc_rt, provider_people):  # noqa: F811
    assert sign_in(web, "quinn.qa").status_code == 302
    people = dict(PEOPLE)
    people["quinn.qa"] = ("sub-quinn-0002", "Quinn Q. Quality", ["mfg-supervisors"])
    provider_people.people(people)
    assert sign_in(web, "quinn.qa").status_code == 302
    u = person_row(oidc_rt, "quinn.qa")
    assert u.roles == ["supervisor"] and u.printed_name == "Quinn Q. Quality"
    changes = [(a, o, n) for a, o, n in audit_actions(oidc_rt, "quinn.qa") if a == "user.roles"]
    assert changes == [("user.roles", ["operator", "qa"], ["supervisor"])]


def test_a_renamed_provider_account_keeps_its_person(web, oidc_rt, provider_people):  # noqa: F811
    """``sub`` decides who it is; a new name at the provider does not make a new user."""
    assert sign_in(web, "olga.op").status_code == 302
    people = dict(PEOPLE)
    people["olga.renamed"] = people.pop("olga.op")
    provider_people.people(people)
    assert sign_in(web, "olga.renamed").status_code == 302
    assert person_row(oidc_rt, "olga.renamed") is None and person_row(oidc_rt, "olga.op").active
    assert "user.directory_name" in [a for a, _, _ in audit_actions(oidc_rt, "olga.op")]


def test_no_mapped_group_is_refused_and_deactivates(web, oidc_rt, provider_people):  # noqa: F811
    # never signed in: refused, nobody created
    r = sign_in(web, "nora.none")
    assert r.status_code == 403 and code_of(r.text) == "no_role" and "no Batchline role" in r.text
    assert person_row(oidc_rt, "nora.none") is None
    # signed in before, then lost every mapped group: refused and deactivated, audited
    assert sign_in(web, "olga.op").status_code == 302
    people = dict(PEOPLE)
    people["olga.op"] = ("sub-olga-0001", "Olga Operator", ["canteen"])
    provider_people.people(people)
    other = web.application.test_client()
    r = sign_in(other, "olga.op")
    assert r.status_code == 403 and code_of(r.text) == "no_role"
    assert person_row(oidc_rt, "olga.op").active is False
    (deactivation,) = [e for e in audit_actions(oidc_rt, "olga.op") if e[0] == "user.deactivate"]
    assert deactivation[1:] == (True, False)
    # the first browser's session ended with the deactivation
    assert web.get("/").status_code == 302
    # groups back: still refused (an administrator reactivates; ids are never silently revived)
    provider_people.people()
    r = sign_in(other, "olga.op")
    assert r.status_code == 403 and code_of(r.text) == "account_inactive"


def test_someone_removed_from_the_provider_cannot_sign_in(web, oidc_rt, provider_people):  # noqa: F811
    assert sign_in(web, "olga.op").status_code == 302
    people = {k: v for k, v in PEOPLE.items() if k != "olga.op"}
    provider_people.people(people)
    with pytest.raises(AssertionError, match="refused the sign-in: 401"):
        through_provider(start(web.application.test_client()), "olga.op")


def test_a_local_account_with_the_same_user_id_is_an_identity_conflict(web, oidc_rt):
    users.create_user(oidc_rt, "olga.op", "Olga Local", ["operator"], by="test", password=LOCAL_PASSWORD)
    before = count(oidc_rt, User)
    r = sign_in(web, "olga.op")
    assert r.status_code == 409 and code_of(r.text) == "identity_conflict"
    assert "local account" in r.text and "<html" in r.text.lower()
    assert count(oidc_rt, User) == before and person_row(oidc_rt, "olga.op").source == "local"
    assert web.get("/").status_code == 302  # not logged in


def _nothing_created(rt, users_before: int) -> None:
    assert count(rt, User) == users_before and count(rt, LoginSession) == 0


def test_a_replayed_callback_is_refused(web, oidc_rt):
    callback = through_provider(start(web), "olga.op")
    assert web.get(callback).status_code == 302
    web.post("/logout", data={"csrf_token": _csrf(web)})
    r = web.get(callback)
    assert r.status_code == 400 and code_of(r.text) == "oidc_state" and "not valid" in r.text
    assert web.get("/").status_code == 302


def _csrf(web) -> str:
    with web.session_transaction() as cookie:
        return cookie["csrf"]


def test_a_wrong_or_missing_state_is_refused_and_creates_nothing(web, oidc_rt):
    before = count(oidc_rt, User)
    callback = through_provider(start(web), "olga.op")
    q = query_of(callback)
    for bad in (
        f"/login/oidc/callback?code={q['code']}&state={'x' * 43}",
        f"/login/oidc/callback?code={q['code']}",
        f"/login/oidc/callback?code={q['code']}&state=",
        f"/login/oidc/callback?code={q['code']}&state={q['state']}&state=other",
    ):
        r = web.get(bad)
        assert r.status_code == 400 and code_of(r.text) == "oidc_state", bad
    _nothing_created(oidc_rt, before)


def test_a_callback_in_another_browser_is_refused(web, oidc_rt):
    """A sign-in started in one browser cannot be finished in another (login CSRF)."""
    before = count(oidc_rt, User)
    callback = through_provider(start(web), "olga.op")
    r = web.application.test_client().get(callback)
    assert r.status_code == 400 and code_of(r.text) == "oidc_state"
    _nothing_created(oidc_rt, before)


def test_a_missing_code_or_a_provider_error_is_refused(web, oidc_rt):
    before = count(oidc_rt, User)
    q = query_of(through_provider(start(web), "olga.op"))
    r = web.get(f"/login/oidc/callback?state={q['state']}")
    assert r.status_code == 400 and code_of(r.text) == "oidc_no_code"
    # the state is used up: the same state with its code is refused now
    assert code_of(web.get(f"/login/oidc/callback?state={q['state']}&code={q['code']}").text) == "oidc_state"
    q = query_of(start(web))
    r = web.get(f"/login/oidc/callback?state={q['state']}&error=access_denied&error_description=<b>no</b>")
    assert r.status_code == 401 and code_of(r.text) == "oidc_provider_error" and "<b>" not in r.text
    _nothing_created(oidc_rt, before)


def test_a_nonce_mismatch_is_refused(web, oidc_rt):
    before = count(oidc_rt, User)
    callback = through_provider(start(web), "olga.op")
    with oidc_rt.transaction() as s:
        s.execute(update(OidcRequest).values(nonce="another-nonce-than-the-one-sent-to-the-provider"))
    r = web.get(callback)
    assert r.status_code == 401 and code_of(r.text) == "oidc_invalid_token"
    _nothing_created(oidc_rt, before)


def test_a_tampered_id_token_is_refused(web, oidc_rt, monkeypatch):
    from web.ui import oidc as flow

    real = flow.exchange

    def tampered(cfg, code, verifier):
        header, payload, signature = real(cfg, code, verifier).split(".")
        import base64
        import json

        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["groups"] = ["qa-team"]
        claims["preferred_username"] = "quinn.qa"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{forged}.{signature}"

    monkeypatch.setattr(flow, "exchange", tampered)
    before = count(oidc_rt, User)
    r = sign_in(web, "olga.op")
    assert r.status_code == 401 and code_of(r.text) == "oidc_invalid_token"
    _nothing_created(oidc_rt, before)


def test_a_code_is_exchanged_once_and_only_with_its_verifier(web, oidc_rt, provider_people):  # noqa: F811
    """The provider itself refuses a code without the PKCE verifier it was issued for."""
    cfg = oidc.config_of(oidc_rt.settings)
    q = query_of(through_provider(start(web), "olga.op"))
    token_url = provider_people.issuer + "/token"
    auth = ("batchline", cfg.client_secret())
    data = {"grant_type": "authorization_code", "code": q["code"], "redirect_uri": TEST_REDIRECT}
    assert httpx.post(token_url, data={**data, "code_verifier": "x" * 50}, auth=auth).status_code == 400
    assert httpx.post(token_url, data=data, auth=auth).status_code == 400


def test_oidc_off_means_no_button_and_no_routes(db_url):
    from web.app import create_app

    rt = make_runtime(db_url)
    try:
        client = create_app(runtime=rt).test_client()
        assert "Sign in with" not in client.get("/login").text
        assert client.get("/login/oidc").status_code == 404
        assert client.get("/login/oidc/callback?state=x&code=y").status_code == 404
    finally:
        rt.close()


def test_concurrent_callbacks_take_a_state_once(oidc_rt):
    from concurrent.futures import ThreadPoolExecutor

    from engine.identity import oidc_state

    browser = "b" * 43
    state, _ = oidc_state.begin(oidc_rt, browser, "login")
    with ThreadPoolExecutor(max_workers=4) as pool:
        taken = list(pool.map(lambda _: oidc_state.take(oidc_rt, state, browser), range(8)))
    assert sum(t is not None for t in taken) == 1
    for hostile in (None, 42, "", "s" * 5000, ["a"]):
        assert oidc_state.take(oidc_rt, hostile, browser) is None
        assert oidc_state.take(oidc_rt, state, hostile) is None


def test_hostile_callback_parameters_are_refused_with_a_page(web, oidc_rt):
    before = count(oidc_rt, User)
    for query in (
        "state=" + "s" * 10_000 + "&code=c",
        "state=%00%ff%fe&code=c",
        "state=<script>alert(1)</script>&code=c",
    ):
        r = web.get("/login/oidc/callback?" + query)
        assert "<script>alert" not in r.text and "<html" in r.text.lower()
        # a NUL is refused by the app's input limits before the sign-in looks at it
        assert (r.status_code, code_of(r.text)) == (400, "oidc_state") or r.status_code == 422
    q = query_of(start(web))
    r = web.get(f"/login/oidc/callback?state={q['state']}&code=" + "c" * 3000)
    assert r.status_code == 400 and code_of(r.text) == "oidc_no_code"
    q = query_of(start(web))
    r = web.get(f"/login/oidc/callback?state={q['state']}&code=forged-code")
    assert r.status_code == 401 and code_of(r.text) == "oidc_code_refused"
    _nothing_created(oidc_rt, before)


def test_an_unreachable_provider_is_a_clear_page(db_url):
    from web.app import create_app

    rt = make_runtime(
        db_url,
        oidc_issuer="http://127.0.0.1:9",
        oidc_client_id="batchline",
        oidc_client_secret="env:NOT_SET_ANYWHERE",
        oidc_redirect_url=TEST_REDIRECT,
    )
    try:
        r = create_app(runtime=rt).test_client().get("/login/oidc")
        assert r.status_code == 502 and code_of(r.text) == "oidc_unreachable" and "cannot be reached" in r.text
    finally:
        rt.close()


def test_an_id_token_for_another_client_is_refused(web, oidc_rt, provider_people, monkeypatch):  # noqa: F811
    """A real ID token from the real provider, with this sign-in's nonce and state, but
    issued to another client (``other-app``): refused for its audience."""
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    from tests.identity.oidc_fixture import CLIENT_SECRET, OTHER_CLIENT_ID
    from web.ui import oidc as flow

    before = count(oidc_rt, User)
    q = query_of(start(web))
    with oidc_rt.transaction() as s:
        verifier = s.scalars(select(OidcRequest.code_verifier)).one()
    other = prepare_grant_uri(
        provider_people.issuer + "/auth",
        client_id=OTHER_CLIENT_ID,
        response_type="code",
        redirect_uri=TEST_REDIRECT,
        scope=q["scope"],
        state=q["state"],
        nonce=q["nonce"],
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    callback = through_provider(other, "olga.op")

    def exchange_as_other_app(cfg, code, code_verifier):
        answer = httpx.post(
            provider_people.issuer + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": TEST_REDIRECT,
                "code_verifier": code_verifier,
            },
            auth=(OTHER_CLIENT_ID, CLIENT_SECRET),
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["id_token"]

    monkeypatch.setattr(flow, "exchange", exchange_as_other_app)
    r = web.get(callback)
    assert r.status_code == 401 and code_of(r.text) == "oidc_invalid_token"
    _nothing_created(oidc_rt, before)


def test_an_answer_naming_another_issuer_is_refused(web, oidc_rt):
    before = count(oidc_rt, User)
    callback = through_provider(start(web), "olga.op")
    assert "iss=" in callback  # the provider names itself (RFC 9207)
    r = web.get(re.sub(r"iss=[^&]+", "iss=https%3A%2F%2Fevil.example.org", callback))
    assert r.status_code == 401 and code_of(r.text) == "oidc_issuer"
    _nothing_created(oidc_rt, before)


def test_a_wrong_setting_is_a_clear_page_and_a_log_line(db_url, provider_people, caplog):  # noqa: F811
    from web.app import create_app

    rt = make_runtime(db_url, **provider_people.settings(oidc_client_secret="env:BATCHLINE_TEST_UNSET_SECRET"))
    try:
        client = create_app(runtime=rt).test_client()
        # the way out works (no secret needed); the way back needs the secret
        callback = through_provider(client.get("/login/oidc").headers["Location"], "olga.op")
        r = client.get(callback)
        assert r.status_code == 500 and code_of(r.text) == "oidc_not_configured"
        assert "BATCHLINE_TEST_UNSET_SECRET is empty or not set" in caplog.text
        assert person_row(rt, "olga.op") is None
    finally:
        rt.close()
