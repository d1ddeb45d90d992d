"""One OPC UA session per connector instance, shared by its service tasks, phase
watchers and monitoring, on an asyncio loop thread of its own.

Why not one connection per call: a Basic256Sha256 secure channel costs an RSA handshake
(tens of ms) while a read costs 1-2 ms, and subscriptions (a phase's state, alarm events)
only exist while a session lives. Why not asyncua's sync wrapper: its calls wait without
a deadline; here every call waits at most the instance's ``timeout_seconds`` (twice that
to connect), so a server that stops answering never hangs a worker.

When the session is lost (server restarted, network gone) the next call connects again
and re-creates the subscriptions; a call that fails on the wire raises ``Unreachable``
(retried), one the server refuses raises ``ConnectorError(retry=False)`` with the status.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from asyncua import Client, Node, ua
from asyncua.client.ua_client import UaClientState
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from engine.connectors import ConnectorError

from .settings import OpcUaSettings
from .values import cast, certificate_uri, input_types, iso, plain

log = logging.getLogger("batchline.opcua")
ALARM_EVENT_TYPE = "EquipmentAlarmEventType"
MAX_QUEUED_EVENTS = 1000
CERTIFICATE_REFUSALS = {"BadSecurityChecksFailed", "BadCertificateUntrusted", "BadCertificateInvalid"}
CERTIFICATE_HINT = " (is the client certificate in the server's trust list, and its URI the application URI?)"


class Unreachable(ConnectorError):
    """The server could not be reached or the session broke: try again later."""

    def __init__(self, message: str):
        super().__init__(message, retry=True)


class _Handler:
    """asyncua calls these in the link's loop thread."""

    def __init__(self, link: EquipmentLink):
        self.link = link

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.link._state_changed(node.nodeid.Identifier, val)

    def event_notification(self, event: Any) -> None:
        self.link._event(event)

    def status_change_notification(self, status: Any) -> None:
        log.info("OPC UA %s: subscription status %s", self.link.name, status)


