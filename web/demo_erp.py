"""The ERP round trip of the demo: a partner ERP (``integrations.partner_erp``, a real
HTTP server) receives the confirmations of completed process orders, and sends the
process order that starts a new mAb upstream batch.

Called by the demo (web/demo.py is owned by the master-data work; the coordinator wires
these in): ``connect_partner_erp(rt)`` after ``connect_simulators(rt)`` (it replaces the
simulated ERP under the connector name ``erp``), and ``send_demo_order(rt, url)`` once
the web server is up.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from engine import users
from engine.connectors import ConnectorConfig
from engine.models import Material, MaterialLot, User
from engine.runtime import Runtime
from integrations.erp_b2mml import ErpB2mmlConnector
from integrations.partner_erp import PartnerErp, send_process_order

log = logging.getLogger("batchline.demo")

ERP_ACCOUNT = "svc.erp"
DEMO_ORDER = "PO-MAB-002"
RECIPE = "mab_upstream"
PRODUCT = "MAB-01-HCCF"
#: materials whose demo lots the order plans (those present in the material table)
PLANNED_MATERIALS = ("MED-CD-CHO", "FLT-DEPTH-D0HC")


def connect_partner_erp(rt: Runtime, host: str = "127.0.0.1", port: int = 8071) -> PartnerErp:
    """Start the partner ERP and send ERP calls to it (connector ``erp``, type erp-b2mml)."""
    partner = PartnerErp(host, port).start()
    config = ConnectorConfig(name="erp", type="erp-b2mml", endpoint=partner.url, timeout_seconds=10)
    rt.connectors.register("erp", ErpB2mmlConnector(config, rt))
    log.info("partner ERP on %s (confirmations: GET %s/confirmations)", partner.url, partner.url)
    return partner


def erp_token(rt: Runtime) -> str:
    """An API token of the ERP's service account (made on first use)."""
    with rt.transaction() as s:
        exists = s.scalar(select(User.id).where(User.username == ERP_ACCOUNT)) is not None
    if not exists:
        users.create_user(rt, ERP_ACCOUNT, "ERP interface", ["service"], by="demo", kind="service")
    return users.create_token(rt, ERP_ACCOUNT, "demo ERP", by="demo")


def planned_lots(rt: Runtime) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        known = set(s.scalars(select(Material.material_id).where(Material.material_id.in_(PLANNED_MATERIALS))))
        lots = s.scalars(select(MaterialLot).where(MaterialLot.material.in_(known)).order_by(MaterialLot.lot_id))
        return [{"lot": lot.lot_id, "material": lot.material} for lot in lots]


def send_demo_order(
    rt: Runtime, batchline_url: str, order_id: str = DEMO_ORDER, quantity: float = 2000
) -> tuple[int, dict[str, Any]]:
    """The ERP sends the process order that starts a new mAb upstream batch (``order_id``
    is its batch id): 201 started, 200 sent before. Needs the material ``MAB-01-HCCF``."""
    status, body = send_process_order(
        batchline_url, erp_token(rt), order_id, RECIPE, PRODUCT, quantity, planned_lots(rt), unit="L"
    )
    if status >= 300:
        log.warning("the demo process order %s was refused: %s %s", order_id, status, body.get("message"))
    return status, body
