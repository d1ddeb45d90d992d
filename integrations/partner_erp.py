"""A small partner ERP for the demo and the tests: a real HTTP server (``http.server`` in
a thread) on the other side of the ``erp-b2mml`` connector, and the sender of process
orders into Batchline.

Receives (what a real ERP's inbound interface does):

- ``POST /confirmations``: a B2MML V0700 ``OperationsPerformance`` (``application/xml``),
  parsed safely (no DOCTYPE), validated against the schema (422 otherwise), kept once per
  ``Idempotency-Key`` (a repeat answers 200 with the first document number);
- ``POST /goods-movements``: the JSON goods movements of ``erp.confirm_consumption``;
- ``GET /confirmations``, ``GET /goods-movements``: what it received, as JSON.

With ``token`` set, requests need ``Authorization: Bearer <token>`` (401 otherwise).
``fail_next(n, status)`` makes the next n requests fail, for outage tests.

Sends: ``send_process_order(batchline_url, token, order_id, recipe, material, quantity,
lots)`` posts an ``OperationsSchedule`` to ``/api/erp/process-orders``.

Run alone: ``python -m integrations.partner_erp --port 8071``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from lxml import etree

from engine.bpmn.safe_xml import parse_xml
from engine.errors import XmlRefused
from engine.exports.operations_b2mml import NS, PERFORMANCE_XSD, SCHEDULE_XSD, problems

MAX_BODY = 1024 * 1024
_Q = f"{{{NS}}}"


def _text(node: etree._Element | None) -> str | None:
    return node.text.strip() if node is not None and node.text else None


def summary(root: etree._Element) -> dict[str, Any]:
    """The order, produced quantity and consumed lots of an OperationsPerformance."""
    out: dict[str, Any] = {"order": _text(root.find(f"{_Q}OperationsResponse/{_Q}OperationsRequestID"))}
    produced: dict[str, Any] = {}
    consumed: list[dict[str, Any]] = []
    for actual in root.iter(_Q + "MaterialActual"):
        item = {
            "material": _text(actual.find(_Q + "MaterialDefinitionID")),
            "lots": [_text(n) for n in actual.findall(_Q + "MaterialLotID")],
            "quantity": _text(actual.find(f"{_Q}Quantity/{_Q}QuantityString")),
            "unit": _text(actual.find(f"{_Q}Quantity/{_Q}UnitOfMeasure")),
            "note": _text(actual.find(_Q + "Description")),
        }
        if _text(actual.find(_Q + "MaterialUse")) == "Produced":
            produced = item
        else:
            consumed.append(item)
    return {**out, "produced": produced, "consumed": consumed}


class PartnerErp:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None):
        self.token = token
        self.confirmations: list[dict[str, Any]] = []
        self.goods_movements: list[dict[str, Any]] = []
        self.requests = 0
        self._failures: list[int] = []
        self._numbers = itertools.count(4_700_000_001)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="partner-erp")

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> PartnerErp:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def _keep(self, kind: list[dict[str, Any]], key: str, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            for earlier in kind:
                if earlier["idempotency_key"] == key:
                    return 200, {"document": earlier["document"], "status": "posted", "replayed": True}
            record = {
                "idempotency_key": key,
                "document": str(next(self._numbers)),
                "received_at": datetime.now(UTC).isoformat(),
                **record,
            }
            kind.append(record)
            return 201, {"document": record["document"], "status": "posted"}

    def _handler(self):
        erp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 - quiet in tests and demo
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                with erp._lock:
                    found = {"/confirmations": erp.confirmations, "/goods-movements": erp.goods_movements}
                    items = [dict(r) for r in found.get(self.path, [])] if self.path in found else None
                if items is None:
                    return self._answer(404, {"message": "not found"})
                return self._answer(200, items)

            def do_POST(self):  # noqa: N802
                with erp._lock:
                    erp.requests += 1
                    failure = erp._failures.pop(0) if erp._failures else None
                if failure:
                    return self._answer(failure, {"message": "the partner ERP is down for maintenance"})
                if erp.token and self.headers.get("Authorization") != f"Bearer {erp.token}":
                    return self._answer(401, {"message": "unknown or missing token"})
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    return self._answer(413, {"message": "too large"})
                body = self.rfile.read(length)
                key = self.headers.get("Idempotency-Key")
                if not key:
                    return self._answer(400, {"message": "Idempotency-Key is required"})
                if self.path == "/confirmations":
                    return self._answer(*self._confirmation(key, body))
                if self.path == "/goods-movements":
                    try:
                        movement = json.loads(body or b"{}")
                    except ValueError:
                        return self._answer(400, {"message": "not JSON"})
                    return self._answer(*erp._keep(erp.goods_movements, key, {"movement": movement}))
                return self._answer(404, {"message": "not found"})

            def _confirmation(self, key: str, body: bytes) -> tuple[int, dict[str, Any]]:
                if self.headers.get_content_type() != "application/xml":
                    return 415, {"message": "send application/xml"}
                try:
                    root = parse_xml("confirmation.xml", body, max_bytes=MAX_BODY)
                except XmlRefused as exc:
                    return 422, {"message": str(exc)}
                if root.tag != _Q + "OperationsPerformance":
                    return 422, {"message": "not an OperationsPerformance"}
                found = problems(root, PERFORMANCE_XSD)
                if found:
                    return 422, {"message": "schema: " + found[0]}
                return erp._keep(erp.confirmations, key, {**summary(root), "xml": body.decode("utf-8")})

        return Handler


# --- process orders out -----------------------------------------------------------------


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, _Q + name)
    if text is not None:
        node.text = text
    return node


def _requirement(segment: etree._Element, use: str, material: str | None, lots: list[str], quantity, unit) -> None:
    req = _el(segment, "MaterialRequirement")
    if material:
        _el(req, "MaterialDefinitionID", material)
    for lot in lots:
        _el(req, "MaterialLotID", lot)
    _el(req, "MaterialUse", use)
    if quantity is not None:
        q = _el(req, "Quantity")
        _el(q, "QuantityString", str(quantity))
        if unit:
            _el(q, "UnitOfMeasure", unit)


def process_order_xml(order_id: str, recipe: str, material: str, quantity: float, lots=(), unit: str = "L") -> bytes:
    """A B2MML V0700 OperationsSchedule with one Production OperationsRequest, valid.
    ``lots``: lot ids, or dicts with ``lot`` and optional ``material``/``quantity``/``unit``."""
    root = etree.Element(_Q + "OperationsSchedule", nsmap={None: NS})
    _el(root, "ID", f"SCHED-{order_id}")
    _el(root, "OperationsType", "Production")
    _el(root, "PublishedDate", datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    request = _el(root, "OperationsRequest")
    _el(request, "ID", order_id)
    _el(request, "OperationsType", "Production")
    _el(request, "OperationsDefinitionID", recipe)
    segment = _el(request, "SegmentRequirement")
    _el(segment, "ID", f"{order_id}-10")
    _requirement(segment, "Produced", material, [], quantity, unit)
    for lot in lots:
        lot = {"lot": lot} if isinstance(lot, str) else dict(lot)
        _requirement(segment, "Consumed", lot.get("material"), [lot["lot"]], lot.get("quantity"), lot.get("unit"))
    found = problems(root, SCHEDULE_XSD)
    if found:
        raise ValueError("the process order does not validate: " + found[0])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def send_process_order(
    batchline_url: str,
    token: str,
    order_id: str,
    recipe: str,
    material: str,
    quantity: float,
    lots=(),
    *,
    unit: str = "L",
    timeout: float = 30.0,
) -> tuple[int, dict[str, Any]]:
    """Post one process order to Batchline: (HTTP status, JSON answer). 201 the batch
    started, 200 it had been received before."""
    resp = requests.post(
        batchline_url.rstrip("/") + "/api/erp/process-orders",
        data=process_order_xml(order_id, recipe, material, quantity, lots, unit),
        headers={"Content-Type": "application/xml", "Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    try:
        body = resp.json()
    except ValueError:
        body = {"message": resp.text[:500]}
    return resp.status_code, body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Batchline demo partner ERP (B2MML confirmations)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8071)
    parser.add_argument("--token", default=None, help="require this bearer token")
    args = parser.parse_args(argv)
    erp = PartnerErp(args.host, args.port, token=args.token)
    print(f"partner ERP listening on {erp.url}", flush=True)
    erp.server.serve_forever()


if __name__ == "__main__":
    main()
