"""``batchline equipment-sim``: the OPC UA equipment simulator (a bioreactor BR-101 and a
balance BAL-01) for the demo and for trying the OPC UA connector without a plant.

Runs in the foreground until Ctrl-C (or SIGTERM). It says where it listens and, with
security, where the server certificate is and which folder holds trusted clients.
"""

from __future__ import annotations

import logging
import signal
import threading

import click

from .output import fail, json_option, say
from .root import main
from .serve import check_port


@main.command("equipment-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=4840, show_default=True, help="Port.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001, max=1_000_000),
    default=3600.0,
    show_default=True,
    help="Simulated seconds per real second (3600: one hour of process per second).",
)
@click.option(
    "--security",
    type=click.Choice(["none", "sign-encrypt", "both"]),
    default="none",
    show_default=True,
    help="none; sign-encrypt (Basic256Sha256 SignAndEncrypt only); both.",
)
@click.option(
    "--pki",
    "pki_dir",
    type=click.Path(file_okay=False),
    help="Folder for the server certificate and the trusted/ client certificates (needed with security).",
)
@click.option("--seed", type=int, help="Seed for the probe noise (repeatable runs).")
@json_option
def equipment_sim(host, port, speed, security, pki_dir, seed):
    """Run the OPC UA equipment simulator (Ctrl-C stops)."""
    from integrations.equipment_sim import NAMESPACE_URI, EquipmentSimulator, SimulatorError

    if security != "none" and not pki_dir:
        fail("pki_required", f"--security {security} needs --pki DIR (the server certificate and trusted clients)")
    check_port(host, port)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("batchline.equipment_sim").setLevel(logging.INFO)
    try:
        sim = EquipmentSimulator(host, port, speed=speed, security=security, pki_dir=pki_dir, seed=seed)
        sim.start()
    except SimulatorError as exc:
        fail("simulator_failed", str(exc))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    info = {
        "endpoint": sim.endpoint,
        "namespace": NAMESPACE_URI,
        "namespace_index": sim.namespace_index(),
        "security": security,
        "server_certificate": str(sim.server_certificate) if sim.server_certificate else None,
        "trusted_clients": str(sim.pki.trusted) if sim.pki and security != "none" else None,
    }
    text = f"equipment simulator on {sim.endpoint} (namespace {NAMESPACE_URI}, index {info['namespace_index']})"
    if info["trusted_clients"]:
        text += f"\nserver certificate {info['server_certificate']}; trusted clients in {info['trusted_clients']}"
    say(text + "\nCtrl-C stops", info)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()
