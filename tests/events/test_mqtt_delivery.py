"""MQTT subscribers against the real Mosquitto: a completed step arrives as the CloudEvent
on ``<prefix>/<type with slashes>`` at QoS 1; filters hold; one connection serves many
events; a broker that is down is retried and then raises an incident."""

from __future__ import annotations

import os
import pwd
import queue
import shutil
import subprocess
import time

import pytest
from sqlalchemy import select

from engine import batches, jobs
from engine.models import Incident, Job, OutboxEvent
from engine.qms import subscribers
from integrations.mqtt import MqttPublisher, install, topic_for
from tests.engine.engine_helpers import complete, load, run_jobs_until
from tests.support import make_runtime

from .conftest import Listener, free_port


def add_mqtt(rt, name, url, prefix, types, **kw):
    out, _ = subscribers.add(
        rt, name=name, url=url, event_types=types, kind="mqtt", topic_prefix=prefix, by="admin.x", **kw
    )
    return out


def run_batch(rt, batch_id):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", batch_id, user="sup.x", parameters={"done": False})
    complete(rt, batch_id, "take_sample", {"reading": 1, "done": False})
    complete(rt, batch_id, "take_sample", {"reading": 2, "done": True})


def test_topic_names():
    assert (
        topic_for("plant1/batchline", "org.batchline.batch.step.completed") == "plant1/batchline/batch/step/completed"
    )
    assert topic_for("p", "qms.deviation.requested") == "p/qms/deviation/requested"


def test_completed_step_arrives_as_cloudevent_on_its_topic(rt, broker, prefix, listener):
    publisher = install(rt, connect_timeout=3, ack_timeout=5)
    add_mqtt(rt, "plant-bus", broker, prefix, ["batch.step.*"])
    add_mqtt(rt, "qms-bus", broker, prefix + "/qms-only", ["qms.*"])
    run_batch(rt, "MQ-1")
    got: list = []

    def two_steps():
        try:
            got.append(listener.take(0.05))
        except queue.Empty:
            pass
        return len(got) >= 2

    run_jobs_until(rt, two_steps)
    jobs.run_due(rt)
    time.sleep(0.3)
    got += listener.all()
    # only the step events, only once each, only to the subscriber whose filter matched
    assert [t for t, _, _ in got] == [f"{prefix}/batch/step/completed"] * 2
    topic, event, qos = got[0]
    assert qos == 1
    assert event["specversion"] == "1.0" and event["type"] == "org.batchline.batch.step.completed"
    assert event["source"] == "urn:batchline" and event["datacontenttype"] == "application/json"
    assert "MQ-1" in event["subject"]
    with rt.transaction() as s:
        delivered = s.get(OutboxEvent, int(event["sequence"]))
        assert delivered.event_id == event["id"] and delivered.delivered_at is not None
    # one kept-open connection served both events
    assert len(publisher._connections) == 1


