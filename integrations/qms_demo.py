"""A demo QMS in its own process: it receives Batchline's ``qms.deviation.requested``
CloudEvents, opens one deviation per exception with a ``DEV-YYYY-NNNN`` number and tells
Batchline so (``POST /api/qms/events`` ``deviation.opened``, signed with the same secret).

Why these parts: numbers and callbacks live in a small SQLite state file, so a restart
neither renumbers a deviation nor forgets a callback it still owes. Each incoming event is
verified (Standard Webhooks), deduplicated by event id *and* by exception (Batchline
delivers at least once), answered 202 at once; a background thread sends the callbacks
and retries each until Batchline accepts it (a stable ``webhook-id`` per callback, so a
callback that arrives twice counts once). ``--auto-close-after S`` closes each deviation
S seconds after it was opened, with a ``CAPA-YYYY-NNNN`` reference; ``POST
/deviations/DEV-…/close`` closes one by hand. ``GET /deviations`` lists them (JSON).

Run: ``batchline qms-demo --port 8765 --batchline http://127.0.0.1:5000 --secret whsec_…``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

log = logging.getLogger("batchline.qms_demo")

REQUESTED = "org.batchline.qms.deviation.requested"
TOLERANCE_SECONDS = 300
MAX_BODY = 1_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS deviation (
    number TEXT PRIMARY KEY,
    event_id TEXT UNIQUE NOT NULL,
    batch_id TEXT NOT NULL,
    exception_id INTEGER NOT NULL,
    opened_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    capa TEXT,
    open_sent INTEGER NOT NULL DEFAULT 0,
    close_sent INTEGER NOT NULL DEFAULT 0,
    UNIQUE (batch_id, exception_id)
);
CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, number TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counter (kind TEXT, year INTEGER, last INTEGER, PRIMARY KEY (kind, year));
"""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verified(secret: str, headers, body: bytes) -> bool:
    msg_id, ts, sigs = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and ts and sigs and ts.isdigit()) or abs(time.time() - int(ts)) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, msg_id, int(ts), body)
    return any(hmac.compare_digest(expected, s) for s in sigs.split(" "))


class State:
    """The demo QMS's records: one SQLite file (``:memory:`` forgets on exit)."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def _next(self, kind: str) -> str:
        year = datetime.now(UTC).year
        row = self.db.execute("SELECT last FROM counter WHERE kind=? AND year=?", (kind, year)).fetchone()
        last = (row[0] if row else 0) + 1
        self.db.execute("INSERT OR REPLACE INTO counter VALUES (?, ?, ?)", (kind, year, last))
        return f"{kind}-{year}-{last:04d}"

    def open(self, event_id: str, batch_id: str, exception_id: int) -> tuple[str, bool]:
        """The deviation for this request: a new number, or the one given before."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT number FROM seen WHERE event_id=?", (event_id,)).fetchone()
                row = (
                    row
                    or self.db.execute(
                        "SELECT number FROM deviation WHERE batch_id=? AND exception_id=?", (batch_id, exception_id)
                    ).fetchone()
                )
                if row:
                    self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (event_id, row[0]))
                    self.db.execute("COMMIT")
                    return row[0], False
                number = self._next("DEV")
                now = datetime.now(UTC).isoformat()
                self.db.execute(
                    "INSERT INTO deviation (number, event_id, batch_id, exception_id, opened_at) VALUES (?,?,?,?,?)",
                    (number, event_id, batch_id, exception_id, now),
                )
                self.db.execute("INSERT INTO seen VALUES (?, ?)", (event_id, number))
                self.db.execute("COMMIT")
                return number, True
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def close(self, number: str) -> str | None:
        with self.lock:
            row = self.db.execute("SELECT capa, status FROM deviation WHERE number=?", (number,)).fetchone()
            if row is None:
                return None
            if row[1] == "closed":
                return row[0]
            capa = self._next("CAPA")
            self.db.execute("UPDATE deviation SET status='closed', capa=? WHERE number=?", (capa, number))
            return capa

    def rows(self, where: str = "1=1") -> list[dict]:
        with self.lock:
            cur = self.db.execute(f"SELECT * FROM deviation WHERE {where} ORDER BY number")  # noqa: S608 - fixed text
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def mark(self, number: str, column: str) -> None:
        with self.lock:
            self.db.execute(f"UPDATE deviation SET {column}=1 WHERE number=?", (number,))  # noqa: S608 - fixed names


