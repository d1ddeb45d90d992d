"""The HTTP side: diff as JSON and as a page, where-used and replace, the migration
request and QA's e-signed approval — permissions, segregation before the password,
replay with an Idempotency-Key, wrong types, missing fields and hostile input; the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.engine.engine_helpers import complete, ready
from tests.recipe_versions.helpers import call_activity_versions, import_signed, import_v3, template_library
from tests.support import PASSWORD, browser_login


def _sig(user: str, password: str = PASSWORD, **extra) -> dict:
    return {"signature": {"username": user, "password": password, **extra}}


@pytest.fixture
def waiting(runtime):
    """mab_mini v1 and v2 and batch MIG-9 on v1, waiting at thaw_vial inside the call activity."""
    versions = call_activity_versions(runtime, start=("MIG-9", "sv"))
    complete(runtime, "MIG-9", "line_clearance")
    return versions


def test_diff_as_json_and_as_a_page(client, runtime):
    v1, v2 = import_signed(runtime)
    r = client.get(f"/api/recipes/{v2.id}/diff?against={v1.id}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert "label_bottle" in {e["id"] for e in body["elements"]["added"]}
    assert body["forms"]["changed"][0]["fields"][0]["attributes"]["properties.hardMax"]["new"] == "1200"
    for query, status in (("", 422), ("?against=abc", 422), ("?against=0", 422), ("?against=99999", 404)):
        r = client.get(f"/api/recipes/{v2.id}/diff{query}")
        assert r.status_code == status and r.get_json()["code"], (query, r.get_json())
    browser_login(client, "qa")
    client.environ_base.pop("HTTP_AUTHORIZATION")
    page = client.get(f"/recipes/{v2.id}/diff?against={v1.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-element="label_bottle"' in html and 'data-change="added"' in html
    assert 'data-attribute="properties.hardMax" data-what="limit"' in html and "1200" in html
    assert client.get(f"/recipes/{v2.id}/diff?against=x").status_code == 400
    assert client.get(f"/recipes/{v2.id}/diff?against=99999").status_code == 404


def test_where_used_and_replace_over_http(client, runtime):
    template_library(runtime)
    r = client.get("/api/templates/tpl_count/where-used")
    assert r.status_code == 200 and {u["recipe"] for u in r.get_json()["used_by"]} == {"rec_a", "rec_b"}
    assert client.get("/api/templates/nobody/where-used").status_code == 404
    assert client.get("/api/templates/" + "x" * 300 + "/where-used").get_json()["code"] in (
        "template_name_invalid",
        "id_invalid",
        "validation_error",
    )
    qa = client.auth["qa"]
    assert (
        client.post("/api/templates/tpl_count/replace", json={"with_version": 2}, headers=client.auth["sv"]).status_code
        == 403
    )
    for bad in (
        {},
        {"with_version": "2"},
        {"with_version": 2, "recipes": "rec_a"},
        {"with_version": 2, "x": 1},
        {"with_version": 2**40},
        {"with_version": 2, "recipes": ["x" * 300]},
    ):
        r = client.post("/api/templates/tpl_count/replace", json=bad, headers=qa)
        assert r.status_code == 422, (bad, r.get_json())
    headers = {**qa, "Idempotency-Key": "replace-1"}
    first = client.post("/api/templates/tpl_count/replace", json={"with_version": 2}, headers=headers)
    assert first.status_code == 200, first.get_json()
    assert {r["outcome"] for r in first.get_json()["recipes"]} == {"new draft"}
    again = client.post("/api/templates/tpl_count/replace", json={"with_version": 2}, headers=headers)
    assert again.get_json() == first.get_json() and again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/api/templates/tpl_count/replace", json={"with_version": 1}, headers=headers)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"


def test_migration_request_and_e_signed_approval(client, runtime, waiting):
    v1, v2, v3 = waiting
    url = "/api/batches/MIG-9/migrations"
    body = {"to_version": 2, "reason": "viability check (CC-42)"}
    for who in ("op", "qa"):
        r = client.post(url, json=body, headers=client.auth[who])
        assert r.status_code == 403 and r.get_json()["code"] == "forbidden"
    headers = {**client.auth["sv"], "Idempotency-Key": "mig-1"}
    asked = client.post(url, json=body, headers=headers)
    assert asked.status_code == 201, asked.get_json()
    replay = client.post(url, json=body, headers=headers)
    assert replay.status_code == 201 and replay.get_json() == asked.get_json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    mid = asked.get_json()["id"]
    approve = f"{url}/{mid}/approve"
    assert client.post(approve, json=_sig("sv"), headers=client.auth["sv"]).status_code == 403
    # someone else's signature, a wrong password, a wrong meaning
    r = client.post(approve, json=_sig("qa2"), headers=client.auth["qa"])
    assert r.status_code == 403 and r.get_json()["code"] == "sign_for_other"
    r = client.post(approve, json=_sig("qa", "wrong password"), headers=client.auth["qa"])
    assert r.status_code == 401
    r = client.post(approve, json=_sig("qa", meaning="Reviewed"), headers=client.auth["qa"])
    assert r.status_code == 422 and r.get_json()["code"] == "meaning_invalid"
    key = {**client.auth["qa"], "Idempotency-Key": "approve-1"}
    done = client.post(approve, json=_sig("qa"), headers=key)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["migration"]["status"] == "approved"
    assert done.get_json()["migration"]["signature"]["printed_name"] == "Qa"
    again = client.post(approve, json=_sig("qa"), headers=key)
    assert again.status_code == 200 and again.get_json() == done.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    r = client.post(approve, json=_sig("qa2"), headers=client.auth["qa2"])
    assert r.status_code == 409 and r.get_json()["code"] == "migration_approved"
    listed = client.get(url).get_json()
    assert [m["status"] for m in listed] == ["approved"]
    assert client.get("/api/batches/MIG-9").get_json()["recipe_version_id"] == v2.id
    assert "thaw_vial" in ready(runtime, "MIG-9")
    import_v3(runtime)  # thaw_vial renamed: the batch waiting there cannot move to it
    refused = client.post(url, json={"to_version": 3, "reason": "new SOP"}, headers=client.auth["sv"])
    assert refused.status_code == 409 and refused.get_json()["details"]["unmapped"] == ["thaw_vial"]


def test_requester_never_approves_and_is_refused_before_the_password(client, runtime, waiting):
    from engine.models import AuthFailure

    asked = client.post(
        "/api/batches/MIG-9/migrations", json={"to_version": 2, "reason": "r"}, headers=client.auth["alice"]
    )
    assert asked.status_code == 201
    r = client.post(
        f"/api/batches/MIG-9/migrations/{asked.get_json()['id']}/approve",
        json=_sig("alice", "not the password"),
        headers=client.auth["alice"],
    )
    assert r.status_code == 403 and r.get_json()["code"] == "segregation_of_duties"
    with runtime.transaction() as s:
        assert s.query(AuthFailure).count() == 0  # the password was never tried


def test_hostile_migration_input(client, runtime, waiting):
    sv = client.auth["sv"]
    for bad in (
        {},
        {"to_version": 2},
        {"reason": "r"},
        {"to_version": "2", "reason": "r"},
        {"to_version": 2.0, "reason": "r"},
        {"to_version": -1, "reason": "r"},
        {"to_version": 2**63, "reason": "r"},
        {"to_version": 2, "reason": "x" * 5000},
        {"to_version": 2, "reason": ["r"]},
        {"to_version": 2, "reason": "r", "extra": 1},
        [1, 2],
    ):
        r = client.post("/api/batches/MIG-9/migrations", json=bad, headers=sv)
        assert r.status_code == 422, (bad, r.get_json())
        assert set(r.get_json()) >= {"code", "message", "details"}
    r = client.post(
        "/api/batches/MIG-9/migrations", data="{not json", headers={**sv, "Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422)
    for batch in ("NOPE", "../../etc", "x" * 500, "a%00b"):
        r = client.post(f"/api/batches/{batch}/migrations", json={"to_version": 2, "reason": "r"}, headers=sv)
        assert r.status_code in (404, 422), (batch, r.status_code)
    r = client.post("/api/batches/MIG-9/migrations/999/approve", json=_sig("qa"), headers=client.auth["qa"])
    assert r.status_code == 404 and r.get_json()["code"] == "migration_not_found"
    for bad in (
        {},
        {"signature": {"username": "qa"}},
        {"signature": "qa"},
        {"signature": {"username": "qa", "password": 5}},
    ):
        r = client.post("/api/batches/MIG-9/migrations/1/approve", json=bad, headers=client.auth["qa"])
        assert r.status_code == 422, (bad, r.get_json())


def test_cli_diff_migrate_and_approve(runtime, waiting):
    from web import cli

    v1, v2, _ = waiting
    runner = CliRunner()

    def run(*args, user=None):
        env = {"BATCHLINE_USER": user or "", "BATCHLINE_PASSWORD": PASSWORD}
        return runner.invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)

    out = run("recipe", "diff", "mab_mini@1", "mab_mini@2")
    assert out.exit_code == 0, out.output
    assert "+ userTask check_viability" in out.output and "+ userTask harvest_sample" in out.output
    out = run("recipe", "diff", str(v1.id), str(v2.id), "--json")
    assert out.exit_code == 0 and '"check_viability"' in out.output
    out = run("batch", "migrate", "MIG-9", "--to-version", "2", "--reason", "CC-42", "--user", "sv", user="sv")
    assert out.exit_code == 0, out.output
    out = run("batch", "migration-approve", "MIG-9", "1", "--user", "sv", user="sv")
    assert out.exit_code == 2
    out = run("batch", "migration-approve", "MIG-9", "1", "--user", "qa", user="qa")
    assert out.exit_code == 0, out.output and "approved" in out.output
    out = run("batch", "migrations", "MIG-9", "--json")
    assert '"approved"' in out.output
    import_v3(runtime)
    out = run("batch", "migrate", "MIG-9", "--to-version", "3", "--reason", "r", "--user", "sv", user="sv")
    assert out.exit_code == 2 and "migration_unmapped" in out.output and "thaw_vial" in out.output
