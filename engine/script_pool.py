"""Recipe scripts run in a small pool of worker processes with CPU and memory limits.

Why processes: a script is Python running in a thread of the server, and nothing inside
a process stops `while True: pass` (measured on main: the request hung for good while it
held SQLite's write lock, so every other write failed) or a 3 GB allocation (accepted).
A worker sets `RLIMIT_AS` (its own footprint + `script_memory_mb`) once and, before each
script, `RLIMIT_CPU` (CPU used so far + `script_cpu_seconds`): the kernel ends a worker
over its CPU time with SIGXCPU and refuses its memory with MemoryError. The server also
waits at most `script_wall_seconds`; a worker that overran is killed and a fresh one is
forked (forkserver: about 20 ms) for the next script. Task data goes in and comes back
as JSON (`engine.script_values`), checked in the worker before it leaves.

Refusals: `ScriptLimitExceeded` (code `script_limit`, an `EngineFault`): the step is not
stored and the batch is unchanged; in the job executor it becomes an incident.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing
import os
import queue
import resource
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .errors import BatchlineError, EngineFault, ScriptRefused
from .script_values import ScriptResultRefused, check_result, decode, encode


class ScriptLimitExceeded(EngineFault):
    """A script used more CPU time, memory or wall time than recipe scripts may."""

    code = "script_limit"


@dataclass(frozen=True)
class ScriptLimits:
    """Limits of one script or expression (engine/config.py: `script_*` settings)."""

    cpu_seconds: int = 5
    memory_mb: int = 256
    wall_seconds: float = 10.0
    workers: int = 2
    result_bytes: int = 2_000_000

    @classmethod
    def from_settings(cls, settings: Any) -> ScriptLimits:
        return cls(
            cpu_seconds=settings.script_cpu_seconds,
            memory_mb=settings.script_memory_mb,
            wall_seconds=settings.script_wall_seconds,
            workers=settings.script_workers,
            result_bytes=settings.script_result_bytes,
        )


# --- inside the worker process ------------------------------------------------------


def _vm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _error_reply(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, BatchlineError):
        return {"refused": {"class": type(exc).__name__, "message": exc.message, "details": exc.details}}
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<string>":
            line = frame.lineno or 0
    args = [a if _plain(a) else repr(a) for a in exc.args[:3]]
    return {"error": {"type": type(exc).__name__, "args": args, "text": str(exc)[:2000], "line": line}}


def _plain(value: Any) -> bool:
    if type(value) is float:
        return value == value and abs(value) != float("inf")
    return type(value) in (str, bool) or (type(value) is int and abs(value) < 2**63)


def _serve(conn: Connection, cpu_seconds: int, memory_mb: int, result_bytes: int) -> None:
    """The worker's loop: one request at a time, limits renewed before each."""
    from .restricted import run_restricted

    sys.set_int_max_str_digits(4300)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = _vm_bytes() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)[1]
    while True:
        try:
            request = decode(conn.recv_bytes())
        except EOFError:
            return
        soft = math.ceil(_cpu_used() + cpu_seconds)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard_cpu))
        try:
            context = request["context"]
            value = run_restricted(request["mode"], request["source"], context, request["external"], {})
            if request["mode"] == "eval":
                check_result({"result": value}, max_bytes=result_bytes, label="the expression's ")
                reply: dict[str, Any] = {"value": value}
            else:
                check_result(context, max_bytes=result_bytes)
                reply = {"context": context}
            conn.send_bytes(encode(reply))
        except MemoryError:
            conn.send_bytes(encode({"limit": "memory"}))
            return  # a worker that ran out of memory is not reused
        except Exception as exc:  # noqa: BLE001 - every script failure goes back to the server
            try:
                conn.send_bytes(encode(_error_reply(exc)))
            except MemoryError:
                return


def _worker_main(conn: Connection, cpu_seconds: int, memory_mb: int, result_bytes: int) -> None:
    try:
        _serve(conn, cpu_seconds, memory_mb, result_bytes)
    finally:
        conn.close()


# --- in the server ------------------------------------------------------------------

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["engine.script_pool", "engine.restricted"])


