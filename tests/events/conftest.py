"""What the event tests share: the Mosquitto broker on 127.0.0.1:1883 (started by
``.ci/run`` where it does not run), a paho listener on a topic, an MQTT subscriber.

Off CI an unreachable broker skips the MQTT tests with the reason; with ``CI=true`` it
fails them, as an unreachable PostgreSQL does (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support import IN_CI

BROKER_HOST = os.environ.get("BATCHLINE_TEST_MQTT_HOST", "127.0.0.1")
BROKER_PORT = int(os.environ.get("BATCHLINE_TEST_MQTT_PORT", "1883"))
BROKER_URL = f"mqtt://{BROKER_HOST}:{BROKER_PORT}"


@pytest.fixture(scope="session")
def broker() -> str:
    try:
        socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2).close()
    except OSError as exc:
        message = f"no MQTT broker at {BROKER_HOST}:{BROKER_PORT} ({exc}); start one: mosquitto -d -p {BROKER_PORT}"
        if IN_CI:
            pytest.fail(message + " (CI=true: MQTT tests must run)")
        pytest.skip(message)
    return BROKER_URL


class Listener:
    """A paho client subscribed to ``<prefix>/#``: what a plant's data platform does."""

    def __init__(self, prefix: str, host: str = BROKER_HOST, port: int = BROKER_PORT):
        self.messages: queue.Queue = queue.Queue()
        self.ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-listener-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(prefix + "/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.set()
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, json.loads(msg.payload), msg.qos))
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(5), "the test listener did not subscribe"

    def take(self, timeout: float = 5.0) -> tuple[str, dict, int]:
        return self.messages.get(timeout=timeout)

    def all(self) -> list[tuple[str, dict, int]]:
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test alone (the broker is shared)."""
    return f"batchline-test/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def listener(broker, prefix):
    listening = Listener(prefix)
    yield listening
    listening.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
