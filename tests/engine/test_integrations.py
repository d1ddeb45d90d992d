"""Integrations against real HTTP endpoints on 127.0.0.1: the built-in HTTP connector
(success, retry after 5xx, asynchronous 202 + callback, BPMN error) and webhook delivery
of outbox events (CloudEvents envelope, Standard Webhooks signature, verified by the
independent ``standardwebhooks`` package)."""

from __future__ import annotations

import base64
import json

from standardwebhooks import Webhook

from engine import batches, jobs
from integrations.http import HttpConnector
from tests.support import make_runtime

from .engine_helpers import complete, load, ready, run_jobs_until
from .http_receiver import Receiver


def _start(rt, receiver, batch_id):
    rt.connectors.register("http", HttpConnector())
    load(rt, "http_service.bpmn")
    batches.start_batch(
        rt,
        "http_confirmation",
        batch_id,
        user="op.anna",
        parameters={"erp_url": receiver.url + "/confirm", "order_id": "PO-77"},
    )


def test_http_connector_success_and_retry(rt):
    with Receiver() as erp:
        erp.replies = [(503, {"message": "maintenance"}), (200, {"doc": "4711"})]
        _start(rt, erp, "HT-1")
        run_jobs_until(rt, lambda: "check_doc" in ready(rt, "HT-1"))
        assert len(erp.requests) == 2  # one failure, retried
        sent = json.loads(erp.requests[-1]["body"])
        assert sent == {"order": "PO-77", "quantity": 12.5}
        assert erp.requests[-1]["headers"]["Idempotency-Key"].startswith("HT-1:")
    record = batches.steps(rt, "HT-1")
    assert record[0]["kind"] == "service_task" and record[0]["values"] == {"doc": "4711"}


def test_http_connector_async_callback(rt):
    with Receiver() as erp:
        erp.replies = [(202, {"reference": "Q-1"})]
        _start(rt, erp, "HT-2")
        jobs.run_due(rt)
        token = erp.requests[0]["headers"]["X-Batchline-Callback"]
    assert ready(rt, "HT-2") == {}  # waits for the callback
    batch_id, task_id = token.split(":")
    batches.complete_service_task(rt, batch_id, task_id, {"doc": "4712"}, user="svc.erp")
    assert set(ready(rt, "HT-2")) == {"check_doc"}


def test_http_connector_bpmn_error(rt):
    with Receiver() as erp:
        erp.replies = [(409, {"bpmn_error": "ORDER_CLOSED", "message": "order PO-77 is closed"})]
        _start(rt, erp, "HT-3")
        run_jobs_until(rt, lambda: "reopen_order" in ready(rt, "HT-3"))
    assert "closed" in batches.steps(rt, "HT-3")[0]["values"]["error"]


def test_webhooks_are_signed_cloudevents_delivered_at_least_once(db_url, rt):
    secret = "whsec_" + base64.b64encode(b"batchline-test-secret-0123456789").decode()
    with Receiver() as sink:
        hooked = make_runtime(db_url, webhook_urls=(sink.url + "/events",), webhook_secret=secret)
        try:
            sink.replies = [(500, {})]  # the first delivery fails and is retried
            load(hooked, "loop.bpmn")
            batches.start_batch(hooked, "sampling_loop", "WH-1", user="op.anna", parameters={"done": False})
            complete(hooked, "WH-1", "take_sample", {"reading": 1, "done": True})
            run_jobs_until(hooked, lambda: len(sink.requests) >= 4)
            verifier = Webhook(secret)
            seen = {}
            for req in sink.requests:
                headers = {k.lower(): v for k, v in req["headers"].items()}
                event = verifier.verify(req["body"], headers)  # raises if the signature is wrong
                assert event["specversion"] == "1.0" and event["source"] == "urn:batchline"
                seen.setdefault(event["id"], event)
            types = [e["type"] for e in seen.values()]
            assert "org.batchline.batch.started" in types
            assert "org.batchline.batch.step.completed" in types
            assert "org.batchline.batch.completed" in types
            assert len(sink.requests) > len(seen)  # the failed one was delivered again, same id
        finally:
            hooked.close()
