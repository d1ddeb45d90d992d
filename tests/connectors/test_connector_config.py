"""Connector instances as configuration: checks with clear errors, audit without the
secret, the registry building instances through their type (cached, rebuilt on change,
refused when disabled or not installed), secret references, the TOML file (idempotent)
and the http type reaching a configured endpoint with a path only."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine import batches, connector_config, connector_file
from engine.connectors import ConnectorError, ServiceCall
from engine.errors import Conflict, InvalidInput
from integrations.http import HttpConnector
from tests.engine.engine_helpers import ready
from tests.engine.http_receiver import Receiver
from web.ui.recipe_checks import recipe_problems

from .helpers import HERE, LIMS_SECRET, add_lims, audit_text, recipe, work_until

SECRET = "erp-token-8d1f2a77c3b94e05"


def call(operator: str, **params) -> ServiceCall:
    return ServiceCall("B-1", "t-1", "task", operator, params, "B-1:t-1")


def add_erp(rt, endpoint="http://127.0.0.1:9/erp", **kw):
    return connector_config.add(rt, name="erp", type="http", endpoint=endpoint, by="admin.x", **kw)


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"name": "lims.eu"}, "connector_name_invalid"),
        ({"name": ""}, "connector_name_invalid"),
        ({"name": 7}, "connector_name_invalid"),
        ({"type": "sap-rfc"}, "connector_type_unknown"),
        ({"type": "HTTP"}, "connector_type_invalid"),
        ({"endpoint": "opc.tcp://plc:4840"}, "endpoint_invalid"),
        ({"endpoint": "ftp://erp/x"}, "endpoint_invalid"),
        ({"endpoint": "http://user:pw@erp/x"}, "endpoint_invalid"),
        ({"endpoint": "http://erp:99999/"}, "endpoint_invalid"),
        ({"endpoint": "http://" + "e" * 600}, "endpoint_invalid"),
        ({"timeout_seconds": 0}, "timeout_invalid"),
        ({"timeout_seconds": 301}, "timeout_invalid"),
        ({"timeout_seconds": "5"}, "timeout_invalid"),
        ({"timeout_seconds": float("nan")}, "timeout_invalid"),
        ({"settings": ["a"]}, "settings_invalid"),
        ({"settings": {"x": "y" * 20_000}}, "settings_invalid"),
        ({"settings": {"x": float("inf")}}, "settings_invalid"),
        ({"secret_ref": "vault:x"}, "secret_ref_invalid"),
        ({"secret_ref": "file:relative/path"}, "secret_ref_invalid"),
        ({"secret": ""}, "secret_invalid"),
        ({"secret": "a", "secret_ref": "env:X"}, "secret_invalid"),
    ],
)
def test_bad_configuration_is_refused_with_a_clear_error(rt, fields, code):
    given = {"name": "erp", "type": "http", "endpoint": "https://erp.example/api", **fields}
    with pytest.raises(InvalidInput) as err:
        connector_config.add(rt, by="admin.x", **given)
    assert err.value.code == code
    assert connector_config.list_instances(rt) == []


def test_add_change_disable_are_audited_and_the_secret_never_shows(rt, caplog):
    caplog.set_level("DEBUG")
    out = add_erp(rt, secret=SECRET, settings={"site": "Basel"})
    assert out["secret_set"] is True and "secret" not in out
    with pytest.raises(Conflict):
        add_erp(rt)
    connector_config.update(rt, "erp", by="admin.y", timeout_seconds=3, secret=SECRET + "-2")
    connector_config.update(rt, "erp", by="admin.y", timeout_seconds=3)  # nothing changes
    connector_config.disable(rt, "erp", by="admin.y")
    trail = audit_text(rt)
    assert SECRET not in trail and "secret set" in trail
    assert trail.count("connector.changed") == 3  # timeout, secret, enabled; the no-op audited nothing
    listed = connector_config.list_instances(rt)
    assert listed[0]["enabled"] is False and listed[0]["updated_by"] == "admin.y"
    assert SECRET not in repr(listed) and SECRET not in caplog.text


def test_registry_builds_caches_rebuilds_and_refuses(rt):
    rt.connectors.register("erp", lambda c: {"from": "code"})  # the fallback, as the demo does
    add_erp(rt, secret=SECRET)
    first = rt.connectors.get("erp.confirm")
    assert isinstance(first, HttpConnector) and first.config.secret == SECRET
    assert rt.connectors.get("erp.other") is first  # cached per instance
    assert "erp" in rt.connectors.names()
    connector_config.update(rt, "erp", by="admin.x", endpoint="http://127.0.0.1:9/erp2")
    second = rt.connectors.get("erp.confirm")
    assert second is not first and second.config.endpoint.endswith("/erp2")
    connector_config.disable(rt, "erp", by="admin.x")
    with pytest.raises(ConnectorError) as err:
        rt.connectors.get("erp.confirm")
    assert err.value.retry is False and "'erp' is disabled" in str(err.value)
    with pytest.raises(ConnectorError) as err:
        rt.connectors.get("nowhere.op")
    assert err.value.retry is False and "nowhere.op" in str(err.value)


def test_an_instance_whose_type_is_not_installed_is_a_clear_error(rt):
    # a type of a plug-in that a later install of this plant leaves out (no entry point)
    rt.connectors.register_type("plc-s7", lambda config, runtime: None)
    connector_config.add(rt, name="PLC-7", type="plc-s7", endpoint="https://plc.example/api", by="admin.x")
    rt.connectors._types.pop("plc-s7")
    with pytest.raises(ConnectorError) as err:
        rt.connectors.get("PLC-7.read")
    assert err.value.retry is False
    assert str(err.value) == "connector 'PLC-7' has type 'plc-s7', which is not installed in this Batchline"


def test_a_secret_reference_is_read_at_call_time_and_a_rotation_rebuilds(rt, monkeypatch, tmp_path):
    monkeypatch.setenv("ERP_TOKEN", "token-one")
    add_erp(rt, secret_ref="env:ERP_TOKEN")
    assert rt.connectors.get("erp.x").config.secret == "token-one"
    monkeypatch.setenv("ERP_TOKEN", "token-two")
    assert rt.connectors.get("erp.x").config.secret == "token-two"
    monkeypatch.delenv("ERP_TOKEN")
    with pytest.raises(ConnectorError) as err:
        rt.connectors.get("erp.x")
    assert "env:ERP_TOKEN is not set" in str(err.value)
    secret_file = tmp_path / "lims.secret"
    secret_file.write_text("from-a-file\n")
    connector_config.update(rt, "erp", by="admin.x", secret_ref=f"file:{secret_file}")
    assert rt.connectors.get("erp.x").config.secret == "from-a-file"
    assert "from-a-file" not in audit_text(rt)


def test_subscriber_secrets_still_work_beside_connector_secrets(rt):
    from engine.qms import secrets as qms_secrets

    box = qms_secrets.SecretBox(rt.settings)
    token = box.seal("whsec_abc")
    assert box.open(token) == "whsec_abc"
    add_erp(rt, secret=SECRET)
    with pytest.raises(qms_secrets.SecretUnreadable):
        qms_secrets.SecretBox(rt.settings).open(connector_config._box(rt.settings).seal("x"))  # keys differ


TOML = """
[connectors.erp]
type = "http"
endpoint = "https://erp.example/api"
timeout_seconds = 5
secret_ref = "env:BATCHLINE_ERP_TOKEN"

