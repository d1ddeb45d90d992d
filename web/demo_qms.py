"""The demo's QMS: ``batchline qms-demo`` in a process of its own, started by
``batchline demo`` beside the web server.

It is registered as the subscriber ``demo-qms`` (kind ``qms``, event type
``qms.deviation.requested``) at a free port on this computer. The subscriber's secret is
made new at each start (it is stored encrypted and can never be read back) and handed to
the child in its environment, never on its command line (``ps`` shows arguments). The
child numbers each requested deviation ``DEV-YYYY-NNNN`` and answers Batchline at
``/api/qms/events``, signed with that secret; its numbers survive a restart in
``qms-demo.sqlite`` beside the audit key.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from engine.errors import NotFound
from engine.qms import subscribers
from engine.runtime import Runtime

NAME = "demo-qms"
EVENTS = ["qms.deviation.requested"]
#: who registers the demo QMS (the demo plant's administrator)
ADMIN = "admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register(rt: Runtime, port: int) -> str:
    """The demo QMS as a subscriber at ``port``; answers its new secret."""
    url = f"http://127.0.0.1:{port}/events"
    try:
        out = subscribers.change(rt, NAME, by=ADMIN, url=url, enabled=True, event_types=EVENTS, new_secret=True)
    except NotFound:
        out, _replayed = subscribers.add(rt, name=NAME, url=url, event_types=EVENTS, kind="qms", secret=None, by=ADMIN)
    return out["secret"]


def state_file(rt: Runtime) -> Path:
    from engine.audit.keys import data_dir

    return Path(data_dir(rt.settings)) / "qms-demo.sqlite"


def start(rt: Runtime, batchline_url: str) -> tuple[subprocess.Popen, int]:
    """Register the demo QMS and start it; the caller stops the process."""
    port = free_port()
    secret = register(rt, port)
    env = {**os.environ, "BATCHLINE_QMS_SECRET": secret}
    command = [
        sys.executable,
        "-m",
        "web.cli",
        "qms-demo",
        "--port",
        str(port),
        "--batchline",
        batchline_url.rstrip("/"),
        "--state",
        str(state_file(rt)),
    ]
    return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent), port


def _die_with_parent() -> None:
    """Linux: the demo QMS gets SIGTERM when the demo ends, however it ends (a SIGTERM to
    the demo skips its ``finally``). Elsewhere the demo's ``finally`` stops it."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
