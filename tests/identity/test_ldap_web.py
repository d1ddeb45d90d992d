"""A directory person over HTTP (a real slapd; SQLite and PostgreSQL): a signature of a
step over the API re-authenticates against the directory (a wrong directory password
refuses the step, stores nothing and counts toward the lockout), and the login page
signs a directory person in, or says the directory cannot be reached (503)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine import users
from tests.identity.conftest import ldap_runtime_for
from tests.identity.ldap_helpers import account, actions
from tests.identity.slapd import free_port, password_of
from tests.support import approval

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def bearer(rt, name: str) -> dict:
    return {"Authorization": "Bearer " + users.create_token(rt, name, "tests", by="root")}


@pytest.fixture
def signed(ldap_client, ldap_runtime):
    """Batch S-1 of the recipe whose steps need a signature (author alice, approver quentin: local)."""
    c, rt = ldap_client, ldap_runtime
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    alice = bearer(rt, "alice")
    r = c.post(
        "/api/recipes",
        json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms},
        headers=alice,
    )
    assert r.status_code == 201, r.json
    r = c.post(f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=bearer(rt, "quentin"))
    assert r.status_code == 200, r.json
    assert c.post("/api/batches", json={"recipe": "signed_steps", "batch_id": "S-1"}, headers=alice).status_code == 201
    return c


def open_tasks(c, headers) -> dict:
    return {t["bpmn_id"]: t for t in c.get("/api/batches/S-1/tasks", headers=headers).json}


def test_signing_a_step_re_authenticates_against_the_directory(signed, ldap_runtime):
    c, rt = signed, ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))  # first sign-in: anna becomes an operator
    anna = bearer(rt, "anna")
    weigh = open_tasks(c, anna)["weigh"]
    url = f"/api/batches/S-1/tasks/{weigh['id']}/complete"

    def sign(password):
        body = {"data": {"mass_g": 100}, "signature": {"username": "anna", "password": password}}
        return c.post(url, json=body, headers=anna)

    for bad in ("", None, 12345, ["x"], "x" * 201):  # refused by the API's schema, no password checked
        r = sign(bad)
        assert r.status_code == 422 and r.json["code"] == "validation_error", r.json
    for wrong in ("not her password", password_of("dora"), "anna-secret-1", "*"):
        r = sign(wrong)
        assert r.status_code == 401 and r.json["code"] == "auth_failed", r.json
    assert "weigh" in open_tasks(c, anna)  # nothing stored
    assert account(rt, "anna").failed_logins == 4
    assert actions(rt, "anna").count("auth.signature_failed") == 4
    r = sign("still not her password")
    assert r.status_code == 401 and r.json["code"] == "account_locked"
    users.unlock(rt, "anna", by="root", reason="test")
    r = sign(password_of("anna"))
    assert r.status_code == 200, r.json
    assert "weigh" not in open_tasks(c, anna)


def test_signing_while_the_directory_is_down_is_503_and_counts_nothing(signed, ldap_runtime, slapd):
    from web.app import create_app

    rt = ldap_runtime
    users.authenticate(rt, "anna", password_of("anna"))
    down = ldap_runtime_for(rt.settings.database_url, slapd.settings(ldap_url=f"ldap://127.0.0.1:{free_port()}"))
    try:
        c = create_app(runtime=down).test_client()
        anna = bearer(down, "anna")
        weigh = open_tasks(c, anna)["weigh"]
        r = c.post(
            f"/api/batches/S-1/tasks/{weigh['id']}/complete",
            json={"data": {"mass_g": 100}, "signature": {"username": "anna", "password": password_of("anna")}},
            headers=anna,
        )
        assert r.status_code == 503 and r.json["code"] == "directory_unavailable", r.json
        assert "weigh" in open_tasks(c, anna) and account(down, "anna").failed_logins == 0
    finally:
        down.close()


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_login_page_signs_a_directory_person_in(ldap_client, ldap_runtime, slapd):
    c = ldap_client
    page = c.get("/login").text
    r = c.post("/login", data={"csrf_token": csrf(page), "username": "dora", "password": "wrong"})
    assert r.status_code == 401 and "user id or password is wrong" in r.text.lower()
    r = c.post("/login", data={"csrf_token": csrf(page), "username": "dora", "password": password_of("dora")})
    assert r.status_code == 303, r.text
    assert account(ldap_runtime, "dora").roles == ["qa"]


def test_the_login_page_says_when_the_directory_cannot_be_reached(ldap_runtime, slapd):
    from web.app import create_app

    down = ldap_runtime_for(
        ldap_runtime.settings.database_url, slapd.settings(ldap_url=f"ldap://127.0.0.1:{free_port()}")
    )
    try:
        c = create_app(runtime=down).test_client()
        page = c.get("/login").text
        r = c.post("/login", data={"csrf_token": csrf(page), "username": "dora", "password": password_of("dora")})
        assert r.status_code == 503 and "directory cannot be reached" in r.text
        from tests.support import PASSWORD

        r = c.post("/login", data={"csrf_token": csrf(page), "username": "root", "password": PASSWORD})
        assert r.status_code == 303  # the break-glass administrator is local
    finally:
        down.close()
