"""``/api/connectors`` and ``/api/lims/results`` over the Flask test client, and the
``batchline connectors`` CLI: administrators only (operators 403), wrong types, missing
fields, oversize and hostile input refused with 4xx, the secret in no answer, audit
entry or log line, concurrent creation of one name answered once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
from click.testing import CliRunner

from engine import batches, jobs, users
from engine import lims as engine_lims
from tests.support import PASSWORD

from .helpers import LIMS_SECRET, add_lims, audit_text, recipe

SECRET = "erp-api-token-6c1e0d93b2"


@pytest.fixture
def admin(client):
    return client.auth["uu"]


def test_operator_and_qa_get_403_administrators_manage(client, admin):
    body = {"name": "erp", "type": "http", "endpoint": "http://127.0.0.1:9/api", "secret": SECRET}
    for who in ("op", "alice"):
        assert client.post("/api/connectors", json=body, headers=client.auth[who]).status_code == 403
        assert client.get("/api/connectors", headers=client.auth[who]).status_code == 403
        assert client.post("/api/connectors/erp/disable", headers=client.auth[who]).status_code == 403
    created = client.post("/api/connectors", json=body, headers=admin)
    assert created.status_code == 201, created.json
    assert created.json["secret_set"] is True and "secret" not in created.json
    assert client.post("/api/connectors", json=body, headers=admin).status_code == 409
    changed = client.patch("/api/connectors/erp", json={"timeout_seconds": 4, "secret": SECRET + "x"}, headers=admin)
    assert changed.status_code == 200 and changed.json["timeout_seconds"] == 4.0
    assert client.post("/api/connectors/erp/disable", headers=admin).json["enabled"] is False
    assert client.post("/api/connectors/erp/enable", headers=admin).json["enabled"] is True
    check = client.post("/api/connectors/erp/test", headers=admin)
    assert check.status_code == 200 and check.json["ok"] is False and "unreachable" in check.json["message"]
    answers = [
        created,
        changed,
        client.get("/api/connectors", headers=admin),
        client.get("/api/connectors/erp", headers=admin),
    ]
    assert all(SECRET not in a.get_data(as_text=True) for a in answers)
    assert client.get("/api/connectors/nope", headers=admin).status_code == 404


@pytest.mark.parametrize(
    "body, status",
    [
        ({"type": "http", "endpoint": "https://e/x"}, 422),  # no name
        ({"name": "erp", "endpoint": "https://e/x"}, 422),  # no type
        ({"name": "erp", "type": "http"}, 422),  # no endpoint
        ({"name": ["erp"], "type": "http", "endpoint": "https://e/x"}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "timeout_seconds": "5"}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "timeout_seconds": True}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "timeout_seconds": 1e9}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "enabled": "yes"}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "settings": "x"}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "settings": {"k": "v" * 17_000}}, 422),
        ({"name": "erp", "type": "http", "endpoint": "opc.tcp://plc:4840"}, 422),
        ({"name": "erp", "type": "nope", "endpoint": "https://e/x"}, 422),
        ({"name": "e.rp", "type": "http", "endpoint": "https://e/x"}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "colour": "red"}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "secret": "s" * 5000}, 422),
        ({"name": "erp", "type": "http", "endpoint": "https://e/x", "secret_ref": "vault:x"}, 422),
    ],
)
def test_bad_connector_bodies_are_refused(client, admin, body, status):
    answer = client.post("/api/connectors", json=body, headers=admin)
    assert answer.status_code == status, answer.json
    assert client.get("/api/connectors", headers=admin).json == []


@pytest.mark.parametrize(
    "change",
    [
        {"enabled": "no"},
        {"timeout_seconds": []},
        {"timeout_seconds": 0},
        {"secret": 5},
        {"clear_secret": "yes"},
        {"settings": 3},
        {"endpoint": "opc.tcp://plc:4840"},
        {"type": "nope"},
        {"name": "other"},
    ],
)
def test_bad_changes_are_refused_and_change_nothing(client, admin, change):
    body = {"name": "erp", "type": "http", "endpoint": "http://127.0.0.1:9/api"}
    before = client.post("/api/connectors", json=body, headers=admin).json
    answer = client.patch("/api/connectors/erp", json=change, headers=admin)
    assert answer.status_code == 422, answer.json
    assert client.get("/api/connectors/erp", headers=admin).json == before


def test_oversize_and_non_json_bodies(client, admin):
    big = {"name": "erp", "type": "http", "endpoint": "https://e/x", "settings": {"k": "v" * 300_000}}
    assert client.post("/api/connectors", json=big, headers=admin).status_code == 413
    bad = client.post("/api/connectors", data="{not json", headers={**admin, "content-type": "application/json"})
    assert bad.status_code in (400, 422)
    assert client.patch("/api/connectors/erp", json=[1], headers=admin).status_code in (404, 422)


def test_concurrent_creation_of_one_name_answers_once(app, client, admin):
    body = {"name": "erp", "type": "http", "endpoint": "https://erp.example/api"}
    statuses = []

    def post():
        statuses.append(app.test_client().post("/api/connectors", json=body, headers=admin).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409, 409]


# --- POST /api/lims/results -----------------------------------------------------------


def signed(body: bytes, secret: str = LIMS_SECRET, msg_id: str = "R-1", ts: int | None = None) -> dict:
    ts = int(time.time()) if ts is None else ts
    sig = hmac.new(secret.encode(), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(sig).decode(),
    }


def result(**over) -> bytes:
    body = {"result_id": "R-1", "sample_id": "S-1", "results": [{"test": "titre", "value": 5.0, "unit": "g/L"}]}
    return json.dumps({**body, **over}).encode()


@pytest.fixture
def lims_client(client, runtime):
    add_lims(runtime, "http://127.0.0.1:9")
    return client


def post_result(client, body: bytes, headers=None, who="alice"):
    headers = signed(body) if headers is None else headers
    return client.post("/api/lims/results", data=body, headers={**client.auth[who], **headers})


def test_results_need_a_service_token_and_the_lims_signature(lims_client, anon):
    body = result()
    assert anon.post("/api/lims/results", data=body, headers=signed(body)).status_code == 401
    assert post_result(lims_client, body, who="op").status_code == 403
    assert post_result(lims_client, body, headers=signed(body, secret="wrong")).status_code == 401
    assert post_result(lims_client, body, headers=signed(body, ts=int(time.time()) - 3600)).status_code == 401
    assert post_result(lims_client, body, headers={"content-type": "application/json"}).status_code == 401
    tampered = signed(body)
    assert post_result(lims_client, result(sample_id="S-2"), headers=tampered).status_code == 401
    # well signed, for a sample no batch waits for: 404, and the LIMS may send it again later
    first = post_result(lims_client, body)
    assert first.status_code == 404 and first.json["code"] == "message_not_correlated"
    assert post_result(lims_client, body).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        result(result_id=None),
        result(result_id=7),
        result(result_id="r" * 300),
        result(sample_id=["S-1"]),
        result(results=[]),
        result(results="titre=5"),
        result(results=[{"test": "titre"}]),
        result(results=[{"test": "titre", "value": True}]),
        result(results=[{"test": "titre", "value": None}]),
        result(results=[{"test": "titre", "value": {"v": 1}}]),
        result(results=[{"test": "titre", "value": 5, "low": "4"}]),
        result(results=[{"test": "ti tre", "value": 5}]),
        result(results=[{"test": "titre", "value": 5}] * 101),
        result(extra=1),
        b'{"result_id": "R-1", "sample_id": "S-1", "results": [{"test": "t", "value": 1e999}]}',
        b"[1, 2]",
        b"not json",
    ],
)
def test_bad_result_bodies_are_refused_after_the_signature(lims_client, body):
    answer = post_result(lims_client, body)
    assert answer.status_code in (400, 422), answer.json


def test_an_oversize_result_is_refused(lims_client):
    body = result(results=[{"test": "titre", "value": "x" * 200, "unit": "g/L"}] * 100, pad="p" * 70_000)
    assert post_result(lims_client, body).status_code == 413


def test_a_delivered_result_is_replayed_not_delivered_twice(lims_client, runtime, caplog):
    caplog.set_level("DEBUG")
    recipe(runtime, "lims_spec.bpmn")
    runtime.connectors.register("lims.sample_request", lambda call: {"sample_id": "S-1"})
    batches.start_batch(runtime, "lims_spec", "LA-1", user="sup.x", parameters={})
    jobs.run_due(runtime)
    engine_lims.record_sample(
        runtime, sample_id="S-1", connector="lims", batch_id="LA-1", task_key="x", specs={"titre": {"low": 5.5}}
    )
    first = post_result(lims_client, result())
    assert first.status_code == 200 and first.json["replayed"] is False
    assert len(first.json["exceptions"]) == 1  # 5.0 below the 5.5 sent with the request
    again = post_result(lims_client, result())
    assert again.status_code == 200 and again.json["replayed"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    assert LIMS_SECRET not in caplog.text and LIMS_SECRET not in audit_text(runtime)


# --- the CLI --------------------------------------------------------------------------


def test_cli_add_list_update_disable_load(runtime, tmp_path, monkeypatch):
    from web.cli import CliContext, main

    users.create_user(runtime, "ada", "Ada Admin", ["admin"], by="test", password=PASSWORD)
    monkeypatch.setenv("BATCHLINE_PASSWORD", PASSWORD)

    def run(*args, user="ada", env=None):
        return CliRunner().invoke(
            main, ["--json", *args], obj=CliContext(runtime=runtime), env={"BATCHLINE_USER": user, **(env or {})}
        )

    added = run(
        "connectors",
        "add",
        "erp",
        "--type",
        "http",
        "--endpoint",
        "https://erp.example/api",
        "--secret-from-env",
        env={"BATCHLINE_CONNECTOR_SECRET": SECRET},
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["secret_set"] is True and SECRET not in added.output
    listed = run("connectors", "list")
    assert [c["name"] for c in json.loads(listed.output)] == ["erp"] and SECRET not in listed.output
    assert run("connectors", "update", "erp", "--timeout", "3").exit_code == 0
    bad = run("connectors", "update", "erp", "--endpoint", "opc.tcp://x:1")
    assert bad.exit_code == 2 and "endpoint" in bad.output
    assert json.loads(run("connectors", "disable", "erp").output)["enabled"] is False
    toml = tmp_path / "c.toml"
    toml.write_text('[connectors.lims]\ntype = "lims-rest"\nendpoint = "https://lims.example/api"\n')
    assert json.loads(run("connectors", "load", str(toml)).output) == {
        "added": ["lims"],
        "changed": [],
        "unchanged": [],
    }
    assert json.loads(run("connectors", "load", str(toml)).output)["unchanged"] == ["lims"]
    assert SECRET not in audit_text(runtime)
    users.create_user(runtime, "opx", "Op X", ["operator"], by="test", password=PASSWORD)
    refused = run("connectors", "list", user="opx")
    assert refused.exit_code == 2 and "forbidden" in refused.output


def test_the_connectors_file_of_the_settings_is_applied_when_the_worker_starts(db_url, tmp_path):
    from tests.support import make_runtime
    from web.cli import CliContext, main

    toml = tmp_path / "connectors.toml"
    toml.write_text('[connectors.erp]\ntype = "http"\nendpoint = "https://erp.example/api"\nsecret_ref = "env:ERP_T"\n')
    rt = make_runtime(db_url, connectors_file=str(toml))
    try:
        for _ in range(2):
            run = CliRunner().invoke(main, ["worker", "--once"], obj=CliContext(runtime=rt))
            assert run.exit_code == 0, run.output
        assert "added 1" in run.output or "added 0" in run.output
        (erp,) = connector_config_list(rt)
        assert erp["secret_ref"] == "env:ERP_T" and erp["updated_by"] == "system"
        assert audit_text(rt).count("connector.added") == 1
    finally:
        rt.close()


def connector_config_list(rt):
    from engine import connector_config

    return connector_config.list_instances(rt)
