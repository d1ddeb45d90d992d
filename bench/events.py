"""Event benchmark: how long from a step's commit until a webhook receiver and an MQTT
subscriber have it. Prints p50 and p95 of both over STEPS steps (goal: p95 ≤ 2 s).

What runs, all real and in this one machine:

* Batchline on SQLite: the web app served by Werkzeug in a thread with the job worker in
  another thread of the same process (what ``batchline serve --with-worker`` does), so
  the worker delivers webhooks and MQTT messages as in an install.
* A webhook receiver: ``http.server`` in a thread, subscribed by a webhook subscriber
  (its own secret; the signature is checked with ``standardwebhooks``).
* An MQTT subscriber: a paho client on Mosquitto (127.0.0.1:1883) subscribed to the
  MQTT subscriber's topic prefix.
* An operator completes STEPS steps of the loop recipe through the HTTP API, one after
  the other, as fast as the API answers.

Latency = the receive time minus the CloudEvent's ``time``, which the engine sets in
the step's own transaction just before its commit (same machine, same clock): the
"step commit -> received" time, slightly on the long side. The worker runs with its
default settings (``worker_poll_seconds`` 0.5: an idle worker looks for jobs twice a
second).

Usage: python bench/events.py [--steps 500] [--broker mqtt://127.0.0.1:1883]
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
import requests  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from standardwebhooks import Webhook  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from engine import batches, jobs, recipes, users  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.qms import subscribers  # noqa: E402
from engine.qms.subscriber_checks import broker_address  # noqa: E402
from engine.runtime import Runtime  # noqa: E402

RECIPES = ROOT / "tests" / "recipes"
STEP_EVENT = "org.batchline.batch.step.completed"
#: answers a client repeats (same Idempotency-Key) as the API says: the database was busy
RETRIED = {"database_busy", "concurrent_change", "busy"}


def received_now() -> float:
    return time.time()


def event_time(event: dict) -> float:
    return datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()


class WebhookReceiver:
    """A real HTTP receiver: verifies each signature, keeps (event, received at)."""

    def __init__(self, secret: str):
        self.got: queue.Queue = queue.Queue()
        verifier = Webhook(secret)
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver does

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                at = received_now()
                event = verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                got.put((event, at))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class MqttListener:
    def __init__(self, broker: str, prefix: str):
        host, port, _tls = broker_address(broker)
        self.got: queue.Queue = queue.Queue()
        ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(prefix + "/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
        self.client.on_message = lambda c, u, msg: self.got.put((json.loads(msg.payload), received_now()))
        self.client.connect(host, port)
        self.client.loop_start()
        if not ready.wait(5):
            raise SystemExit(f"cannot subscribe on the MQTT broker {broker}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def collect(q: queue.Queue, n: int, timeout: float) -> dict[str, float]:
    """event id -> latency (s) of the first ``n`` distinct step events."""
    out: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        try:
            event, at = q.get(timeout=0.5)
        except queue.Empty:
            continue
        if event["type"] == STEP_EVENT:
            out.setdefault(event["id"], at - event_time(event))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    args = ap.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    workdir = tempfile.mkdtemp(prefix="batchline-bench-events-")
    settings = load_settings(database_url=f"sqlite:///{workdir}/bench.db", webhook_urls=())
    rt = Runtime(settings, load_connectors=False)
    rt.create_schema()
    from web.app import create_app

    app = create_app(runtime=rt)  # registers the MQTT publisher (and analytics' scoring job)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop = threading.Event()
    worker = threading.Thread(target=jobs.work, args=(rt,), kwargs={"stop": stop}, daemon=True)
    worker.start()

    users.create_user(rt, "op.bench", "Bench Operator", ["operator"], by="bench", password="bench password 123")
    token = users.create_token(rt, "op.bench", "bench", by="bench")
    recipes.import_recipe(rt, {"loop.bpmn": (RECIPES / "loop.bpmn").read_bytes()}, user="bench", approve=True)
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    hook, _ = subscribers.add(
        rt, name="bench-hook", url="http://127.0.0.1:9/", event_types=["batch.step.*"], by="bench"
    )
    receiver = WebhookReceiver(hook["secret"])
    subscribers.change(rt, "bench-hook", url=receiver.url, by="bench")
    listener = MqttListener(args.broker, prefix)
    subscribers.add(rt, name="bench-mqtt", url=args.broker, kind="mqtt", topic_prefix=prefix,
                    event_types=["batch.step.*"], by="bench")  # fmt: skip

    batches.start_batch(rt, "sampling_loop", "EV-1", user="bench", parameters={"done": False})
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    print(f"completing {args.steps} steps through {base} ...", file=sys.stderr)
    t0 = time.perf_counter()
    task = http.get(f"{base}/api/batches/EV-1/tasks").json()[0]["id"]
    retried: list[str] = []
    for i in range(1, args.steps + 1):
        for _attempt in range(20):
            r = http.post(
                f"{base}/api/batches/EV-1/tasks/{task}/complete",
                json={"data": {"reading": i, "done": i == args.steps}},
                headers={"Idempotency-Key": f"step-{i}"},
            )
            if r.status_code not in (409, 503) or r.json().get("code") not in RETRIED:
                break
            retried.append(r.json()["code"])
            time.sleep(0.05)
        if r.status_code != 200:
            raise SystemExit(f"step {i}: HTTP {r.status_code} {r.text[:300]}")
        nxt = r.json()["next_tasks"]
        task = nxt[0]["id"] if nxt else None
    steps_s = time.perf_counter() - t0
    webhook = collect(receiver.got, args.steps, 120)
    mqtt = collect(listener.got, args.steps, 120)
    stop.set()
    worker.join(5)
    server.shutdown()
    rt.close()

    print()
    print(f"Batchline events benchmark — {args.steps} steps on SQLite ({steps_s:.1f} s, "
          f"{args.steps / steps_s:.0f} steps/s through the API), one worker thread")  # fmt: skip
    print()
    print("path | received | p50 (ms) | p95 (ms) | max (ms) | goal p95")
    print("--- | --- | --- | --- | --- | ---")
    for name, got in (("step commit → webhook received", webhook), ("step commit → MQTT message received", mqtt)):
        lat = list(got.values())
        if not lat:
            print(f"{name} | 0/{args.steps} | - | - | - | ≤ 2000")
            continue
        print(
            f"{name} | {len(lat)}/{args.steps} | {statistics.median(lat) * 1000:.0f} | "
            f"{percentile(lat, 95) * 1000:.0f} | {max(lat) * 1000:.0f} | ≤ 2000"
        )


if __name__ == "__main__":
    main()
