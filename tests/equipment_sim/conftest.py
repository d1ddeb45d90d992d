"""One simulator per test session (asyncua's Server.init() takes seconds here), on a free
port, and helpers to drive it with asyncua's own command-line tools as an independent
client (``uaread``, ``uawrite``, ``uacall``, ``uals`` from the venv's bin folder)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from integrations.equipment_sim import EquipmentSimulator

BIN = Path(sys.executable).parent
TOOL_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ua_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    """Run one of asyncua's CLI clients; stdout holds the answer, exit 1 an error."""
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)


def run(coro):
    """Run a client coroutine to its end on a loop of its own, in a thread of its own: the
    browser tests' Playwright keeps an event loop running in the main thread for the whole
    session, and ``asyncio.run`` refuses to start beside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(coro, 20)).result()


@pytest.fixture(scope="session")
def sim():
    simulator = EquipmentSimulator("127.0.0.1", free_port(), speed=3600, seed=1)
    simulator.start()
    yield simulator
    simulator.close()


@pytest.fixture
def idle_sim(sim):
    """The shared simulator, back to Idle with no fault and default setpoints."""
    sim.reset()
    return sim
