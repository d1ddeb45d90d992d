"""``EquipmentSimulator``: the OPC UA server with BR-101 and BAL-01, run from synchronous
code (tests, ``make demo``, the ``batchline equipment-sim`` command).

The server lives in a background thread with its own asyncio loop. ``start()`` returns
once the port accepts connections (asyncua's ``Server.init()`` takes seconds here, so
callers wait for an explicit ready signal, not a sleep). ``stop()`` closes the port and
every client connection, but the equipment keeps running in the loop, as a PLC does
while its OPC UA server restarts; ``start()`` listens again on the same port with the
same state. ``close()`` ends the thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future
from pathlib import Path

from asyncua import Server, ua

from .address_space import APPLICATION_URI, NAMESPACE_URI
from .equipment import Equipment
from .security import MODES, POLICIES, NoUnsecuredChannels, Pki, TrustedChannels, TrustList, session_validator

log = logging.getLogger("batchline.equipment_sim")
TICK_SECONDS = 0.1
START_TIMEOUT = 60.0


class SimulatorError(RuntimeError):
    """The simulator could not start (port in use, bad security settings...)."""


def _check_port(host: str, port: int) -> None:
    """Fail at once (not after the seconds of Server.init()) when the port is taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise SimulatorError(f"cannot listen on {host}:{port}: {exc}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
        try:
            probe.bind(address)
        except OSError as exc:
            raise SimulatorError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class _Server(Server):
    """asyncua's Server, with what it lacks for this use: trust checked when a secure
    channel opens, no unsecured channel when only secure endpoints are offered, and
    endpoints not duplicated when the server is started again."""

    trust: TrustList | None = None

    async def _setup_server_nodes(self) -> None:
        self._policies = []
        self.iserver.endpoints = []
        await super()._setup_server_nodes()
        if self.trust is not None:
            self._policies = [TrustedChannels(p, self.trust) for p in self._policies]
            if not any(p.mode == ua.MessageSecurityMode.None_ for p in self._policies):
                self._policies.append(NoUnsecuredChannels())


class EquipmentSimulator:
    """Usage::

    with EquipmentSimulator("127.0.0.1", 4840) as sim:
        ...  # opc.tcp://127.0.0.1:4840/ serves ns "urn:batchline:equipment-sim"
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4840,
        speed: float = 3600.0,
        security: str = "none",
        pki_dir: str | Path | None = None,
        seed: int | None = None,
    ):
        if security not in MODES:
            raise SimulatorError(f"security must be one of {', '.join(MODES)}, not {security!r}")
        if security != "none" and pki_dir is None:
            raise SimulatorError("--security sign-encrypt or both needs a PKI folder (--pki DIR)")
        if not speed > 0:
            raise SimulatorError("speed must be above 0 (simulated seconds per real second)")
        self.host, self.port, self.security = host, int(port), security
        self.pki = Pki(pki_dir) if pki_dir is not None else None
        self.equipment = Equipment(speed=speed, seed=seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._ticker: asyncio.Task | None = None
        self._listening = False
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        return self._listening

    # ---- synchronous API ----------------------------------------------------------
    def start(self) -> EquipmentSimulator:
        """Listen on host:port; returns when clients can connect. Idempotent."""
        with self._lock:
            if not self._listening:
                _check_port(self.host, self.port)
            if self._thread is None:
                ready: Future = Future()
                self._thread = threading.Thread(
                    target=self._run_loop, args=(ready,), name=f"equipment-sim-{self.port}", daemon=True
                )
                self._thread.start()
                ready.result(timeout=START_TIMEOUT)
            if not self._listening:
                try:
                    self._call(self._listen())
                except OSError as exc:
                    raise SimulatorError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
            return self

    def stop(self) -> None:
        """Close the port and drop every client; the equipment keeps running."""
        with self._lock:
            if self._thread is not None and self._listening:
                self._call(self._unlisten())

    def close(self) -> None:
        """Stop listening and end the simulator's thread."""
        self.stop()
        with self._lock:
            if self._loop is not None and self._thread is not None:
                self._call(self._shutdown())
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
            self._thread, self._loop = None, None

    def __enter__(self) -> EquipmentSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def reset(self) -> None:
        """BR-101 back to Idle with default setpoints and no fault, BAL-01 empty."""
        self._call(self.equipment.reset_all())

    def namespace_index(self) -> int:
        assert self.equipment.space is not None
        return self.equipment.space.idx

    def node_id(self, key: str) -> str:
        """``ns=<idx>;s=<key>`` as clients write it, e.g. ``node_id("BR-101.Temperature")``."""
        return f"ns={self.namespace_index()};s={key}"

    def trust_client(self, certificate: str | Path | bytes) -> Path:
        """Add a client certificate to the trust list, effective at once (a certificate
        copied into ``trusted/`` by hand takes effect within a second)."""
        if self.pki is None:
            raise SimulatorError("this simulator has no PKI folder (security none)")
        path = self.pki.trust(certificate)
        if self._loop is not None and self._server is not None and self._server.trust is not None:
            self._call(self._server.trust.refresh())
        return path

    @property
    def server_certificate(self) -> Path | None:
        return self.pki.cert if self.pki is not None and self.security != "none" else None

    # ---- the loop thread ----------------------------------------------------------
    def _call(self, coro, timeout: float = START_TIMEOUT):
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def _run_loop(self, ready: Future) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._build())
        except BaseException as exc:  # noqa: BLE001 (reported to the caller of start())
            ready.set_exception(exc)
            self._loop.close()
            return
        ready.set_result(True)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _build(self) -> None:
        server = _Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("Batchline equipment simulator")
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy(POLICIES[self.security])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        if self.security != "none":
            assert self.pki is not None
            await self.pki.server_certificate(APPLICATION_URI, self.host)
            await server.load_certificate(str(self.pki.cert))
            await server.load_private_key(str(self.pki.key))
            trust = TrustList(self.pki)
            await trust.refresh()
            server.trust = trust
            server.set_certificate_validator(session_validator(trust))
        await self.equipment.attach(server)
        self._server = server
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())
        log.info("equipment simulator ready (namespace %s)", NAMESPACE_URI)

    async def _listen(self) -> None:
        assert self._server is not None
        await self._server.start()
        self._listening = True
        log.info("equipment simulator listening on %s (security %s)", self.endpoint, self.security)

    async def _unlisten(self) -> None:
        assert self._server is not None
        self._listening = False
        await self._server.stop()
        log.info("equipment simulator stopped listening on %s", self.endpoint)

    async def _shutdown(self) -> None:
        """Cancel the ticker and whatever asyncua left behind (sessions of clients that
        vanished keep a timeout task), so the loop closes without pending tasks."""
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _tick_forever(self) -> None:
        ticks = 0
        while True:
            try:
                await self.equipment.tick()
                ticks += 1
                if self._server is not None and self._server.trust is not None and ticks % 10 == 0:
                    await self._server.trust.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad tick must not stop the equipment
                log.exception("equipment simulator tick failed")
            await asyncio.sleep(TICK_SECONDS)
