"""Fixtures for the ERP tests: an approved recipe a process order can name, the
materials it produces and consumes, and XML/JSON process orders."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.models import Batch, Material
from integrations.partner_erp import process_order_xml
from tests.web.through_api import import_recipe

HERE = Path(__file__).resolve().parent
RECIPE = "harvest_order"
PRODUCT = "MAB-01-HCCF"
MEDIUM = "MED-CD-CHO"
URL = "/api/erp/process-orders"
XML = {"Content-Type": "application/xml"}


@pytest.fixture
def erp(client, runtime):
    """The recipe ``harvest_order`` approved, materials PRODUCT and MEDIUM known."""
    import_recipe(client, (HERE / "erp_order.bpmn").read_text(encoding="utf-8"), name="erp_order.bpmn")
    with runtime.transaction() as s:
        s.add(Material(material_id=PRODUCT, name="Harvested cell culture fluid", unit="L", kind="intermediate"))
        s.add(Material(material_id=MEDIUM, name="CD CHO medium", unit="kg", kind="media"))
    return client


def batch_count(runtime) -> int:
    with runtime.transaction() as s:
        return s.scalar(select(func.count(Batch.id)))


def order_xml(order_id="PO-1001", recipe=RECIPE, material=PRODUCT, quantity=2000, lots=("MED-L-1",), unit="L"):
    lots = [{"lot": lot, "material": MEDIUM, "quantity": 12.5, "unit": "kg"} for lot in lots]
    return process_order_xml(order_id, recipe, material, quantity, lots, unit)


def order_json(order_id="PO-1001", recipe=RECIPE, material=PRODUCT, quantity=2000, lots=("MED-L-1",), unit="L"):
    return {
        "orders": [
            {
                "id": order_id,
                "recipe": recipe,
                "material": material,
                "quantity": quantity,
                "unit": unit,
                "lots": [{"lot": lot, "material": MEDIUM, "quantity": 12.5, "unit": "kg"} for lot in lots],
            }
        ]
    }


def post_xml(client, body: bytes, who: str = "alice", content_type: str = "application/xml"):
    return client.post(URL, data=body, headers={**client.auth[who], "Content-Type": content_type})
