"""The plant around the demo batch, for ``batchline demo``: the systems a real site has
next to Batchline, each started here and reached only through its configured connector.

- **Equipment over OPC UA:** the equipment simulator (``integrations.equipment_sim``) in
  a thread of the demo process; the demo's bioreactor (``equipment_for("bioreactor")``)
  is pointed at its BR-101 (connector instance ``BR-101``), which MAB-DEMO-001's
  production unit procedure runs the production phase on while it is monitored.
- **Partner ERP** (connector instance ``erp``, type ``erp-b2mml``): receives the
  confirmations, and once the web server listens sends the process order that starts a
  new mAb batch (``web.demo_erp``).
- **Partner LIMS** (connector instance ``lims``, type ``lims-rest``): answers the
  ``lims.sample`` tasks (``web.demo_lims``).

The demo history the equipment models train on is written from the simulator's own
process model (``integrations.opcua.demo_history``) when the plant is set up through
``setup`` here, so the models score what monitoring samples.

Speed: the simulator runs ``DEMO_SPEED`` simulated seconds per real second (one process
hour every 5 s: the 312 h production phase takes 26 minutes) and monitoring samples every
``DEMO_PERIOD`` seconds, i.e. hourly in process time, as the history.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from engine.runtime import Runtime

log = logging.getLogger("batchline.demo")

DEMO_SPEED = 720.0  # simulated seconds per real second: one process hour every 5 s
DEMO_PERIOD = 5.0  # seconds between monitoring samples: hourly in process time
EQUIPMENT_PORT = 4840
BIOREACTOR = "BR-101"  # the connector instance and the bioreactor's name on the OPC UA server


def setup(rt: Runtime) -> dict[str, Any]:
    """``web.demo.setup`` with the demo history's bioreactor samples taken from the
    equipment simulator's process model (the shape and names OPC UA monitoring sends)."""
    from analytics.history import demo_equipment_samples
    from integrations.opcua.demo_history import history_samples

    from . import demo

    with demo_equipment_samples(history_samples):
        info = demo.setup(rt)
    ensure_order_material(rt)
    return info


def ensure_order_material(rt: Runtime, *, user: str = "demo") -> bool:
    """The material the ERP's process order produces (``MAB-01-HCCF``), where the demo's
    master data does not have it yet: added once, audited. True when added."""
    from engine import audit
    from engine.models import Material

    from .demo_erp import PRODUCT

    with rt.transaction() as s:
        if s.get(Material, PRODUCT) is not None:
            return False
        new = {"name": "Harvested cell culture fluid", "unit": "L", "kind": "intermediate"}
        s.add(Material(material_id=PRODUCT, **new))
        audit.record(
            s, user=user, action="material.created", object_type="material", object_id=PRODUCT, new=new,
            reason="demo: the material the ERP's process order produces",
        )  # fmt: skip
    return True


def free_port(host: str = "127.0.0.1", wanted: int = 0) -> int:
    """``wanted`` when it is free, else any free port."""
    for port in (wanted, 0) if wanted else (0,):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError(f"no free port on {host}")


@dataclass
class Plant:
    """What runs next to the demo; ``stop()`` ends all of it."""

    simulator: Any
    bioreactor: Any
    erp: Any
    lims: Any = None
    order: dict[str, Any] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What runs where, for the person who started the demo."""
        out = [
            f"equipment simulator (OPC UA): {self.simulator.endpoint} — {BIOREACTOR} runs the production phase "
            f"of batches started with bioreactor_automation (1 process hour every "
            f"{3600 / self.simulator.equipment.speed:.3g} s)",
            f"partner ERP: {self.erp.url}  (confirmations: {self.erp.url}/confirmations)",
        ]
        if self.lims is not None:
            out.append(f"partner LIMS: {self.lims.url}  (answers lims.sample requests)")
        return out

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        for part, how in ((self.bioreactor, "close"), (self.lims, "close"), (self.erp, "stop")):
            try:
                if part is not None:
                    getattr(part, how)()
            except Exception:  # noqa: BLE001 - stopping the rest matters more
                log.exception("demo: stopping %s", part)
        try:
            self.simulator.close()
        except Exception:  # noqa: BLE001
            log.exception("demo: stopping the equipment simulator")


def start_equipment(
    rt: Runtime, *, host: str = "127.0.0.1", port: int = EQUIPMENT_PORT, speed: float = DEMO_SPEED,
    period: float = DEMO_PERIOD,
):  # fmt: skip
    """The equipment simulator on ``port`` (another free port when it is taken) and the
    demo's bioreactor connected to it and monitored. Returns (simulator, connector)."""
    from integrations.equipment_sim import EquipmentSimulator
    from integrations.opcua.demo import connect_bioreactor

    from .demo import equipment_for

    simulator = EquipmentSimulator(host, free_port(host, port), speed=speed).start()
    connector = connect_bioreactor(
        rt,
        simulator.endpoint.rstrip("/"),
        name=BIOREACTOR,
        equipment_id=equipment_for("bioreactor"),
        server_equipment=BIOREACTOR,
        speed=speed,
        period=period,
    )
    return simulator, connector


def start(
    rt: Runtime, batchline_url: str, *, equipment_host: str = "127.0.0.1", equipment_port: int = EQUIPMENT_PORT,
    erp_port: int = 0, speed: float = DEMO_SPEED, period: float = DEMO_PERIOD, lims_delay: float = 5.0,
    send_order: bool = True,
) -> Plant:  # fmt: skip
    """Start the plant for the Batchline served at ``batchline_url`` (which may not listen
    yet: the process order is sent from a thread once it does)."""
    from . import demo_erp, demo_lims

    simulator, bioreactor = start_equipment(rt, host=equipment_host, port=equipment_port, speed=speed, period=period)
    plant = Plant(simulator=simulator, bioreactor=bioreactor, erp=None)
    try:
        plant.erp = demo_erp.connect_partner_erp(rt, port=free_port("127.0.0.1", erp_port or 8071))
        plant.lims = demo_lims.start(rt, batchline_url, delay=lims_delay)
    except Exception:
        plant.stop()
        raise
    if send_order:
        thread = threading.Thread(
            target=_send_order_when_listening, args=(rt, batchline_url, plant), name="demo-erp-order", daemon=True
        )
        thread.start()
        plant._threads.append(thread)
    return plant


def wait_listening(url: str, stop: threading.Event, timeout: float = 120.0) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
                return True
        except OSError:
            stop.wait(0.2)
    return False


def _send_order_when_listening(rt: Runtime, url: str, plant: Plant) -> None:
    """The partner ERP sends the demo's process order (once: a resent order creates nothing)."""
    from . import demo_erp

    if not wait_listening(url, plant._stop):
        return
    for attempt in range(5):
        try:
            status, body = demo_erp.send_demo_order(rt, url.rstrip("/"))
        except OSError as exc:
            log.warning("demo: the process order could not be sent (%s), trying again", exc)
            if plant._stop.wait(2.0 * (attempt + 1)):
                return
            continue
        plant.order = {"status": status, **body}
        if status < 300:
            log.info("demo: the ERP's process order %s answered %s", demo_erp.DEMO_ORDER, status)
        return
