"""People's qualifications over HTTP and the CLI (SQLite and PostgreSQL): who may read
and record them, hostile bodies, replay with an Idempotency-Key, concurrent submits, and
the refusals that come before the signer's password is read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from engine import qualifications, users
from engine.models import Qualification, User
from tests.support import PASSWORD
from web import cli

URL = "/api/people/op/qualifications"


@pytest.fixture
def trainer(client, runtime):
    users.create_user(runtime, "tr", "Tess Trainer", ["trainer"], by="test", password=PASSWORD)
    return client


def body(signer: str = "tr", **over):
    until = (qualifications.today() + timedelta(days=90)).isoformat()
    out = {
        "qualification": "aseptic-gowning",
        "valid_until": until,
        "signature": {"username": signer, "password": PASSWORD},
    }
    return {**out, **over}


def rows(runtime) -> int:
    with runtime.transaction() as s:
        return s.scalar(select(func.count()).select_from(Qualification))


def failed_logins(runtime, who: str) -> int:
    with runtime.transaction() as s:
        return s.scalar(select(User.failed_logins).where(User.username == who))


@pytest.mark.parametrize("who, status", [("tr", 201), ("qa", 201), ("op", 403), ("sv", 403)])
def test_qa_and_trainers_record_operators_and_supervisors_do_not(trainer, runtime, who, status):
    r = trainer.post(URL, json=body(who), headers=trainer.auth[who])
    assert r.status_code == status, r.json
    if status == 403:
        assert r.json["code"] == "forbidden" and rows(runtime) == 0
    else:
        assert r.json["granted_by"] == who and r.json["meaning"] == "Qualified"


def test_everyone_who_works_with_tasks_reads_them(trainer, runtime):
    assert trainer.post(URL, json=body(), headers=trainer.auth["tr"]).status_code == 201
    for who in ("op", "sv", "qa", "tr"):
        r = trainer.get(URL, headers=trainer.auth[who])
        assert r.status_code == 200 and r.json["qualifications"][0]["status"] == "current", r.json
    assert trainer.get("/api/people/nobody/qualifications", headers=trainer.auth["op"]).json["code"] == "user_not_found"


def test_refused_before_the_password_counts(trainer, runtime):
    wrong = {"username": "tr", "password": "wrong"}
    r = trainer.post("/api/people/tr/qualifications", json=body(signature=wrong), headers=trainer.auth["tr"])
    assert r.status_code == 403 and r.json["code"] == "self_qualification"
    r = trainer.post("/api/people/ghost/qualifications", json=body(signature=wrong), headers=trainer.auth["tr"])
    assert r.status_code == 404 and r.json["code"] == "user_not_found"
    other = {"username": "qa", "password": "wrong"}  # signing as someone else
    r = trainer.post(URL, json=body(signature=other), headers=trainer.auth["tr"])
    assert r.status_code == 403 and r.json["code"] == "sign_for_other"
    assert failed_logins(runtime, "tr") == 0 and failed_logins(runtime, "qa") == 0
    r = trainer.post(URL, json=body(signature=wrong), headers=trainer.auth["tr"])
    assert r.status_code == 401 and failed_logins(runtime, "tr") == 1 and rows(runtime) == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"qualification": 7}, "qualification"),
        ({"qualification": "Aseptic Gowning"}, "qualification"),
        ({"qualification": "x" * 10_000}, "qualification"),
        ({"qualification": "a\u0000b"}, "JSON body"),  # web.input_limits, before any schema
        ({"valid_until": "31/12/2030"}, "valid_until"),
        ({"valid_until": ["2030-01-01"]}, "valid_until"),
        ({"reason": "r" * 2001}, "reason"),
        ({"signature": "tr:pw"}, "signature"),
        ({"extra": True}, "extra"),
    ],
)
def test_hostile_bodies_are_refused_by_field(trainer, runtime, change, field):
    r = trainer.post(URL, json=body(**change), headers=trainer.auth["tr"])
    assert r.status_code == 422, r.json
    assert field in str(r.json["details"]) and rows(runtime) == 0


@pytest.mark.parametrize("missing", ["qualification", "valid_until", "signature"])
def test_missing_fields(trainer, runtime, missing):
    sent = body()
    del sent[missing]
    r = trainer.post(URL, json=sent, headers=trainer.auth["tr"])
    assert r.status_code == 422 and missing in str(r.json["details"])


def test_a_past_date_and_an_unheld_revocation(trainer, runtime):
    past = (qualifications.today() - timedelta(days=1)).isoformat()
    r = trainer.post(URL, json=body(valid_until=past), headers=trainer.auth["tr"])
    assert r.status_code == 422 and r.json["code"] == "valid_until_invalid"
    revoke = {"qualification": "aseptic-gowning", "reason": "x", "signature": {"username": "tr", "password": PASSWORD}}
    r = trainer.post(URL + "/revoke", json=revoke, headers=trainer.auth["tr"])
    assert r.status_code == 409 and r.json["code"] == "qualification_not_held"
    r = trainer.post(URL + "/revoke", json={**revoke, "reason": ""}, headers=trainer.auth["tr"])
    assert r.status_code == 422


def test_replay_with_an_idempotency_key(trainer, runtime):
    headers = {**trainer.auth["tr"], "Idempotency-Key": "grant-1"}
    first = trainer.post(URL, json=body(), headers=headers)
    again = trainer.post(URL, json=body(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json == first.json
    other = trainer.post(URL, json=body(reason="else"), headers=headers)
    assert other.status_code == 422 and other.json["code"] == "idempotency_key_reused"
    assert rows(runtime) == 1


def test_concurrent_submits_of_one_key_record_once(app, trainer, runtime):
    def post(_):
        return app.test_client().post(URL, json=body(), headers={**trainer.auth["tr"], "Idempotency-Key": "same"})

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(post, range(5)))
    assert {r.status_code for r in answers} == {201}, [r.json for r in answers]
    assert len({r.json["id"] for r in answers}) == 1 and rows(runtime) == 1


def test_concurrent_grants_without_a_key_are_each_recorded(app, trainer, runtime):
    def post(i):
        return app.test_client().post(URL, json=body(qualification=f"q-{i}"), headers=trainer.auth["tr"])

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    assert [r.status_code for r in answers] == [201] * 4 and rows(runtime) == 4


def test_the_cli_grants_lists_and_revokes(trainer, runtime):
    def run(*args, user="tr"):
        env = {"BATCHLINE_USER": user, "BATCHLINE_PASSWORD": PASSWORD}
        return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)

    until = (qualifications.today() + timedelta(days=5)).isoformat()
    done = run("qual", "grant", "op", "aseptic-gowning", "--valid-until", until, "--user", "tr")
    assert done.exit_code == 0, done.output
    listed = run("qual", "list", "op", "--json")
    assert listed.exit_code == 0 and '"status": "current"' in listed.output and until in listed.output
    refused = run("qual", "grant", "sv", "aseptic-gowning", "--valid-until", until, "--user", "op", user="op")
    assert refused.exit_code == 2 and "forbidden" in refused.output + (refused.stderr if refused.stderr_bytes else "")
    gone = run("qual", "revoke", "op", "aseptic-gowning", "--reason", "left the cleanroom team", "--user", "tr")
    assert gone.exit_code == 0, gone.output
    assert "revoked" in run("qual", "list", "op").output
    assert "aseptic-gowning" in run("qual", "list").output
    assert rows(runtime) == 2