class _Worker:
    def __init__(self, limits: ScriptLimits):
        self.conn, child = _context.Pipe()
        self.process = _context.Process(
            target=_worker_main,
            args=(child, limits.cpu_seconds, limits.memory_mb, limits.result_bytes),
            daemon=True,
            name="batchline-script",
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class ScriptPool:
    """At most `limits.workers` workers; a caller waits for a free one (each script is
    bounded, so the wait is too)."""

    def __init__(self, limits: ScriptLimits):
        self.limits = limits
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._count = 0
        self._all: set[_Worker] = set()

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._idle.empty() and self._count < self.limits.workers:
                self._count += 1
                try:
                    worker = _Worker(self.limits)
                except BaseException:
                    self._count -= 1
                    raise
                self._all.add(worker)
                return worker
        return self._idle.get()

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._count -= 1
            self._all.discard(worker)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        data = encode(request)
        worker = self._checkout()
        try:
            try:
                worker.conn.send_bytes(data)
            except OSError:  # an idle worker that died (e.g. the OOM killer): use a fresh one
                self._retire(worker)
                worker = self._checkout()
                worker.conn.send_bytes(data)
            raw = worker.conn.recv_bytes() if worker.conn.poll(self.limits.wall_seconds) else None
        except (EOFError, OSError):
            raw = b""  # the worker ended: the kernel's CPU limit (SIGXCPU) or a kill
        except BaseException:
            self._retire(worker)  # an interrupted exchange leaves the pipe out of step
            raise
        if raw is None:
            self._retire(worker)
            raise self._over("wall", f"ran longer than {self.limits.wall_seconds:g} s")
        if raw == b"":
            self._retire(worker)
            raise self._over("cpu", f"used more than {self.limits.cpu_seconds} s of CPU time")
        reply = decode(raw)
        if "limit" in reply:
            self._retire(worker)
            raise self._over("memory", f"needed more than {self.limits.memory_mb} MB of memory")
        self._idle.put(worker)
        return reply

    def _over(self, limit: str, what: str) -> ScriptLimitExceeded:
        return ScriptLimitExceeded(
            f"script stopped: it {what}; recipe scripts are limited to {self.limits.cpu_seconds} s of CPU "
            f"and {self.limits.memory_mb} MB",
            details={
                "limit": limit,
                "cpu_seconds": self.limits.cpu_seconds,
                "memory_mb": self.limits.memory_mb,
                "wall_seconds": self.limits.wall_seconds,
            },
        )

    def close(self) -> None:
        with self._lock:
            workers, self._all = list(self._all), set()
            self._count = 0
        for worker in workers:
            worker.kill()


_pools: dict[ScriptLimits, ScriptPool] = {}
_pools_lock = threading.Lock()
_spent = threading.local()


def pool_for(limits: ScriptLimits) -> ScriptPool:
    with _pools_lock:
        pool = _pools.get(limits)
        if pool is None:
            pool = _pools[limits] = ScriptPool(limits)
        return pool


@atexit.register
def close_pools() -> None:
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


#: a script call at least this long counts as the script's own time, not the engine's
LONG_CALL_SECONDS = 0.05


def long_script_seconds() -> float:
    """Wall time this thread spent in script calls of at least LONG_CALL_SECONDS each:
    the engine-step time budget leaves it out (scripts have their own limits)."""
    return float(getattr(_spent, "seconds", 0.0))


def run_script(limits: ScriptLimits, mode: str, source: str, context: dict, external: dict) -> dict[str, Any]:
    """Run one script in a worker: the reply is ``{"value"}`` (eval) or ``{"context"}``
    (exec), or ``{"refused"}``/``{"error"}`` describing what the script raised."""
    started = time.monotonic()
    try:
        return pool_for(limits).run({"mode": mode, "source": source, "context": context, "external": external})
    finally:
        took = time.monotonic() - started
        if took >= LONG_CALL_SECONDS:
            _spent.seconds = long_script_seconds() + took


__all__ = [
    "ScriptLimitExceeded",
    "ScriptLimits",
    "ScriptPool",
    "ScriptRefused",
    "ScriptResultRefused",
    "long_script_seconds",
    "pool_for",
    "run_script",
]
