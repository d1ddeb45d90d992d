"""The confirmation of a process order: a B2MML V0700 ``OperationsPerformance`` with
what the batch produced and which lots it consumed, validated against
``B2MML-OperationsPerformance.xsd`` before anyone sends it.

Built from stored facts only (the order, the batch's times, its lot movements) with the
batch's completion time as the publication date, so a retried send carries the same
bytes: the ERP sees one confirmation, however often the job executor tries.

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA
International.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from ..errors import BatchlineError
from .operations_b2mml import NS, PERFORMANCE_XSD, problems


class ConfirmationInvalid(BatchlineError):
    """The confirmation built from a batch does not validate: it is never sent."""

    code = "b2mml_confirmation_invalid"
    status = 500


@dataclass
class Movement:
    lot: str
    material: str
    quantity: float | None
    unit: str | None


@dataclass
class Confirmation:
    order_id: str
    batch_id: str
    recipe: str
    recipe_version: int
    started: datetime
    completed: datetime
    material: str
    quantity: float
    unit: str
    #: why the quantity is the planned one (no produced lot was recorded), else None
    note: str | None = None
    produced: list[Movement] = field(default_factory=list)
    consumed: list[Movement] = field(default_factory=list)


def _time(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        node.text = text
    return node


def _quantity(parent: etree._Element, quantity: float | None, unit: str | None) -> None:
    if quantity is None:
        return
    node = _el(parent, "Quantity")
    _el(node, "QuantityString", _number(quantity))
    _el(node, "DataType", "double")
    if unit:
        _el(node, "UnitOfMeasure", unit)


def _actual(segment: etree._Element, use: str, material: str, lots: list[str], quantity, unit, note=None) -> None:
    node = _el(segment, "MaterialActual")
    _el(node, "MaterialDefinitionID", material)
    for lot in lots:
        _el(node, "MaterialLotID", lot)
    if note:
        _el(node, "Description", note)
    _el(node, "MaterialUse", use)
    _quantity(node, quantity, unit)


def build(c: Confirmation) -> bytes:
    """The ``OperationsPerformance`` document (UTF-8 bytes); ConfirmationInvalid when
    the schema refuses it."""
    root = etree.Element(f"{{{NS}}}OperationsPerformance", nsmap={None: NS})
    _el(root, "ID", f"OPERF-{c.order_id}")
    _el(root, "Description", f"Batchline batch {c.batch_id}: recipe {c.recipe} version {c.recipe_version}")
    _el(root, "OperationsType", "Production")
    _el(root, "StartTime", _time(c.started))
    _el(root, "EndTime", _time(c.completed))
    _el(root, "PerformanceState", "Completed")
    _el(root, "PublishedDate", _time(c.completed))
    response = _el(root, "OperationsResponse")
    _el(response, "ID", c.order_id)
    _el(response, "OperationsType", "Production")
    _el(response, "OperationsRequestID", c.order_id)
    _el(response, "StartTime", _time(c.started))
    _el(response, "EndTime", _time(c.completed))
    _el(response, "OperationsDefinitionID", c.recipe)
    _el(response, "ResponseState", "Completed")
    segment = _el(response, "SegmentResponse")
    _el(segment, "ID", c.batch_id)
    _el(segment, "OperationsType", "Production")
    _el(segment, "ActualStartTime", _time(c.started))
    _el(segment, "ActualEndTime", _time(c.completed))
    _el(segment, "OperationsDefinitionID", c.recipe)
    _el(segment, "SegmentState", "Completed")
    _actual(segment, "Produced", c.material, [m.lot for m in c.produced], c.quantity, c.unit, c.note)
    for m in c.consumed:
        _actual(segment, "Consumed", m.material, [m.lot], m.quantity, m.unit)
    found = problems(root, PERFORMANCE_XSD)
    if found:
        raise ConfirmationInvalid(
            f"the confirmation of order {c.order_id} does not validate against B2MML-OperationsPerformance.xsd: "
            + found[0],
            details={"problems": found[:20]},
        )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
