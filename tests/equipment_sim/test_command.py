"""``batchline equipment-sim`` as a shell runs it: it says where it listens, serves until
SIGTERM, and refuses wrong options with ``error [code]: message`` (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import free_port, ua_tool

ROOT = Path(__file__).resolve().parents[2]


def batchline(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "web.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
        **kwargs,
    )


def test_the_command_serves_until_terminated(tmp_path):
    port = free_port()
    proc = batchline("equipment-sim", "--port", str(port), "--seed", "4", "--json")
    try:
        lines = []
        while not lines or lines[-1] != "}":
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line.rstrip("\n"))
        info = json.loads("\n".join(lines))
        assert info["endpoint"] == f"opc.tcp://127.0.0.1:{port}/"
        assert info["namespace"] == "urn:batchline:equipment-sim"
        node = f"ns={info['namespace_index']};s=BR-101.State"
        assert ua_tool("uaread", "-u", info["endpoint"], "-n", node).stdout.strip() == "Idle"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_security_without_a_pki_folder_is_refused():
    proc = batchline("equipment-sim", "--port", str(free_port()), "--security", "sign-encrypt")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "error [pki_required]" in err


def test_a_port_in_use_is_refused(sim):
    proc = batchline("equipment-sim", "--port", str(sim.port))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "error [port_in_use]" in err


def test_nonsense_options_are_refused():
    proc = batchline("equipment-sim", "--port", "0", "--speed", "-5")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "Invalid value" in err
