"""The demo's ERP round trip (web/demo_erp.py): the partner ERP sends the process order
that starts a new mAb upstream batch over real HTTP, and receives ERP calls."""

from __future__ import annotations

import threading

import requests
from werkzeug.serving import make_server

import workflows
from engine.models import Material, MaterialLot
from tests.support import approved_recipe
from web import demo_erp


def test_the_partner_erp_starts_a_mab_batch(app, runtime):
    entry = workflows.get("mab_upstream")
    approved_recipe(runtime, entry.files, forms=entry.forms, recipe=entry.key, user="alice", approver="quentin")
    with runtime.transaction() as s:
        s.add(Material(material_id="MAB-01-HCCF", name="Harvested cell culture fluid", unit="L", kind="intermediate"))
        s.add(Material(material_id="MED-CD-CHO", name="CD CHO medium", unit="kg", kind="media"))
        s.add(MaterialLot(lot_id="LOT-MED-CD-CHO-001", material="MED-CD-CHO", status="released"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    partner = demo_erp.connect_partner_erp(runtime, port=0)
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        status, body = demo_erp.send_demo_order(runtime, url)
        assert status == 201, body
        (batch,) = body["batches"]
        assert batch["batch_id"] == demo_erp.DEMO_ORDER and batch["recipe"]["recipe"] == "mab_upstream"
        assert batch["parameters"]["planned_lots"] == "LOT-MED-CD-CHO-001"
        assert demo_erp.send_demo_order(runtime, url)[0] == 200
        assert runtime.connectors.get("erp.confirm_order").config.endpoint == partner.url
        assert requests.get(partner.url + "/confirmations", timeout=5).json() == []
    finally:
        partner.stop()
        server.shutdown()
