"""A real Batchline server for tests that speak HTTP from outside (schemathesis): a
fresh database set up like a small plant, then ``batchline serve`` in a subprocess on
127.0.0.1 and a free port, stopped by the caller's context manager.

The plant: the test people of ``tests.support.ACCOUNTS``, an admin whose user id nobody
guesses (a fuzzer that deactivates or locks random user ids cannot lock itself out), the
sampling-loop recipe imported and approved, and one running batch ``B-001``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from engine import batches, users
from tests.support import ACCOUNTS, PASSWORD, TEST_SETTINGS, approved_recipe, make_runtime, read_recipe

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    url: str
    tokens: dict[str, str]  # role of the caller -> API token
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(db_url: str) -> dict[str, str]:
    """Schema, people, a recipe and a running batch; answers an admin's and an operator's token."""
    rt = make_runtime(db_url)
    try:
        rt.create_schema()
        for name, roles in ACCOUNTS.items():
            users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
        admin = f"admin-{secrets.token_hex(8)}"
        users.create_user(rt, admin, "Fuzzing Admin", ["admin"], by="test", password=PASSWORD)
        approved_recipe(rt, read_recipe("loop.bpmn"), user="alice", approver="quentin")
        batches.start_batch(rt, "sampling_loop", "B-001", user="alice", parameters={})
        return {
            "admin": users.create_token(rt, admin, "fuzz", by="test"),
            "operator": users.create_token(rt, "op", "fuzz", by="test"),
            "everything": users.create_token(rt, "alice", "fuzz", by="test"),
        }
    finally:
        rt.close()


@contextmanager
def live_server(db_url: str, workdir: Path) -> Iterator[LiveServer]:
    tokens = prepare(db_url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHLINE_")}
    env.update(
        {
            "BATCHLINE_DATABASE_URL": db_url,
            "BATCHLINE_SECRET_KEY": secrets.token_hex(32),
            "BATCHLINE_MAX_REQUEST_BYTES": "200000",
            "BATCHLINE_JOB_MAX_ATTEMPTS": "1",
            # no job worker runs beside this server: /api/ready must not wait for one
            "BATCHLINE_WORKER_HEARTBEAT_MAX_AGE_SECONDS": "0",
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            **{f"BATCHLINE_{k.upper()}": str(v) for k, v in TEST_SETTINGS.items() if not isinstance(v, tuple)},
        }
    )
    log = workdir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if requests.get(url + "/api/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer in 60 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield LiveServer(url, tokens, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