class DemoQms:
    def __init__(
        self,
        *,
        port: int,
        batchline: str,
        secret: str,
        state: str,
        auto_close_after: float | None = None,
        host: str = "127.0.0.1",
    ):
        self.batchline = batchline.rstrip("/")
        self.secret = secret
        self.state = State(state)
        self.auto_close_after = auto_close_after
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.server = ThreadingHTTPServer((host, port), self._handler())

    def _handler(self):
        qms = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.rstrip("/") == "/deviations":
                    return self._answer(200, {"deviations": qms.state.rows()})
                return self._answer(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    return self._answer(413, {"error": "too large"})
                body = self.rfile.read(length)
                if self.path.startswith("/deviations/") and self.path.endswith("/close"):
                    capa = qms.state.close(self.path.split("/")[2])
                    qms.wake.set()
                    return self._answer(200 if capa else 404, {"capa": capa})
                if not verified(qms.secret, self.headers, body):
                    return self._answer(401, {"error": "bad signature"})
                try:
                    event = json.loads(body)
                except ValueError:
                    return self._answer(400, {"error": "not JSON"})
                if event.get("type") != REQUESTED:
                    return self._answer(202, {"ignored": event.get("type")})
                data = event.get("data") or {}
                exception = data.get("exception") or {}
                number, new = qms.state.open(event["id"], data.get("batch_id"), int(exception.get("id")))
                log.info(
                    "deviation %s %s for %s exception %s",
                    number,
                    "opened" if new else "known",
                    data.get("batch_id"),
                    exception.get("id"),
                )
                qms.wake.set()
                return self._answer(202, {"deviation": number, "new": new})

            def log_message(self, *args):
                pass

        return Handler

    # --- callbacks -----------------------------------------------------------------

    def _send(self, msg_id: str, type_: str, data: dict) -> bool:
        body = json.dumps(
            {"type": type_, "timestamp": datetime.now(UTC).isoformat(), "data": data}, separators=(",", ":")
        ).encode()
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.secret, msg_id, ts, body),
        }
        try:
            resp = requests.post(self.batchline + "/api/qms/events", data=body, headers=headers, timeout=10)
        except requests.RequestException as exc:
            log.warning("callback %s: Batchline unreachable (%s); retrying", msg_id, type(exc).__name__)
            return False
        if resp.status_code < 300:
            return True
        log.warning("callback %s: HTTP %s %s; retrying", msg_id, resp.status_code, resp.text[:200])
        return False

    def _callbacks(self) -> None:
        delay = 0.2
        while not self.stop.is_set():
            pending = False
            for row in self.state.rows("open_sent = 0"):
                ref = {"batch_id": row["batch_id"], "id": row["exception_id"]}
                if self._send(
                    f"open-{row['number']}", "deviation.opened", {"exception": ref, "deviation": row["number"]}
                ):
                    self.state.mark(row["number"], "open_sent")
                else:
                    pending = True
            if self.auto_close_after is not None:
                for row in self.state.rows("open_sent = 1 AND status = 'open'"):
                    opened = datetime.fromisoformat(row["opened_at"])
                    if (datetime.now(UTC) - opened).total_seconds() >= self.auto_close_after:
                        self.state.close(row["number"])
                    else:
                        pending = True
            for row in self.state.rows("open_sent = 1 AND status = 'closed' AND close_sent = 0"):
                ref = {"batch_id": row["batch_id"], "id": row["exception_id"]}
                data = {"exception": ref, "deviation": row["number"], "capa": row["capa"]}
                if self._send(f"close-{row['number']}", "deviation.closed", data):
                    self.state.mark(row["number"], "close_sent")
                else:
                    pending = True
            delay = min(delay * 2, 5.0) if pending else 0.2
            self.wake.wait(delay if pending else 1.0)
            self.wake.clear()

    def serve(self) -> None:
        worker = threading.Thread(target=self._callbacks, name="qms-callbacks", daemon=True)
        worker.start()
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self.stop.set()
            self.wake.set()
            self.server.server_close()


def run(*, port: int, batchline: str, secret: str, state: str, auto_close_after: float | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s qms-demo %(message)s")
    qms = DemoQms(port=port, batchline=batchline, secret=secret, state=state, auto_close_after=auto_close_after)
    log.info("demo QMS on http://127.0.0.1:%s, calling back %s", qms.server.server_address[1], qms.batchline)
    qms.serve()
