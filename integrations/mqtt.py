"""Events to an MQTT broker: the publisher for subscribers of kind ``mqtt``.

Each event is the same CloudEvents 1.0 JSON a webhook receives (structured mode),
published at QoS 1 to ``<topic prefix>/<event type without "org.batchline.", dots as
slashes>``: ``step.completed`` under ``plant1/batchline`` goes to
``plant1/batchline/step/completed``. Not retained: a late subscriber reads the history
from ``GET /api/events`` or the bulk export, not from the broker.

Why one client per subscriber per process: a connect per message costs a TCP (and TLS)
handshake and a CONNACK round trip per event. Each subscriber gets one paho client whose
network thread (``loop_start``) reconnects by itself (backoff 0.2 to 10 s). A delivery
waits for the connection (``connect_timeout``), publishes, and returns only when the
broker's PUBACK arrived (``ack_timeout``); otherwise it raises ``ConnectorError`` and the
job executor retries it with backoff, then raises an incident. A message sent but not
acknowledged may reach the broker twice: receivers dedupe on the CloudEvent ``id``.

The engine never imports this module: ``install(rt)`` registers the publisher on a
runtime (the web app, ``batchline worker`` and ``serve --with-worker`` call it), and the
``batchline.publishers`` entry point does the same where the package is installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from engine.connectors import ConnectorError
from engine.qms.subscriber_checks import broker_address
from engine.qms.subscribers import TYPE_PREFIX, DeliveryTarget

log = logging.getLogger("batchline.mqtt")

KIND = "mqtt"


def topic_for(prefix: str, event_type: str) -> str:
    """``plant1/batchline`` + ``org.batchline.step.completed`` -> ``plant1/batchline/step/completed``."""
    name = event_type[len(TYPE_PREFIX) :] if event_type.startswith(TYPE_PREFIX) else event_type
    return prefix + "/" + name.replace(".", "/")


def _fingerprint(target: DeliveryTarget) -> str:
    """What a connection was made with: a change of URL or account makes a new one."""
    raw = json.dumps([target.url, target.username, target.password])
    return hashlib.sha256(raw.encode()).hexdigest()


class _Connection:
    """One subscriber's broker connection, kept open and reconnected by paho's thread."""

    def __init__(self, target: DeliveryTarget):
        self.url = target.url
        self.fingerprint = _fingerprint(target)
        host, port, tls = broker_address(target.url)
        self.connected = threading.Event()
        self.last_error = "no answer yet"
        self.refused: str | None = None
        client_id = f"batchline-{target.id}-{os.getpid()}-{secrets.token_hex(3)}"
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        if target.username is not None:
            self.client.username_pw_set(target.username, target.password)
        if tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=10)
        self.client.max_queued_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused = f"the broker refused the connection: {reason_code}"
            self.last_error = self.refused
            self.connected.clear()
        else:
            self.refused = None
            self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        # a refusal (a wrong password) says more than the disconnection that follows it
        self.last_error = self.refused or f"disconnected: {reason_code}"

    def _on_connect_fail(self, client, userdata) -> None:
        self.last_error = self.refused or "the broker cannot be reached"

    def publish(self, topic: str, body: bytes, connect_timeout: float, ack_timeout: float) -> None:
        if not self.connected.wait(connect_timeout):
            raise ConnectorError(
                f"MQTT broker {self.url} not connected within {connect_timeout:g} s ({self.last_error})"
            )
        info = self.client.publish(topic, body, qos=1)
        try:
            info.wait_for_publish(ack_timeout)
        except (RuntimeError, ValueError) as exc:
            raise ConnectorError(f"MQTT broker {self.url}: publish to {topic} failed: {exc}") from None
        if not info.is_published():
            raise ConnectorError(f"MQTT broker {self.url}: no acknowledgement (PUBACK) within {ack_timeout:g} s")

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


class MqttPublisher:
    """The ``mqtt`` publisher: one kept-open connection per subscriber in this process."""

    def __init__(self, settings: Any = None, *, connect_timeout: float = 5.0, ack_timeout: float = 10.0):
        self.connect_timeout = connect_timeout
        self.ack_timeout = ack_timeout
        self._connections: dict[int, _Connection] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MqttPublisher({len(self._connections)} connections)"

    def _connection(self, target: DeliveryTarget) -> _Connection:
        with self._lock:
            conn = self._connections.get(target.id)
            if conn is not None and conn.fingerprint != _fingerprint(target):
                conn.close()  # the subscriber's broker or account changed
                conn = None
            if conn is None:
                conn = self._connections[target.id] = _Connection(target)
            return conn

    def publish(self, target: DeliveryTarget, envelope: dict[str, Any]) -> None:
        if not target.topic_prefix:
            raise ConnectorError(f"subscriber {target.name} has no topic prefix", retry=False)
        topic = topic_for(target.topic_prefix, envelope["type"])
        body = json.dumps(envelope, separators=(",", ":")).encode()
        self._connection(target).publish(topic, body, self.connect_timeout, self.ack_timeout)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()


def install(rt: Any, **options: Any) -> MqttPublisher:
    """Register the MQTT publisher on ``rt`` (keeps one already registered, e.g. by the
    entry point); answers the publisher in use."""
    publisher = rt.publishers.get(KIND)
    if publisher is None:
        publisher = rt.publishers[KIND] = MqttPublisher(rt.settings, **options)
    return publisher
