"""Real Batchline processes for the server tests and ``bench/load.py``: ``batchline
serve --workers N`` (gunicorn) and ``batchline worker`` as subprocesses on 127.0.0.1,
with the environment a real install would give them, each logging to a file.

Why subprocesses: graceful shutdown, signal handling, gunicorn's worker processes and
the readiness of a node are only real in real processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(db_url: str, workdir: Path, **settings: object) -> dict[str, str]:
    """``BATCHLINE_*`` for ``db_url`` (and ``settings``), nothing from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHLINE_", "PROMETHEUS_"))}
    env.update(
        {
            "BATCHLINE_DATABASE_URL": db_url,
            "BATCHLINE_SECRET_KEY": "server-tests-" + "k" * 40,
            "BATCHLINE_KEY_DIR": str(workdir),
            "BATCHLINE_ARGON2_TIME_COST": "1",
            "BATCHLINE_ARGON2_MEMORY_KIB": "1024",
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        }
    )
    # one audit key file for every process of the run and for the caller (a PostgreSQL
    # install's default, var/ under the working directory, differs between them)
    settings.setdefault("audit_key_file", workdir / "audit.key")
    env.update({f"BATCHLINE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class Proc:
    name: str
    args: list[str]
    env: dict[str, str]
    workdir: Path
    port: int | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Proc:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "web.cli", *self.args], cwd=self.workdir, env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def wait_answering(self, path: str = "/api/health", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}): {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {path} not 200 in {timeout} s: {self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def terminate(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` (cleanup: never leaves a process behind)."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def server(
    name: str, env: dict[str, str], workdir: Path, *, workers: int = 1, threads: int = 4, graceful: int = 30,
    port: int | None = None,
) -> Proc:  # fmt: skip
    port = port or free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    args += ["--graceful-timeout", str(graceful)]
    return Proc(name, args, env, workdir, port)


def worker(name: str, env: dict[str, str], workdir: Path) -> Proc:
    return Proc(name, ["worker"], env, workdir)
