"""The lims-rest connector against the demo partner LIMS, a real HTTP server, with
Batchline itself served over real HTTP for the LIMS's answers: a sample round trip to
a completed wait, a replayed result delivered once, results outside specification
raising exceptions, a LIMS that is down (retries, an incident with the real error and
no secret, resolved when it is back), a lost answer retried without a second sample."""

from __future__ import annotations

import threading

import pytest

from engine import batches, connector_config, jobs
from engine.models import Job
from engine.quality import exceptions as qx
from integrations.partner_lims import start_partner_lims
from tests.engine.engine_helpers import ready
from tests.support import make_runtime

from .helpers import LIMS_SECRET, add_lims, audit_text, batchline_server, recipe, service_token, work_until


@pytest.fixture
def lrt(db_url):
    rt = make_runtime(db_url, job_max_attempts=3)
    yield rt
    rt.close()


@pytest.fixture
def partner(lrt):
    token = service_token(lrt)
    with batchline_server(lrt) as url:
        lims = start_partner_lims(0, url, token, LIMS_SECRET, delay=0.1)
        add_lims(lrt, lims.url)
        recipe(lrt, "lims_spec.bpmn")
        try:
            yield lims
        finally:
            lims.close()


def messages(rt, batch_id):
    return [s for s in batches.steps(rt, batch_id) if s["kind"] == "message"]


def test_a_sample_goes_to_the_lims_and_its_result_completes_the_wait(lrt, partner):
    batches.start_batch(lrt, "lims_spec", "L-1", user="sup.x", parameters={})
    work_until(lrt, lambda: "review_result" in ready(lrt, "L-1"))
    (sample_id,) = partner.samples
    sent = partner.samples[sample_id]
    assert sent["batch"] == "L-1" and sent["tests"] == ["titre", "bioburden"]
    assert sent["specifications"] == {"titre": {"low": 4.0, "high": 6.0, "unit": "g/L"}}
    (message,) = messages(lrt, "L-1")
    payload = message["values"]["payload"]
    assert payload["sample_id"] == sample_id and payload["titre"] == 4.8 and payload["bioburden"] == 0
    assert qx.list_for_batch(lrt, "L-1") == []
    # the LIMS sends the same result again: answered, delivered nothing twice
    assert partner.send(sample_id) == 200
    assert len(messages(lrt, "L-1")) == 1


@pytest.mark.parametrize("echo", [True, False], ids=["limits-in-result", "limits-from-request"])
def test_a_result_outside_specification_raises_an_exception(lrt, partner, echo):
    partner.values["titre"] = 3.1
    partner.echo_specifications = echo
    batches.start_batch(lrt, "lims_spec", "L-2", user="sup.x", parameters={})
    # the exception is raised right after the delivery, before the LIMS gets its answer
    work_until(lrt, lambda: "review_result" in ready(lrt, "L-2") and any(d[1] == 200 for d in partner.deliveries))
    (exc,) = qx.list_for_batch(lrt, "L-2")
    assert exc["message"] == "LIMS result out of specification: titre 3.1 g/L, specification 4.0–6.0"
    assert exc["category"] == "limit.action" and exc["parameter"] == "titre"
    (sample_id,) = partner.samples
    assert partner.send(sample_id) == 200  # a replay raises nothing more
    assert len(qx.list_for_batch(lrt, "L-2")) == 1


