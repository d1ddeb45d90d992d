"""A demo partner LIMS: a small real HTTP server speaking the ``lims-rest`` contract
(docs/connectors.md), for ``make demo`` and the tests.

It registers samples (``POST /samples``, Bearer secret, ``Idempotency-Key``: the same
key gets the same sample back with 200) and, ``delay`` seconds later, sends the result to
Batchline's ``POST /api/lims/results`` with a service account's token and a Standard
Webhooks signature under the shared secret, retrying while no batch waits for it yet
(404) or Batchline is unreachable. Values come from ``values`` (test -> value), else a
plausible default; the specification limits received with the sample are echoed.

``start_partner_lims(port, batchline_url, token, secret)`` starts one in a thread;
``stop()`` takes it down (connections refused) and ``start()`` brings it back on the
same port, for trying how Batchline rides out a LIMS that is away.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from engine.lims import hmac_key

log = logging.getLogger("batchline.partner_lims")

DEFAULTS: dict[str, tuple[Any, str]] = {
    "titre": (4.8, "g/L"),
    "bioburden": (0, "CFU/mL"),
    "mycoplasma": ("negative", ""),
    "endotoxin": (0.05, "EU/mL"),
    "viability": (95.5, "%"),
}
MAX_BODY = 64 * 1024


class PartnerLims:
    def __init__(self, port: int, batchline_url: str, token: str, secret: str, *, delay: float = 2.0):
        self.port = port
        self.batchline_url = batchline_url.rstrip("/")
        self.token = token
        self.secret = secret
        self.delay = delay
        #: test -> value to report (else DEFAULTS)
        self.values: dict[str, Any] = {}
        self.samples: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        #: every delivery attempt: (result_id, HTTP status or error text)
        self.deliveries: list[tuple[str, Any]] = []
        #: echo the specification limits received with the sample in the result
        self.echo_specifications = True
        #: answer this many sample registrations only after ``answer_delay`` seconds (a
        #: LIMS too slow for Batchline's timeout: the sample exists, the answer is lost)
        self.slow_answers = 0
        self.answer_delay = 0.0
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- the server -------------------------------------------------------------------

    def start(self) -> PartnerLims:
        lims = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                given = self.headers.get("Authorization") or ""
                return hmac.compare_digest(given.encode(), f"Bearer {lims.secret}".encode())

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path != "/health":
                    return self._answer(404, {"message": "not found"})
                if not self._authorised():
                    return self._answer(401, {"message": "unknown client"})
                return self._answer(200, {"status": "up"})

            def do_POST(self):  # noqa: N802
                if self.path != "/samples":
                    return self._answer(404, {"message": "not found"})
                if not self._authorised():
                    return self._answer(401, {"message": "unknown client"})
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    return self._answer(413, {"message": "too large"})
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self._answer(400, {"message": "the body is not JSON"})
                status, answer = lims.register(body, self.headers.get("Idempotency-Key"))
                if lims.slow_answers > 0:
                    lims.slow_answers -= 1
                    time.sleep(lims.answer_delay)
                return self._answer(status, answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._stopped.clear()
        threading.Thread(target=self._server.serve_forever, daemon=True, name="partner-lims").start()
        return self

    def stop(self) -> None:
        """Take the LIMS down: new connections are refused (results owed are kept)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self._stopped.set()
        self.stop()

    # --- samples and results ----------------------------------------------------------

    def register(self, body: Any, key: str | None) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("batch"), str) or not body.get("tests"):
            return 400, {"message": "batch (text) and tests (a list) are required"}
        if not isinstance(body["tests"], list) or not all(isinstance(t, str) for t in body["tests"]):
            return 400, {"message": "tests is a list of test names"}
        if not key:
            return 400, {"message": "the Idempotency-Key header is required"}
        with self._lock:
            if key in self.by_key:
                return 200, {"sample_id": self.by_key[key]}
            sample_id = f"S-{next(self._numbers):06d}"
            self.by_key[key] = sample_id
            self.samples[sample_id] = {**body, "sample_id": sample_id, "key": key}
        threading.Thread(target=self._report, args=(sample_id,), daemon=True, name="partner-lims-result").start()
        return 201, {"sample_id": sample_id}

    def result_of(self, sample_id: str) -> dict[str, Any]:
        sample = self.samples[sample_id]
        specs = sample.get("specifications") or {}
        results = []
        for test in sample["tests"]:
            default, unit = DEFAULTS.get(test, (1.0, ""))
            value = self.values.get(test, default)
            entry: dict[str, Any] = {"test": test, "value": value}
            spec = specs.get(test) or {}
            unit = spec.get("unit") or unit
            if unit:
                entry["unit"] = unit
            if self.echo_specifications:
                entry.update({k: spec[k] for k in ("low", "high") if k in spec})
            results.append(entry)
        return {"result_id": f"R-{sample_id}", "sample_id": sample_id, "status": "complete", "results": results}

    def send(self, sample_id: str) -> int | str:
        """Send (or send again) a sample's result once; answers the HTTP status."""
        body = json.dumps(self.result_of(sample_id)).encode()
        msg_id, ts = f"R-{sample_id}", str(int(time.time()))
        sig = hmac.new(hmac_key(self.secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": ts,
            "webhook-signature": "v1," + base64.b64encode(sig).decode(),
        }
        try:
            resp = requests.post(f"{self.batchline_url}/api/lims/results", data=body, headers=headers, timeout=10)
            outcome: int | str = resp.status_code
        except requests.RequestException as exc:
            outcome = f"{type(exc).__name__}"
        self.deliveries.append((msg_id, outcome))
        return outcome

    def _report(self, sample_id: str, attempts: int = 120) -> None:
        if self._stopped.wait(self.delay):
            return
        for _ in range(attempts):
            outcome = self.send(sample_id)
            if outcome == 200 or (isinstance(outcome, int) and outcome not in (404, 409) and outcome < 500):
                if outcome != 200:
                    log.warning("partner LIMS: Batchline refused the result of %s: HTTP %s", sample_id, outcome)
                return
            if self._stopped.wait(1.0):
                return


def start_partner_lims(port: int, batchline_url: str, token: str, secret: str, *, delay: float = 2.0) -> PartnerLims:
    """Start the demo partner LIMS on 127.0.0.1:``port`` (0: any free port; see ``.url``).
    ``token``: an API token of a Batchline ``service`` account; ``secret``: the secret of
    the ``lims-rest`` connector instance that points at it."""
    return PartnerLims(port, batchline_url, token, secret, delay=delay).start()
