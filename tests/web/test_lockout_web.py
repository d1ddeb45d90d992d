"""Lockout that cannot be weaponised, over HTTP (SQLite and PostgreSQL): a signature with
someone else's id is refused before any password is checked, wherever it is posted; a
burst from one address is throttled (429, ``Retry-After``) while other addresses and
accounts go on; the last administrator stays; reactivation; expired passwords stop
tokens; the break-glass unlock needs the server, not a login."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine import users
from engine.models import AuditEvent, User, utcnow
from tests.support import ACCOUNTS, PASSWORD, approval, make_runtime

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN_WRONG = {"username": "root", "password": "guessing the admin's password"}


@pytest.fixture
def runtime(db_url):
    """The test people, with a per-address limit small enough to reach in a test."""
    rt = make_runtime(db_url, max_request_bytes=200_000, job_max_attempts=1, throttle_per_address=3)
    for name, roles in ACCOUNTS.items():
        users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
    yield rt
    rt.close()


@pytest.fixture
def root(runtime):
    """A pure administrator (no role of the shop floor)."""
    users.create_user(runtime, "root", "Root Admin", ["admin"], by="test", password=PASSWORD)
    return {"Authorization": "Bearer " + users.create_token(runtime, "root", "tests", by="test")}


@pytest.fixture
def op(runtime):
    return {"Authorization": "Bearer " + users.create_token(runtime, "op", "tests", by="test")}


@pytest.fixture
def signed(client):
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "signed_forms").glob("*.json")}
    r = client.post(
        "/api/recipes", json={"bpmn": {"signed.bpmn": (RECIPES / "signed.bpmn").read_text()}, "forms": forms}
    )
    assert r.status_code == 201, r.json
    r = client.post(
        f"/api/recipes/{r.json['id']}/approve", json=approval("quentin", "ok"), headers=client.auth["quentin"]
    )
    assert r.status_code == 200, r.json
    assert client.post("/api/batches", json={"recipe": "signed_steps", "batch_id": "S-1"}).status_code == 201
    return client


def task_id(client, bpmn_id: str = "weigh") -> str:
    return {t["bpmn_id"]: t["id"] for t in client.get("/api/batches/S-1/tasks").json}[bpmn_id]


def failures_of(runtime, username: str) -> tuple[int, list[str]]:
    with runtime.transaction() as s:
        u = s.scalars(select(User).where(User.username == username)).one()
        audited = s.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == username, AuditEvent.action.like("auth.%"))
        ).all()
        return u.failed_logins, list(audited)


def test_an_operator_cannot_lock_the_admin_through_signatures(signed, runtime, root, op):
    real = task_id(signed)
    for _ in range(2 * runtime.settings.lockout_attempts):
        nowhere = signed.post(
            f"/api/batches/NO-SUCH-BATCH/tasks/{uuid.uuid4()}/complete",
            json={"data": {"mass_g": 100}, "signature": ADMIN_WRONG},
            headers=op,
        )
        assert nowhere.status_code == 404 and nowhere.json["code"] == "batch_not_found"
        no_task = signed.post(
            f"/api/batches/S-1/tasks/{uuid.uuid4()}/complete",
            json={"data": {"mass_g": 100}, "signature": ADMIN_WRONG},
            headers=op,
        )
        assert no_task.status_code == 404 and no_task.json["code"] == "task_not_found"
        other = signed.post(
            f"/api/batches/S-1/tasks/{real}/complete",
            json={"data": {"mass_g": 100}, "signature": ADMIN_WRONG},
            headers=op,
        )
        assert other.status_code == 403 and other.json["code"] == "sign_for_other"
    # a witness the form does not ask for is never authenticated
    done = signed.post(
        f"/api/batches/S-1/tasks/{real}/complete",
        json={"data": {"mass_g": 100}, "signature": {"username": "op", "password": PASSWORD}, "witness": ADMIN_WRONG},
        headers=op,
    )
    assert done.status_code == 200, done.json
    # a witness without the witness role is refused before the password
    transfer = signed.post(
        f"/api/batches/S-1/tasks/{task_id(signed, 'transfer')}/complete",
        json={
            "data": {"transferred": True},
            "signature": {"username": "op", "password": PASSWORD},
            "witness": ADMIN_WRONG,
        },
        headers=op,
    )
    assert transfer.status_code == 403 and transfer.json["code"] == "witness_role"
    # a correction signed in the admin's name
    corr = signed.post(
        "/api/batches/S-1/steps/1/corrections",
        json={"field": "mass_g", "value": 101, "reason": "typo", "signature": ADMIN_WRONG},
        headers=op,
    )
    assert corr.status_code == 403 and corr.json["code"] == "sign_for_other"
    assert failures_of(runtime, "root") == (0, [])
    assert users.authenticate(runtime, "root", PASSWORD).username == "root"
    assert signed.get("/api/users", headers=root).status_code == 200  # the admin's token still works


def test_a_task_the_caller_may_not_do_checks_no_password(signed, runtime, root):
    """A task assigned to someone else: refused before the caller's (wrong) password counts."""
    real = task_id(signed)
    r = signed.post(f"/api/batches/S-1/tasks/{real}/assign", json={"username": "sv", "reason": "sv's task"})
    assert r.status_code == 200, r.json
    for _ in range(runtime.settings.lockout_attempts):
        r = signed.post(
            f"/api/batches/S-1/tasks/{real}/complete",
            json={"data": {"mass_g": 100}, "signature": {"username": "alice", "password": "wrong wrong wrong"}},
        )
        assert r.status_code == 403 and r.json["code"] == "task_assigned_elsewhere"
    assert failures_of(runtime, "alice") == (0, [])