def test_connection_is_kept_and_reconnects_after_the_broker_returns(rt, prefix):
    """A broker of the test's own (a Mosquitto process) stops and comes back: the
    delivery fails while it is down (retried), then the same publisher delivers again."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed here (the shared broker cannot be stopped by a test)")
    port = free_port()
    proc = subprocess.Popen(["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        install(rt, connect_timeout=0.5, ack_timeout=2)
        add_mqtt(rt, "own-broker", f"mqtt://127.0.0.1:{port}", prefix, ["batch.started"])
        listener = Listener(prefix, port=port)
        load(rt, "loop.bpmn")
        batches.start_batch(rt, "sampling_loop", "MQ-R1", user="sup.x", parameters={"done": False})
        run_jobs_until(rt, lambda: not listener.messages.empty())
        listener.close()
        proc.terminate()
        proc.wait(5)
        batches.start_batch(rt, "sampling_loop", "MQ-R2", user="sup.x", parameters={"done": False})
        jobs.run_due(rt)  # the broker is gone: this delivery fails and waits for its retry
        with rt.transaction() as s:
            job = s.scalars(select(Job).where(Job.kind == "deliver").order_by(Job.id.desc())).first()
            assert job.state == "pending" and job.attempts >= 1 and "not connected" in job.last_error
        proc = subprocess.Popen(["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(port)
        listener = Listener(prefix, port=port)
        _make_due(rt)
        run_jobs_until(rt, lambda: not listener.messages.empty(), timeout=20)
        _topic, event, _ = listener.take()
        assert event["data"]["batch_id"] == "MQ-R2" and event["subject"] == "MQ-R2"
        listener.close()
    finally:
        proc.terminate()
        proc.wait(5)


def test_broker_down_is_retried_then_an_incident(db_url, prefix):
    rt = make_runtime(db_url, job_max_attempts=3, job_backoff_seconds=0.01)
    try:
        install(rt, connect_timeout=0.2, ack_timeout=1)
        down = f"mqtt://127.0.0.1:{free_port()}"
        add_mqtt(rt, "down-bus", down, prefix, ["batch.started"], username="plant", password="broker-pw-123")
        load(rt, "loop.bpmn")
        batches.start_batch(rt, "sampling_loop", "MQ-D", user="sup.x", parameters={"done": False})

        def incident():
            _make_due(rt)
            with rt.transaction() as s:
                return s.scalars(select(Incident).where(Incident.kind == "deliver")).first() is not None

        run_jobs_until(rt, incident, timeout=20)
        with rt.transaction() as s:
            inc = s.scalars(select(Incident).where(Incident.kind == "deliver")).one()
            job = s.get(Job, inc.job_id)
            assert job.attempts == 3 and job.state == "failed"
            assert down in inc.message and "not connected" in inc.message
            assert "broker-pw-123" not in inc.message and "broker-pw-123" not in (job.last_error or "")
    finally:
        rt.close()


def test_no_publisher_installed_says_so(rt, broker, prefix):
    add_mqtt(rt, "lonely", broker, prefix, ["batch.started"])
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "MQ-N", user="sup.x", parameters={"done": False})
    jobs.run_due(rt)
    with rt.transaction() as s:
        job = s.scalars(select(Job).where(Job.kind == "deliver")).one()
        assert "no publisher for kind 'mqtt'" in job.last_error


def test_disabled_subscriber_gets_nothing_more(rt, broker, prefix, listener):
    install(rt, connect_timeout=3, ack_timeout=5)
    add_mqtt(rt, "off-bus", broker, prefix, ["batch.started"])
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "MQ-X", user="sup.x", parameters={"done": False})
    subscribers.disable(rt, "off-bus", by="admin.x")
    jobs.run_due(rt)
    time.sleep(0.3)
    assert listener.all() == []


def test_publisher_repr_and_target_repr_hide_the_password(rt, broker, prefix):
    add_mqtt(rt, "quiet", broker, prefix, ["*"], username="u", password="hunter2-secret")
    with rt.transaction() as s:
        target = subscribers.load_target(s, rt.settings, subscribers.get(rt, "quiet")["id"])
    assert target.password == "hunter2-secret" and "hunter2" not in repr(target)
    assert "hunter2" not in repr(MqttPublisher())


def _make_due(rt):
    from engine.models import utcnow

    with rt.transaction() as s:
        for job in s.scalars(select(Job).where(Job.state == "pending", Job.kind == "deliver")):
            job.due_at = utcnow()


def _wait_port(port: int) -> None:
    import socket

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"mosquitto on port {port} did not start")


def test_a_round_delivers_to_the_working_receiver_when_another_is_down(db_url, broker, prefix, listener):
    """One round of deliveries: the webhook (its own secret, checked) and the live MQTT
    subscriber get every event; the dead broker's events fail, each counting an attempt."""
    from standardwebhooks import Webhook

    from tests.engine.http_receiver import Receiver

    rt = make_runtime(db_url, job_max_attempts=5, job_backoff_seconds=60)
    try:
        install(rt, connect_timeout=0.2, ack_timeout=2)
        with Receiver() as sink:
            hook, _ = subscribers.add(rt, name="hook", url=sink.url + "/in", event_types=["batch.*"], by="admin.x")
            add_mqtt(rt, "live-bus", broker, prefix, ["batch.*"])
            add_mqtt(rt, "dead-bus", f"mqtt://127.0.0.1:{free_port()}", prefix + "/dead", ["batch.*"])
            run_batch(rt, "MQ-M")
            jobs.run_due(rt)
            time.sleep(0.3)
            verifier = Webhook(hook["secret"])
            hooked = [
                verifier.verify(r["body"], {k.lower(): v for k, v in r["headers"].items()}) for r in sink.requests
            ]
            heard = listener.all()
        dead_id = subscribers.get(rt, "dead-bus")["id"]
        with rt.transaction() as s:
            by_subscriber: dict[int, list[Job]] = {}
            for job in s.scalars(select(Job).where(Job.kind == "deliver")):
                by_subscriber.setdefault(job.payload["subscriber"], []).append(job)
            events = len(by_subscriber[dead_id])
            assert events >= 3  # batch.started and the steps
            assert all(j.state == "pending" and j.attempts == 1 and "not connected" in j.last_error
                       for j in by_subscriber[dead_id])  # fmt: skip
            assert all(j.state == "done" for sid, js in by_subscriber.items() if sid != dead_id for j in js)
        assert len(hooked) == events and len([t for t, _, _ in heard if "/dead/" not in t]) == events
        assert {e["id"] for e in hooked} == {e["id"] for _, e, _ in heard}
    finally:
        rt.close()


