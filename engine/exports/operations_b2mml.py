"""Process orders in and confirmations out, as B2MML V0700 (ISA-95): the ERP sends an
``OperationsSchedule`` (``OperationsType`` Production: V0700 has no ProductionSchedule)
and gets an ``OperationsPerformance`` back when the batch completes.

Both are checked against the vendored MESA schema: a received schedule before anything
is read from it, a confirmation before it is sent. Received XML is parsed the way recipe
files are (``engine.bpmn.safe_xml``: no DOCTYPE, so no entities; no network; size-capped).

The mapping (docs/erp.md has the table): each ``OperationsRequest`` is one order: ``ID``
the batch id, ``OperationsDefinitionID`` the recipe key, the ``MaterialRequirement``
with ``MaterialUse`` Produced the material and quantity to make, those with Consumed the
planned lots. Problems name the element (``OperationsRequest[2]/OperationsDefinitionID``)
so the ERP team can find them.

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from ..bpmn.safe_xml import parse_xml
from ..errors import InvalidInput, XmlRefused

NS = "http://www.mesa.org/xml/B2MML"
_Q = f"{{{NS}}}"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "b2mml-v0700"
SCHEDULE_XSD = SCHEMA_DIR / "B2MML-OperationsSchedule.xsd"
PERFORMANCE_XSD = SCHEMA_DIR / "B2MML-OperationsPerformance.xsd"
#: a schedule of a few hundred orders fits; anything larger is refused before parsing
MAX_SCHEDULE_BYTES = 1024 * 1024
MAX_ORDERS = 200
MAX_LOTS = 200
MAX_TEXT = 100

_schemas: dict[Path, etree.XMLSchema] = {}
_lock = threading.Lock()


class OrderInvalid(InvalidInput):
    """A process order document Batchline cannot take (422): ``where`` names the element."""

    code = "process_order_invalid"


@dataclass
class PlannedLot:
    lot: str
    material: str | None = None
    quantity: float | None = None
    unit: str | None = None


@dataclass
class OrderRequest:
    """One process order as received, with the path of its element for messages."""

    where: str
    order_id: str
    recipe: str
    material: str
    quantity: float
    unit: str
    lots: list[PlannedLot] = field(default_factory=list)
    #: element paths of the recipe and material, for "unknown recipe/material" messages
    recipe_where: str = ""
    material_where: str = ""
    lot_where: list[str] = field(default_factory=list)

    def content(self) -> dict[str, Any]:
        """What the order says, independent of XML or JSON and of whitespace: hashed to
        tell a resend from a changed order."""
        return {
            "order": self.order_id,
            "recipe": self.recipe,
            "material": self.material,
            "quantity": self.quantity,
            "unit": self.unit,
            "lots": [vars(lot) for lot in self.lots],
        }


def schema(path: Path) -> etree.XMLSchema:
    """A compiled V0700 schema (once per process; compiled file by file, see NOTES)."""
    with _lock:
        if path not in _schemas:
            _schemas[path] = etree.XMLSchema(etree.parse(str(path)))
        return _schemas[path]


def problems(root: etree._Element, path: Path) -> list[str]:
    checker = schema(path)
    if checker.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in checker.error_log]


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _text(node: etree._Element | None) -> str | None:
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def _identifier(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise OrderInvalid(f"{where}: missing", details={"where": where})
        return None
    if not isinstance(value, str):
        raise OrderInvalid(f"{where}: must be text, not {type(value).__name__}", details={"where": where})
    value = value.strip()
    if not value or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise OrderInvalid(
            f"{where}: must be 1 to {MAX_TEXT} characters without control characters", details={"where": where}
        )
    return value


def _required(value: Any, where: str) -> str:
    return _identifier(value, where) or ""


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OrderInvalid(f"{where}: must be a number", details={"where": where})
    try:
        number = float(value)
    except ValueError:
        raise OrderInvalid(f"{where}: {str(value)[:40]!r} is not a number", details={"where": where}) from None
    if not math.isfinite(number) or (positive and number <= 0) or number > 1e12:
        raise OrderInvalid(f"{where}: must be a positive finite number", details={"where": where})
    return number


# --- in: OperationsSchedule -------------------------------------------------------------


def read_schedule(data: bytes) -> list[OrderRequest]:
    """The process orders of an ``OperationsSchedule`` document; OrderInvalid (or
    XmlRefused, for DOCTYPE/entities/size/not well-formed) naming what is wrong."""
    try:
        root = parse_xml("process-order.xml", data, max_bytes=MAX_SCHEDULE_BYTES)
    except XmlRefused as exc:
        problem = exc.problems[0] if getattr(exc, "problems", None) else None
        message = (problem.message if problem else str(exc)).replace("recipe files", "process orders")
        raise OrderInvalid(message, code=problem.code if problem else "xml_refused") from None
    if root.tag != _Q + "OperationsSchedule":
        raise OrderInvalid(
            f"the document is {_local(root.tag) or 'not B2MML'}, not a B2MML V0700 OperationsSchedule",
            details={"where": _local(root.tag)},
        )
    found = problems(root, SCHEDULE_XSD)
    if found:
        raise OrderInvalid(
            "the document does not validate against B2MML-OperationsSchedule.xsd: " + found[0],
            code="b2mml_invalid",
            details={"problems": found[:20]},
        )
    kind = _text(root.find(_Q + "OperationsType"))
    if kind not in (None, "Production"):
        raise OrderInvalid(f"OperationsSchedule/OperationsType: {kind!r}; only Production orders start batches")
    requests = root.findall(_Q + "OperationsRequest")
    if not requests:
        raise OrderInvalid("OperationsSchedule: holds no OperationsRequest", details={"where": "OperationsSchedule"})
    if len(requests) > MAX_ORDERS:
        raise OrderInvalid(f"OperationsSchedule: more than {MAX_ORDERS} OperationsRequest elements")
    return [_request(node, f"OperationsRequest[{i}]") for i, node in enumerate(requests, 1)]


def _request(node: etree._Element, where: str) -> OrderRequest:
    kind = _text(node.find(_Q + "OperationsType"))
    if kind not in (None, "Production"):
        raise OrderInvalid(f"{where}/OperationsType: {kind!r}; only Production orders start batches")
    order_id = _required(_text(node.find(_Q + "ID")), f"{where}/ID")
    recipe = _required(_text(node.find(_Q + "OperationsDefinitionID")), f"{where}/OperationsDefinitionID")
    produced: list[tuple[str, etree._Element]] = []
    lots: list[PlannedLot] = []
    lot_where: list[str] = []
    for si, segment in enumerate(node.findall(_Q + "SegmentRequirement"), 1):
        for mi, req in enumerate(segment.findall(_Q + "MaterialRequirement"), 1):
            at = f"{where}/SegmentRequirement[{si}]/MaterialRequirement[{mi}]"
            use = _text(req.find(_Q + "MaterialUse"))
            if use == "Produced":
                produced.append((at, req))
            elif use == "Consumed":
                lots.extend(_consumed(req, at))
                lot_where.extend([f"{at}/MaterialDefinitionID"] * len(req.findall(_Q + "MaterialLotID")))
    if len(produced) != 1:
        raise OrderInvalid(
            f"{where}/SegmentRequirement/MaterialRequirement: needs exactly one with MaterialUse Produced, "
            f"found {len(produced)}",
            details={"where": where},
        )
    at, req = produced[0]
    material = _required(_text(req.find(_Q + "MaterialDefinitionID")), f"{at}/MaterialDefinitionID")
    quantity = req.find(_Q + "Quantity")
    amount = _number(
        _text(quantity.find(_Q + "QuantityString")) if quantity is not None else None, f"{at}/Quantity/QuantityString"
    )
    unit = _required(
        _text(quantity.find(_Q + "UnitOfMeasure")) if quantity is not None else None, f"{at}/Quantity/UnitOfMeasure"
    )
    if len(lots) > MAX_LOTS:
        raise OrderInvalid(f"{where}: more than {MAX_LOTS} planned lots")
    return OrderRequest(
        where,
        order_id,
        recipe,
        material,
        amount,
        unit,
        lots,
        recipe_where=f"{where}/OperationsDefinitionID",
        material_where=f"{at}/MaterialDefinitionID",
        lot_where=lot_where,
    )


def _consumed(req: etree._Element, at: str) -> list[PlannedLot]:
    ids = [_text(n) for n in req.findall(_Q + "MaterialLotID")]
    material = _identifier(_text(req.find(_Q + "MaterialDefinitionID")), f"{at}/MaterialDefinitionID", required=False)
    quantity = req.find(_Q + "Quantity")
    amount = unit = None
    if quantity is not None and _text(quantity.find(_Q + "QuantityString")) is not None:
        amount = _number(_text(quantity.find(_Q + "QuantityString")), f"{at}/Quantity/QuantityString")
        unit = _identifier(_text(quantity.find(_Q + "UnitOfMeasure")), f"{at}/Quantity/UnitOfMeasure", required=False)
    return [
        PlannedLot(
            _identifier(lot, f"{at}/MaterialLotID[{i}]") or "", material, amount if len(ids) == 1 else None, unit
        )
        for i, lot in enumerate(ids, 1)
    ]


# --- in: the same as JSON ---------------------------------------------------------------


def read_json(body: Any) -> list[OrderRequest]:
    """``{"orders": [{"id", "recipe", "material", "quantity", "unit", "lots": [{"lot",
    "material"?, "quantity"?, "unit"?}]}]}``: the JSON equivalent of a schedule."""
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        raise OrderInvalid('the body must be an object with "orders": a list', details={"where": "orders"})
    unknown = sorted(set(body) - {"orders"})
    if unknown:
        raise OrderInvalid(f"unknown field(s): {', '.join(unknown)[:200]}", details={"where": unknown[0]})
    orders = body["orders"]
    if not orders or len(orders) > MAX_ORDERS:
        raise OrderInvalid(f"orders: 1 to {MAX_ORDERS} orders", details={"where": "orders"})
    return [_json_order(order, f"orders[{i}]") for i, order in enumerate(orders, 1)]


_ORDER_FIELDS = {"id", "recipe", "material", "quantity", "unit", "lots"}
_LOT_FIELDS = {"lot", "material", "quantity", "unit"}


def _json_order(order: Any, where: str) -> OrderRequest:
    if not isinstance(order, dict):
        raise OrderInvalid(f"{where}: must be an object", details={"where": where})
    unknown = sorted(set(order) - _ORDER_FIELDS)
    if unknown:
        raise OrderInvalid(f"{where}: unknown field(s) {', '.join(unknown)[:200]}", details={"where": where})
    lots_in = order.get("lots", [])
    if not isinstance(lots_in, list) or len(lots_in) > MAX_LOTS:
        raise OrderInvalid(f"{where}.lots: must be a list of at most {MAX_LOTS} lots", details={"where": where})
    lots = []
    for i, lot in enumerate(lots_in, 1):
        at = f"{where}.lots[{i}]"
        if not isinstance(lot, dict) or set(lot) - _LOT_FIELDS:
            raise OrderInvalid(f"{at}: must be an object with lot, material, quantity, unit", details={"where": at})
        lots.append(
            PlannedLot(
                _required(lot.get("lot"), f"{at}.lot"),
                _identifier(lot.get("material"), f"{at}.material", required=False),
                _number(lot["quantity"], f"{at}.quantity") if lot.get("quantity") is not None else None,
                _identifier(lot.get("unit"), f"{at}.unit", required=False),
            )
        )
    return OrderRequest(
        where,
        _required(order.get("id"), f"{where}.id"),
        _required(order.get("recipe"), f"{where}.recipe"),
        _required(order.get("material"), f"{where}.material"),
        _number(order.get("quantity"), f"{where}.quantity"),
        _required(order.get("unit"), f"{where}.unit"),
        lots,
        recipe_where=f"{where}.recipe",
        material_where=f"{where}.material",
        lot_where=[f"{where}.lots[{i}].material" for i in range(1, len(lots) + 1)],
    )