def test_a_burst_of_wrong_signatures_from_one_address_is_throttled(signed, runtime):
    real = task_id(signed)
    url = f"/api/batches/S-1/tasks/{real}/complete"
    wrong = {"username": "alice", "password": "not the password"}
    here, there = {"REMOTE_ADDR": "10.7.0.1"}, {"REMOTE_ADDR": "10.7.0.2"}
    for _ in range(runtime.settings.throttle_per_address):
        r = signed.post(url, json={"data": {"mass_g": 100}, "signature": wrong}, environ_base=here)
        assert r.status_code == 401 and r.json["code"] == "auth_failed"
    right = {"username": "alice", "password": PASSWORD}
    r = signed.post(url, json={"data": {"mass_g": 100}, "signature": right}, environ_base=here)
    assert r.status_code == 429 and r.json["code"] == "too_many_attempts"
    assert 1 <= int(r.headers["Retry-After"]) <= runtime.settings.throttle_window_seconds
    assert r.json["details"]["retry_after_seconds"] == int(r.headers["Retry-After"])
    assert failures_of(runtime, "alice")[0] == runtime.settings.throttle_per_address  # the 429 counted nothing
    r = signed.post(url, json={"data": {"mass_g": 100}, "signature": right}, environ_base=there)
    assert r.status_code == 200, r.json