class EquipmentLink:
    def __init__(self, name: str, settings: OpcUaSettings, *, timeout: float, secret: str | None = None):
        self.name = name
        self.settings = settings
        self.timeout = float(timeout)
        self._secret = secret
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._ns: int | None = None
        self._lock = threading.Lock()
        #: equipment -> latest State seen by the subscription, and a condition to wait on
        self.states: dict[str, str] = {}
        self.changed = threading.Condition()
        self._watched: set[str] = set()
        self._event_sources: set[str] = set()
        self._subscription: Any = None
        self._subscribed: set[tuple[str, str]] = set()
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_QUEUED_EVENTS)

    # --- the loop thread -----------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"opcua-{self.name}", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, make: Callable[[], Coroutine[Any, Any, Any]], *, timeout: float | None = None) -> Any:
        """Run ``make()`` on the loop, connected first; at most ``timeout`` seconds."""
        loop = self._ensure_loop()
        limit = timeout or self.timeout

        async def guarded():
            client = await asyncio.wait_for(self._connected(), self.timeout * 2)
            await asyncio.wait_for(self._subscribe(client), self.timeout)
            return await asyncio.wait_for(make(), limit)

        future = asyncio.run_coroutine_threadsafe(guarded(), loop)
        try:
            return future.result(timeout=limit + self.timeout * 2 + 1)
        except ConnectorError:
            raise
        except UaStatusCodeError as exc:
            if _on_the_wire(exc):
                self.drop()
                raise Unreachable(f"{self.settings.endpoint}: session lost ({type(exc).__name__})") from None
            hint = CERTIFICATE_HINT if _status(exc) in CERTIFICATE_REFUSALS else ""
            raise ConnectorError(f"{self.settings.endpoint} refused: {_status(exc)}{hint}", retry=False) from None
        except TimeoutError:
            future.cancel()
            self.drop()
            raise Unreachable(f"{self.settings.endpoint} did not answer within {limit:g} s") from None
        except UaError as exc:
            self.drop()
            if "No matching endpoints" in str(exc):
                raise ConnectorError(
                    f"{self.settings.endpoint} offers no endpoint with security {self.settings.security} "
                    "(settings.security)",
                    retry=False,
                ) from None
            raise Unreachable(f"{self.settings.endpoint} unreachable: {_describe(exc)}") from None
        except (OSError, ConnectionError, asyncio.CancelledError) as exc:
            self.drop()
            raise Unreachable(f"{self.settings.endpoint} unreachable: {_describe(exc)}") from None
        except Exception as exc:  # a key that does not open, a certificate that does not load...
            self.drop()
            text = _describe(exc)
            if self._secret:
                text = text.replace(self._secret, "***")
            raise ConnectorError(f"{self.settings.endpoint}: {text}", retry=False) from None

    def drop(self) -> None:
        """Forget the session (the next call connects again)."""
        client, self._client = self._client, None
        if client is not None and self._loop is not None:
            asyncio.run_coroutine_threadsafe(_quiet_disconnect(client), self._loop)

    def close(self) -> None:
        """End the session and the loop thread (tasks cancelled, nothing left pending)."""
        client, self._client = self._client, None
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop, self._thread = None, None
        if loop is None:
            return
        try:
            if client is not None:
                asyncio.run_coroutine_threadsafe(_quiet_disconnect(client), loop).result(timeout=5)
            asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if not loop.is_running():
            loop.close()

    def abandon(self) -> None:
        """Close without waiting (the connector was dropped, e.g. rebuilt after its
        configuration changed): the loop disconnects, cancels its tasks and stops."""
        loop, client = self._loop, self._client
        self._loop = self._thread = self._client = None
        if loop is None or loop.is_closed():
            return

        async def wind_down():
            if client is not None:
                await _quiet_disconnect(client)
            await _cancel_pending()
            asyncio.get_running_loop().stop()

        try:
            asyncio.run_coroutine_threadsafe(wind_down(), loop)
        except RuntimeError:  # the loop is closing already
            pass

    # --- connecting ----------------------------------------------------------------
    async def _connected(self) -> Client:
        client = self._client
        if client is not None and client.state == UaClientState.CONNECTED:
            return client
        if client is not None:
            self._client = None
            await _quiet_disconnect(client)
        s = self.settings
        client = Client(s.endpoint, timeout=self.timeout)
        if s.security == "Basic256Sha256":
            assert s.certificate and s.private_key
            client.application_uri = s.application_uri or certificate_uri(s.certificate) or client.application_uri
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=s.certificate,
                private_key=s.private_key,
                private_key_password=self._secret or None,
                server_certificate=s.server_certificate,
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
        await client.connect()
        try:
            self._ns = await client.get_namespace_index(s.namespace)
        except ValueError:
            await _quiet_disconnect(client)
            raise ConnectorError(
                f"{s.endpoint} has no namespace {s.namespace!r} (settings.namespace)", retry=False
            ) from None
        self._client = client
        self._subscription = None
        self._subscribed = set()
        log.info("OPC UA %s connected to %s (%s)", self.name, s.endpoint, s.security)
        return client

    async def _subscribe(self, client: Client) -> None:
        """Subscribe what was asked for and is not subscribed on this session yet."""
        wanted = {("state", e) for e in self._watched} | {("events", e) for e in self._event_sources}
        missing = sorted(wanted - self._subscribed)
        if not missing:
            return
        if self._subscription is None:
            self._subscription = await client.create_subscription(100, _Handler(self))
        sub = self._subscription
        for what, equipment in missing:
            if what == "state":
                await sub.subscribe_data_change(client.get_node(self.node_id(f"{equipment}.State")))
            else:
                evtype = client.get_node(ua.NodeId(ALARM_EVENT_TYPE, self._ns))
                try:
                    await evtype.read_browse_name()
                except UaStatusCodeError:
                    evtype = client.get_node(ua.ObjectIds.BaseEventType)
                await sub.subscribe_events(client.get_node(self.node_id(equipment)), evtype)
            self._subscribed.add((what, equipment))

    # --- names -------------------------------------------------------------------
    def node_id(self, name: str) -> ua.NodeId:
        """``BR-101.Temperature`` in the configured namespace (``ns=…;…`` taken as given)."""
        if name.startswith(("ns=", "i=", "s=", "g=", "b=")):
            return ua.NodeId.from_string(name)
        return ua.NodeId(name, self._ns if self._ns is not None else 0)

    def qualify(self, name: str, equipment: str | None = None) -> str:
        """A name without its equipment gets the default one: ``Temperature`` ->
        ``BR-101.Temperature``."""
        if "." in name or name.startswith(("ns=", "i=")):
            return name
        return f"{equipment or self.settings.equipment}.{name}"

    # --- subscriptions -----------------------------------------------------------
    def watch_state(self, equipment: str) -> None:
        """Follow ``<equipment>.State`` by subscription (from the next connection on)."""
        self._watched.add(equipment)  # subscribed on the next call

    def watch_events(self, equipment: str) -> None:
        self._event_sources.add(equipment)

    def ping(self) -> None:
        """Connect (and subscribe) if not connected: raises Unreachable when it cannot."""

        async def nothing():
            return None

        self.run(nothing)

    def wait_for_change(self, equipment: str, since: str | None, seconds: float) -> str | None:
        with self.changed:
            self.changed.wait_for(lambda: self.states.get(equipment) not in (None, since), timeout=seconds)
            return self.states.get(equipment)

    def _state_changed(self, identifier: Any, value: Any) -> None:
        equipment = str(identifier).rsplit(".", 1)[0]
        with self.changed:
            self.states[equipment] = str(value)
            self.changed.notify_all()

    def _event(self, event: Any) -> None:
        fields = event.get_event_props_as_fields_dict() if hasattr(event, "get_event_props_as_fields_dict") else {}
        values = {k: getattr(v, "Value", v) for k, v in fields.items()}
        message = values.get("Message")
        self.events.append(
            {
                "event_id": bytes(values.get("EventId") or b"").hex(),
                "source": str(values.get("SourceName") or ""),
                "time": iso(values.get("Time")),
                "severity": values.get("Severity"),
                "message": getattr(message, "Text", None) or str(message or ""),
                "kind": values.get("AlarmKind"),
                "active": values.get("Active"),
                "value": values.get("Value"),
                "limit": values.get("Limit"),
            }
        )

    def drain_events(self) -> list[dict[str, Any]]:
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out

    # --- operations (each runs on the loop) --------------------------------------
    def read(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """Values with their node ids and source timestamps, by name."""

        async def go():
            client = self._client
            assert client is not None
            nodes = [client.get_node(self.node_id(n)) for n in names]
            values = await client.read_attributes(nodes)
            out = {}
            for name, node, dv in zip(names, nodes, values, strict=True):
                if not dv.StatusCode.is_good():
                    raise ConnectorError(
                        f"cannot read {name} on {self.settings.endpoint}: {dv.StatusCode.name}", retry=False
                    )
                out[name] = {
                    "value": plain(dv.Value.Value),
                    "node_id": node.nodeid.to_string(),
                    "source_timestamp": iso(dv.SourceTimestamp),
                    "server_timestamp": iso(dv.ServerTimestamp),
                }
            return out

        return self.run(go)

    def write(self, name: str, value: Any) -> None:
        async def go():
            client = self._client
            assert client is not None
            node = client.get_node(self.node_id(name))
            vtype = await node.read_data_type_as_variant_type()
            await node.write_value(ua.DataValue(ua.Variant(cast(name, value, vtype), vtype)))

        self.run(go)

    def call(self, method: str, args: list[Any]) -> list[Any]:
        """Call ``<object>.<Method>`` on its object with typed arguments; the outputs."""

        async def go():
            client = self._client
            assert client is not None
            parent = client.get_node(self.node_id(method.rsplit(".", 1)[0]))
            node = client.get_node(self.node_id(method))
            types = await input_types(node)
            if len(args) != len(types):
                raise ConnectorError(f"{method} takes {len(types)} argument(s), {len(args)} given", retry=False)
            variants = [ua.Variant(cast(method, a, t), t) for a, t in zip(args, types, strict=True)]
            request = ua.CallMethodRequest(ObjectId=parent.nodeid, MethodId=node.nodeid, InputArguments=variants)
            (result,) = await client.uaclient.call([request])
            if not result.StatusCode.is_good():
                why = [d.AdditionalInfo for d in (result.InputArgumentDiagnosticInfos or []) if d and d.AdditionalInfo]
                raise ConnectorError(
                    f"{method} refused: {result.StatusCode.name}" + (f": {why[0]}" if why else ""), retry=False
                )
            return [plain(v.Value) for v in result.OutputArguments or []]

        return self.run(go)


def _status(exc: UaStatusCodeError) -> str:
    name = type(exc).__name__
    return name if name.startswith("Bad") else str(exc)


def _on_the_wire(exc: UaStatusCodeError) -> bool:
    return type(exc).__name__ in {
        "BadConnectionClosed",
        "BadSessionClosed",
        "BadSessionIdInvalid",
        "BadSecureChannelClosed",
        "BadSecureChannelIdInvalid",
        "BadCommunicationError",
        "BadServerNotConnected",
        "BadTimeout",
        "BadNotConnected",
        "BadShutdown",
    }


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _quiet_disconnect(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 2)
    except Exception:  # noqa: BLE001 - the session is gone either way
        pass
