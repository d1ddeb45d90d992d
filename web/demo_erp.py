"""The ERP round trip of the demo: a partner ERP (``integrations.partner_erp``, a real
HTTP server) receives the confirmations of completed process orders, and sends the
process order that starts a new mAb upstream batch.

Called by the demo's partner systems (``web.demo_plant``): ``connect_partner_erp(rt)``
configures the connector instance ``erp`` (it takes over from the simulated ERP
registered under that name), and ``send_demo_order(rt, url)`` once the web server is up.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from engine import connector_config, users
from engine.errors import NotFound
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


def connect_partner_erp(rt: Runtime, host: str = "127.0.0.1", port: int = 8071, *, by: str = "admin") -> PartnerErp:
    """Start the partner ERP and send ERP calls to it: the connector instance ``erp`` of
    type ``erp-b2mml`` is configured (``engine.connector_config``: checked, audited as
    ``by``), not registered in code; running it again only updates the endpoint."""
    partner = PartnerErp(host, port).start()
    if rt.connectors.type_factory("erp-b2mml") is None:  # until the entry points are installed
        rt.connectors.register_type("erp-b2mml", ErpB2mmlConnector)
    fields = {"endpoint": partner.url, "timeout_seconds": 10.0}
    try:
        current = connector_config.get(rt, "erp")
    except NotFound:
        connector_config.add(rt, name="erp", type="erp-b2mml", by=by, **fields)
    else:
        changes = {k: v for k, v in fields.items() if current.get(k) != v}
        if current.get("type") != "erp-b2mml":
            changes["type"] = "erp-b2mml"
        if not current.get("enabled", True):
            connector_config.enable(rt, "erp", by=by)
        if changes:
            connector_config.update(rt, "erp", by=by, **changes)
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