def log_in_page(anon, addr):
    page = anon.get("/login", environ_base={"REMOTE_ADDR": addr}).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_a_login_burst_from_one_address_is_throttled_and_others_go_on(app, runtime):
    a, b = app.test_client(), app.test_client()
    csrf = log_in_page(a, "10.9.0.1")
    limit = runtime.settings.throttle_per_address
    names = ["qa", "nobody", "sv"]  # spread over accounts: none locks
    for n in range(limit):
        r = a.post(
            "/login",
            data={"csrf_token": csrf, "username": names[n % len(names)], "password": "wrong wrong wrong"},
            environ_base={"REMOTE_ADDR": "10.9.0.1"},
        )
        assert r.status_code == 401, (n, r.status_code)
    r = a.post(
        "/login",
        data={"csrf_token": csrf, "username": "op", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.0.1"},
    )
    assert r.status_code == 429 and 'data-code="too_many_attempts"' in r.text
    assert 1 <= int(r.headers["Retry-After"]) <= runtime.settings.throttle_window_seconds
    ok = b.post(
        "/login",
        data={"csrf_token": log_in_page(b, "10.9.0.2"), "username": "op", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.0.2"},
    )
    assert ok.status_code == 303
    assert failures_of(runtime, "op")[0] == 0


def test_last_admin_reactivation_and_expired_tokens_over_the_api(client, runtime, root, op):
    r = client.post("/api/users/uu/deactivate", json={"reason": "left"}, headers=root)
    assert r.status_code == 200 and r.json["active"] is False
    r = client.post("/api/users/root/deactivate", json={"reason": "me"}, headers=root)
    assert r.status_code == 409 and r.json["code"] == "last_admin"
    r = client.post("/api/users/uu/reactivate", json={"reason": "back"}, headers=root)
    assert r.status_code == 200 and r.json["active"] is True and r.json["locked"] is False
    r = client.post("/api/users/uu/reactivate", json={"reason": "again"}, headers=root)
    assert r.status_code == 409 and r.json["code"] == "user_active"
    r = client.post("/api/users/uu/reactivate", json={"reason": "back"}, headers=op)
    assert r.status_code == 403
    assert client.get("/api/tasks", headers=op).status_code == 200
    with runtime.transaction() as s:
        s.execute(update(User).where(User.username == "op").values(password_changed_at=utcnow().replace(year=2000)))
    r = client.get("/api/tasks", headers=op)
    assert r.status_code == 401 and r.json["code"] == "password_expired"
    users.set_password(runtime, "op", "a brand new passphrase", by="root")
    assert client.get("/api/tasks", headers=op).status_code == 200


def test_break_glass_unlock_needs_the_server_not_a_login(runtime, db_url, root):
    for _ in range(runtime.settings.lockout_attempts):
        with pytest.raises(users.AuthFailed):
            users.authenticate(runtime, "root", "locked out by a guess")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHLINE_")}
    env.update(BATCHLINE_DATABASE_URL=db_url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "web.cli", "user", "unlock", "root"]
    no_reason = subprocess.run([*cmd, "--local"], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    no_login = subprocess.run(
        [*cmd, "--reason", "x"], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    assert no_login.returncode == 2 and "error [auth_required]" in no_login.stderr
    done = subprocess.run(
        [*cmd, "--local", "--reason", "all admins locked out; ticket 17", "--json"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["locked"] is False
    assert users.authenticate(runtime, "root", PASSWORD).username == "root"
    with runtime.transaction() as s:
        entry = s.scalars(select(AuditEvent).where(AuditEvent.action == "user.unlock")).one()
    assert entry.user.startswith("local-operator:") and entry.reason == "all admins locked out; ticket 17"
    assert json.loads(entry.new) == {"locked": False, "break_glass": True}


def test_the_task_page_checks_the_witness_before_any_password(signed, runtime, app, root):
    r = signed.post(
        f"/api/batches/S-1/tasks/{task_id(signed)}/complete",
        json={"data": {"mass_g": 100}, "signature": {"username": "alice", "password": PASSWORD}},
    )
    assert r.status_code == 200, r.json
    page = app.test_client()
    csrf = log_in_page(page, "10.3.0.1")
    assert page.post("/login", data={"csrf_token": csrf, "username": "op", "password": PASSWORD}).status_code == 303
    url = f"/batches/S-1/tasks/{task_id(signed, 'transfer')}"
    html = page.get(url).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    form = {"csrf_token": csrf, "transferred": "on", "signer_id": "op", "password": "op typed it wrong"}
    for _ in range(runtime.settings.lockout_attempts):
        r = page.post(url, data={**form, "witness_id": "root", "witness_password": "a guess"})
        assert r.status_code == 403 and "the witness needs the role" in r.text.lower()
        r = page.post(url, data={**form, "witness_id": "op", "witness_password": "a guess"})
        assert r.status_code == 403 and "another person" in r.text
    assert failures_of(runtime, "root") == (0, [])
    assert failures_of(runtime, "op")[0] == 0  # the performer's password was not checked either


def test_cli_keeps_the_last_admin_and_reactivates(runtime):
    from click.testing import CliRunner

    from web import cli

    def run(*args):
        env = {"BATCHLINE_USER": "uu", "BATCHLINE_PASSWORD": PASSWORD}
        return CliRunner().invoke(cli.main, list(args), obj=cli.CliContext(runtime=runtime), env=env)

    last = run("user", "deactivate", "uu", "--reason", "leaving", "--by", "uu")
    assert last.exit_code == 2 and last.stderr.startswith("error [last_admin]: uu is the last active administrator")
    assert run("user", "deactivate", "op", "--reason", "left", "--by", "uu").exit_code == 0
    back = run("user", "reactivate", "op", "--reason", "rejoined", "--by", "uu", "--json")
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["active"] is True
    again = run("user", "reactivate", "op", "--reason", "rejoined", "--by", "uu")
    assert again.exit_code == 2 and again.stderr.startswith("error [user_active]")
    assert users.authenticate(runtime, "op", PASSWORD).username == "op"