[connectors.erp.settings]
site = "Basel"

[connectors.lims]
type = "lims-rest"
endpoint = "https://lims.example/api/v1"
"""


def test_the_connectors_file_is_idempotent(rt, tmp_path):
    path = tmp_path / "connectors.toml"
    path.write_text(TOML)
    assert connector_file.load(rt, path, by="admin.x") == {"added": ["erp", "lims"], "changed": [], "unchanged": []}
    trail = audit_text(rt)
    assert connector_file.load(rt, path, by="admin.x") == {"added": [], "changed": [], "unchanged": ["erp", "lims"]}
    assert audit_text(rt) == trail  # the second load audited nothing
    path.write_text(TOML.replace("timeout_seconds = 5", "timeout_seconds = 7"))
    assert connector_file.load(rt, path, by="admin.x")["changed"] == ["erp"]
    assert connector_config.get(rt, "erp")["timeout_seconds"] == 7.0


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[connectors.erp]\ntype = "http"\nendpoint = "https://e/x"\nsecret = "pw"\n', "no secret in clear"),
        ('[connectors.erp]\ntype = "http"\n', "endpoint is required"),
        ('[connectors.erp]\ntype = "http"\nendpoint = "https://e/x"\ncolour = 1\n', "unknown key(s) colour"),
        ('[connectors."a.b"]\ntype = "http"\nendpoint = "https://e/x"\n', "connector 'a.b'"),
        ("[connectors.erp\n", "not valid TOML"),
        (
            '[connectors.erp]\ntype = "http"\nendpoint = "https://e/x"\n[connectors.bad]\ntype = "nope"\n'
            'endpoint = "https://e"\n',
            "connector 'bad': connector type 'nope' is not installed",
        ),
    ],
)
def test_a_bad_connectors_file_changes_nothing(rt, tmp_path, text, needle):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as err:
        connector_file.load(rt, path, by="admin.x")
    assert needle in err.value.message
    assert connector_config.list_instances(rt) == []


def test_recipe_checks_know_configured_instances(rt):
    files = {"lims_spec.bpmn": (HERE / "lims_spec.bpmn").read_bytes()}

    def unknown():  # the test recipe's user task has no form: only connectors matter here
        return [p for p in recipe_problems(files, {}, rt.connectors.names()) if p.code == "connector_unknown"]

    assert len(unknown()) == 1 and "'lims.sample_request'" in unknown()[0].message
    add_lims(rt, "http://127.0.0.1:9")
    assert unknown() == []
    connector_config.disable(rt, "lims", by="admin.x")
    assert len(unknown()) == 1


def test_the_http_type_calls_the_configured_endpoint_with_a_path_only(rt):
    with Receiver() as erp:
        erp.replies = [(503, {"message": "maintenance"}), (200, {"doc": "4711"})]
        add_erp(rt, endpoint=erp.url + "/api", secret=SECRET)
        recipe(rt, "http_path.bpmn")
        batches.start_batch(rt, "erp_confirm", "HP-1", user="sup.x", parameters={})
        work_until(rt, lambda: "check" in ready(rt, "HP-1"))
    first, second = erp.requests
    assert second["path"] == "/api/confirmations"
    assert second["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert batches.steps(rt, "HP-1")[0]["values"] == {"doc": "4711"}


def test_the_http_type_refuses_a_url_in_the_recipe(rt):
    add_erp(rt)
    with pytest.raises(ConnectorError) as err:
        rt.connectors.get("erp.x").call(call("erp.x", url="http://evil.example/"))
    assert err.value.retry is False and "a recipe names no URL" in str(err.value)
    for path in ("http://evil.example/x", "../../admin", 7):
        with pytest.raises(ConnectorError):
            rt.connectors.get("erp.x").call(call("erp.x", path=path))


class _Slow(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        time.sleep(1.5)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_timeout_of_the_instance_is_enforced(rt):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        add_erp(rt, endpoint=f"http://127.0.0.1:{server.server_address[1]}", timeout_seconds=0.3, secret=SECRET)
        started = time.monotonic()
        with pytest.raises(ConnectorError) as err:
            rt.connectors.get("erp.x").call(call("erp.x", path="/slow", timeout=60))
        assert time.monotonic() - started < 1.2
        assert err.value.retry is True and "ReadTimeout" in str(err.value) and SECRET not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


def test_the_lims_type_refuses_an_unknown_operation(rt):
    add_lims(rt, "http://127.0.0.1:9")
    with pytest.raises(ConnectorError) as err:
        rt.connectors.get("lims.delete_everything").call(call("lims.delete_everything", tests="titre"))
    assert err.value.retry is False and "sample_request" in str(err.value)
    assert LIMS_SECRET not in str(err.value)