def test_broker_account_is_used_and_a_wrong_password_is_named_not_shown(rt, prefix, tmp_path):
    """A Mosquitto of the test's own that wants an account: the right password delivers,
    a wrong one fails with the broker's refusal in the job's error, never the password."""
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto and mosquitto_passwd are needed for a broker with accounts")
    port = free_port()
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "plant", "s3cret-broker-pw"], check=True)
    passwords.chmod(0o600)
    config = tmp_path / "mosquitto.conf"
    me = pwd.getpwuid(os.getuid()).pw_name  # as root, mosquitto would drop to a user that cannot read the file
    config.write_text(f"user {me}\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        install(rt, connect_timeout=1, ack_timeout=2)
        url = f"mqtt://127.0.0.1:{port}"
        add_mqtt(rt, "good-account", url, prefix, ["batch.started"], username="plant", password="s3cret-broker-pw")
        add_mqtt(rt, "bad-account", url, prefix + "/bad", ["batch.started"], username="plant", password="wrong-pw-42")
        listener = _AccountListener(prefix, port)
        load(rt, "loop.bpmn")
        batches.start_batch(rt, "sampling_loop", "MQ-A", user="sup.x", parameters={"done": False})
        jobs.run_due(rt)
        _topic, event, _ = listener.take(5)
        assert event["subject"] == "MQ-A"
        listener.close()
        bad_id = subscribers.get(rt, "bad-account")["id"]
        with rt.transaction() as s:
            job = next(
                j for j in s.scalars(select(Job).where(Job.kind == "deliver")) if j.payload["subscriber"] == bad_id
            )
            assert job.state == "pending" and "refused the connection: Not authorized" in job.last_error
            assert "wrong-pw-42" not in job.last_error and "s3cret" not in job.last_error
    finally:
        proc.terminate()
        proc.wait(5)


class _AccountListener(Listener):
    def __init__(self, prefix: str, port: int):
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages = queue.Queue()
        import threading

        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"acct-{prefix[-6:]}")
        self.client.username_pw_set("plant", "s3cret-broker-pw")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(prefix + "/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.client.on_message = lambda c, u, msg: self.messages.put(
            (msg.topic, __import__("json").loads(msg.payload), msg.qos)
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(5)
