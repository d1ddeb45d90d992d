"""The WSGI entry point for production servers: ``gunicorn 'web.wsgi:create()'``, or
``batchline serve --workers N``, which runs gunicorn with the settings below.

Why a factory and no module-level app: each gunicorn worker process builds its own app
and engine after the fork (database connections and the script pool's processes must
not be shared across a fork), from the same settings (``BATCHLINE_*``/config file).

gthread workers: a step spends most of its time waiting on the database, so a few
threads per process keep the cores busy; several processes sidestep the GIL for the
engine's Python work. SIGTERM to the master stops accepting connections, lets every
request in flight finish and be answered (up to ``graceful_timeout`` seconds), then exits.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

try:
    from gunicorn.workers.gthread import ThreadWorker
except ImportError:  # Windows, or no gunicorn: ``batchline serve`` without --workers uses waitress
    ThreadWorker = object  # type: ignore[assignment,misc]


class DrainingThreadWorker(ThreadWorker):  # type: ignore[misc,valid-type]
    """gunicorn's gthread worker that closes its listening sockets the moment it is told
    to stop. The stock worker only stops *accepting* and closes them after the requests
    in flight are done: meanwhile the kernel still queues new connections that nobody
    accepts, so a client (or a load balancer) hangs for the whole drain and then sees a
    reset. Closed at once, the port refuses, and a client or balancer goes to the other
    node straight away — what a rolling restart needs."""

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                listener.close()  # gunicorn's close is idempotent: its own close at exit is a no-op


def create() -> Flask:
    """The app for one worker process (gunicorn's ``web.wsgi:create()``)."""
    from .app import create_app

    return create_app()


def child_exit(server: Any, worker: Any) -> None:
    """A gunicorn worker exited: drop its live-gauge files (prometheus multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def gunicorn_options(
    bind: str, workers: int, threads: int, graceful_timeout: float, timeout: float = 60
) -> dict[str, Any]:
    return {
        "bind": [bind],
        "workers": workers,
        "worker_class": "web.wsgi.DrainingThreadWorker",
        "threads": threads,
        "graceful_timeout": max(1, round(graceful_timeout)),
        "timeout": max(round(timeout), round(graceful_timeout) + 5),
        # longer than a load balancer's or client's idle timeout (60 s on most, httpx 5 s),
        # so the other side closes an idle connection first: a request sent on a
        # connection the server is closing at that moment is the one failure it cannot answer
        "keepalive": 75,
        "preload_app": False,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "batchline",
        "child_exit": child_exit,
        # gunicorn would believe X-Forwarded-Proto from 127.0.0.1 by itself: Batchline's
        # own setting (docs/security.md, web.headers' ProxyFix) decides whom to believe
        "forwarded_allow_ips": "",
        # one control socket per user (~/.gunicorn/gunicorn.ctl) would be shared by two
        # nodes on one machine; batchline is driven by signals, not gunicornc
        "control_socket_disable": True,
    }


def run_gunicorn(options: dict[str, Any]) -> None:
    """Run gunicorn in this process with ``options`` (no command line of its own)."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # an older gunicorn lacks control_socket_disable
                    self.cfg.set(key, value)

        def load(self) -> Flask:
            return create()

    Server().run()