def test_a_lims_that_is_down_gives_an_incident_with_the_real_error_then_recovers(lrt, partner, caplog):
    caplog.set_level("DEBUG")
    partner.stop()
    batches.start_batch(lrt, "lims_spec", "L-3", user="sup.x", parameters={})
    work_until(lrt, lambda: jobs.incidents(lrt))
    (incident,) = jobs.incidents(lrt)
    assert "LIMS 'lims': POST http://127.0.0.1:" in incident["message"]
    assert "/samples failed: ConnectionError" in incident["message"]
    assert LIMS_SECRET not in incident["message"] and LIMS_SECRET not in audit_text(lrt)
    (exc,) = qx.list_for_batch(lrt, "L-3")
    assert exc["category"] == "incident" and "ConnectionError" in exc["message"]
    partner.start()  # back, on the same port
    jobs.retry_incident(lrt, incident["id"], user="sup.x")
    work_until(lrt, lambda: "review_result" in ready(lrt, "L-3"))
    assert len(partner.samples) == 1 and jobs.incidents(lrt) == []
    assert LIMS_SECRET not in caplog.text


def test_a_disabled_lims_is_an_incident_naming_it_without_retries(lrt, partner):
    connector_config.disable(lrt, "lims", by="admin.x")
    batches.start_batch(lrt, "lims_spec", "L-7", user="sup.x", parameters={})
    work_until(lrt, lambda: jobs.incidents(lrt))
    (incident,) = jobs.incidents(lrt)
    assert incident["message"] == "connector 'lims' is disabled"
    assert partner.samples == {}
    with lrt.transaction() as s:
        assert s.get(Job, incident["job_id"]).attempts == 1  # not retried: trying again cannot help


def test_an_answer_lost_to_the_timeout_is_retried_without_a_second_sample(lrt, partner):
    partner.slow_answers, partner.answer_delay = 1, 3.0  # the connector's timeout is 2 s
    batches.start_batch(lrt, "lims_spec", "L-4", user="sup.x", parameters={})
    work_until(lrt, lambda: "review_result" in ready(lrt, "L-4"))
    assert len(partner.samples) == 1 and len(partner.by_key) == 1
    assert jobs.incidents(lrt) == []


def test_the_same_result_sent_twice_at_once_is_delivered_once(lrt, partner):
    partner.delay = 3600  # the test sends the result itself
    batches.start_batch(lrt, "lims_spec", "L-5", user="sup.x", parameters={})
    work_until(lrt, lambda: partner.samples and not ready(lrt, "L-5") and _waiting(lrt, "L-5"))
    (sample_id,) = partner.samples
    statuses = []
    threads = [threading.Thread(target=lambda: statuses.append(partner.send(sample_id))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {200, 409} and 200 in statuses
    assert len(messages(lrt, "L-5")) == 1


def _waiting(rt, batch_id):
    from sqlalchemy import select

    from engine.models import Batch, MessageSubscription

    with rt.transaction() as s:
        return s.scalars(
            select(MessageSubscription.id)
            .join(Batch, Batch.id == MessageSubscription.batch_id)
            .where(Batch.batch_id == batch_id)
        ).first()


def test_the_demo_wiring_configures_lims_and_answers_samples(lrt):
    from web import demo_lims

    recipe(lrt, "lims_spec.bpmn")
    with batchline_server(lrt) as url:
        first = demo_lims.start(lrt, url, delay=0.1)
        first.close()
        lims = demo_lims.start(lrt, url, delay=0.1)  # a second start re-points the same instance
        try:
            batches.start_batch(lrt, "lims_spec", "L-6", user="sup.x", parameters={})
            work_until(lrt, lambda: "review_result" in ready(lrt, "L-6"))
        finally:
            lims.close()
    assert len(lims.samples) == 1


def test_the_dry_check_reaches_the_lims_with_its_secret(lrt, partner):
    assert connector_config.check_connection(lrt, "lims") == {
        "name": "lims",
        "ok": True,
        "message": "LIMS 'lims' is reachable",
    }
    connector_config.update(lrt, "lims", by="admin.x", secret="not-the-lims-secret")
    refused = connector_config.check_connection(lrt, "lims")
    assert (
        refused["ok"] is False and "HTTP 401" in refused["message"] and "not-the-lims-secret" not in refused["message"]
    )
    partner.stop()
    down = connector_config.check_connection(lrt, "lims")
    assert down["ok"] is False and "ConnectionError" in down["message"]
