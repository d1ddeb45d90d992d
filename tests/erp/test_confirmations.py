"""Completing a batch that came from a process order confirms it to the ERP: an
OperationsPerformance (schema-valid) with the produced quantity and the consumed lots,
queued in the completing transaction, sent by the job executor through the
``erp-b2mml`` connector to a real HTTP partner ERP, once from the ERP's view; an ERP
that stays down ends in an incident with the real error, never the secret."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from lxml import etree
from sqlalchemy import select
from werkzeug.serving import make_server

from engine import jobs, order_confirmations, users
from engine.connectors import ConnectorConfig
from engine.exports.operations_b2mml import PERFORMANCE_XSD, schema
from engine.models import AuditEvent, Batch, Incident, Job, LotMovement, utcnow
from engine.vocabulary import JobKind
from integrations.erp_b2mml import ErpB2mmlConnector
from integrations.partner_erp import PartnerErp, send_process_order
from tests.web.through_api import first_task

from .conftest import MEDIUM, PRODUCT, RECIPE, post_xml

SECRET = "erp-token-9f3c1d"


@pytest.fixture
def partner():
    erp = PartnerErp(token=SECRET).start()
    yield erp
    erp.stop()


def _connect(runtime, endpoint: str) -> None:
    config = ConnectorConfig(name="erp", type="erp-b2mml", endpoint=endpoint, secret=SECRET, timeout_seconds=3)
    runtime.connectors.register("erp", ErpB2mmlConnector(config, runtime))


@pytest.fixture
def batchline(erp):
    """The app on a real HTTP port (in this process), for the partner to post orders to."""
    server = make_server("127.0.0.1", 0, erp.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _movements(runtime, batch_id: str, *rows: tuple[str, str, str, float, str]) -> None:
    """What the genealogy part records at steps: lots consumed and produced."""
    with runtime.transaction() as s:
        pk = s.scalar(select(Batch.id).where(Batch.batch_id == batch_id))
        for kind, lot, material, quantity, unit in rows:
            s.add(
                LotMovement(
                    kind=kind,
                    lot_id=lot,
                    material=material,
                    batch_id=pk,
                    quantity=quantity,
                    unit=unit,
                    recorded_by="op",
                )
            )


def _complete(client, batch_id: str) -> None:
    task = first_task(client, batch_id)
    r = client.post(f"/api/batches/{batch_id}/tasks/{task}/complete", json={"data": {}}, headers=client.auth["op"])
    assert r.status_code == 200, r.json
    assert client.get(f"/api/batches/{batch_id}").json["state"] == "complete"


def _confirmation_jobs(runtime) -> list[Job]:
    with runtime.transaction() as s:
        return list(s.scalars(select(Job).where(Job.kind == JobKind.ERP_CONFIRMATION)))


def _run_jobs(runtime, rounds: int = 10) -> None:
    """Run due jobs, bringing backed-off retries forward (no sleeping through backoff)."""
    for _ in range(rounds):
        with runtime.transaction() as s:
            for job in s.scalars(select(Job).where(Job.state == "pending")):
                job.due_at = utcnow() - timedelta(seconds=1)
        if jobs.run_due(runtime) == 0:
            return


def test_a_completed_order_is_confirmed_to_the_partner_erp(erp, runtime, partner, batchline):
    _connect(runtime, partner.url)
    token = users.create_token(runtime, "alice", "erp", by="test")
    lots = [{"lot": "MED-L-7", "material": MEDIUM, "quantity": 12.5, "unit": "kg"}]
    status, body = send_process_order(batchline, token, "PO-2001", RECIPE, PRODUCT, 2000, lots)
    assert status == 201, body
    assert send_process_order(batchline, token, "PO-2001", RECIPE, PRODUCT, 2000, lots)[0] == 200
    _movements(
        runtime,
        "PO-2001",
        ("consumed", "MED-L-7", MEDIUM, 12.0, "kg"),
        ("consumed", "MED-L-8", MEDIUM, 0.5, "kg"),
        ("produced", "HCCF-0001", PRODUCT, 1875.5, "L"),
    )
    _complete(erp, "PO-2001")
    (job,) = _confirmation_jobs(runtime)  # queued with the completion, before any worker ran
    assert job.state == "pending" and job.payload == {"order": "PO-2001"}
    _run_jobs(runtime)
    assert [j.state for j in _confirmation_jobs(runtime)] == ["done"]
    (got,) = partner.confirmations
    assert got["order"] == "PO-2001" and got["idempotency_key"] == "PO-2001:erp-confirmation"
    assert got["produced"] == {
        "material": PRODUCT,
        "lots": ["HCCF-0001"],
        "quantity": "1875.5",
        "unit": "L",
        "note": None,
    }
    assert [(c["lots"], c["quantity"]) for c in got["consumed"]] == [(["MED-L-7"], "12"), (["MED-L-8"], "0.5")]
    root = etree.fromstring(got["xml"].encode())
    assert schema(PERFORMANCE_XSD).validate(root), schema(PERFORMANCE_XSD).error_log
    # a second send (a retry after a lost answer) is the same document: the ERP keeps one
    order_confirmations.send(runtime, "PO-2001", None, {"order": "PO-2001"})
    assert len(partner.confirmations) == 1
    with runtime.transaction() as s:
        trail = s.scalars(select(AuditEvent)).all()
        assert "process_order.confirmed" in [e.action for e in trail if e.object_id == "PO-2001"]
        assert not [e.id for e in trail if SECRET in f"{e.old}{e.new}{e.reason}"]  # never audited in clear


def test_without_produced_lots_the_planned_quantity_is_confirmed_with_a_note(erp, runtime, partner):
    _connect(runtime, partner.url)
    from .conftest import order_xml

    assert post_xml(erp, order_xml("PO-2002", quantity=1500)).status_code == 201
    _movements(runtime, "PO-2002", ("consumed", "MED-L-1", MEDIUM, 12.5, "kg"))
    _complete(erp, "PO-2002")
    _run_jobs(runtime)
    (got,) = partner.confirmations
    assert got["produced"]["quantity"] == "1500" and got["produced"]["lots"] == []
    assert got["produced"]["note"] == order_confirmations.PLANNED_NOTE
    assert [c["lots"] for c in got["consumed"]] == [["MED-L-1"]]


def test_a_batch_not_from_an_order_confirms_nothing(erp, runtime, partner):
    _connect(runtime, partner.url)
    from tests.web.through_api import start_batch

    start_batch(erp, RECIPE, "B-PLAIN")
    _complete(erp, "B-PLAIN")
    assert _confirmation_jobs(runtime) == []


def test_an_erp_down_for_a_while_gets_the_confirmation_once(erp, runtime, partner):
    _connect(runtime, partner.url)
    from .conftest import order_xml

    post_xml(erp, order_xml("PO-2003"))
    _complete(erp, "PO-2003")
    with runtime.transaction() as s:
        s.scalars(select(Job).where(Job.kind == JobKind.ERP_CONFIRMATION)).one().max_attempts = 5
    partner.fail_next(2, 503)
    _run_jobs(runtime)
    (job,) = _confirmation_jobs(runtime)
    assert job.state == "done" and job.attempts == 3
    assert len(partner.confirmations) == 1 and partner.requests == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_erp_that_stays_down_raises_an_incident_with_the_real_error(erp, runtime):
    _connect(runtime, f"http://127.0.0.1:{_closed_port()}")
    from .conftest import order_xml

    post_xml(erp, order_xml("PO-2004"))
    _complete(erp, "PO-2004")
    with runtime.transaction() as s:
        s.scalars(select(Job).where(Job.kind == JobKind.ERP_CONFIRMATION)).one().max_attempts = 3
    _run_jobs(runtime)
    (job,) = _confirmation_jobs(runtime)
    assert job.state == "failed" and job.attempts == 3
    with runtime.transaction() as s:
        (incident,) = s.scalars(select(Incident)).all()
        assert incident.kind == JobKind.ERP_CONFIRMATION
        assert "ConnectionError" in incident.message and "/confirmations" in incident.message
        assert SECRET not in incident.message and SECRET not in (job.last_error or "")


def test_a_wrong_token_is_not_retried_and_not_leaked(erp, runtime, partner):
    config = ConnectorConfig(name="erp", type="erp-b2mml", endpoint=partner.url, secret="wrong-" + SECRET)
    runtime.connectors.register("erp", ErpB2mmlConnector(config, runtime))
    from .conftest import order_xml

    post_xml(erp, order_xml("PO-2005"))
    _complete(erp, "PO-2005")
    with runtime.transaction() as s:
        s.scalars(select(Job).where(Job.kind == JobKind.ERP_CONFIRMATION)).one().max_attempts = 5
    _run_jobs(runtime)
    (job,) = _confirmation_jobs(runtime)
    assert job.state == "failed" and job.attempts == 1  # 401: the request is wrong, no retry helps
    assert "HTTP 401" in job.last_error and SECRET not in job.last_error
    assert partner.confirmations == []


def test_the_goods_movements_of_service_tasks_reach_the_partner(runtime, partner):
    from engine.connectors import ServiceCall

    _connect(runtime, partner.url)
    call = ServiceCall(
        "B-1",
        "t-1",
        "hv_confirm_consumption",
        "erp.confirm_consumption",
        {"order": "PO-1", "material": "FLT", "lot": "F-1", "quantity": 2, "unit": "EA"},
        "",
    )
    first = runtime.connectors.get(call.operator).call(call)
    again = runtime.connectors.get(call.operator).call(call)
    assert first.data["document"] == again.data["document"]
    assert [m["movement"]["lot"] for m in partner.goods_movements] == ["F-1"]


def test_the_queued_confirmation_survives_a_restart(erp, runtime, partner, db_url):
    """Completion and confirmation job commit together: another process (a restarted
    server) finds the job and sends it."""
    from tests.support import make_runtime

    from .conftest import order_xml

    post_xml(erp, order_xml("PO-2006"))
    _complete(erp, "PO-2006")
    restarted = make_runtime(db_url)
    try:
        _connect(restarted, partner.url)
        _run_jobs(restarted)
    finally:
        restarted.close()
    assert [c["order"] for c in partner.confirmations] == ["PO-2006"]


def test_an_incident_shows_in_the_batch_record(erp, runtime):
    _connect(runtime, f"http://127.0.0.1:{_closed_port()}")
    from .conftest import order_xml

    post_xml(erp, order_xml("PO-2007"))
    _complete(erp, "PO-2007")
    _run_jobs(runtime)
    r = erp.get("/api/batches/PO-2007/exceptions", headers=erp.auth["qa"])
    assert r.status_code == 200, r.json
    assert any("erp_confirmation job ran out of retries" in e["message"] for e in r.json), r.json
