"""The batch record page shows a phase's report: each final value with its unit, node id
and source timestamp, and the report verbatim."""

from __future__ import annotations

import html

from engine import batches
from engine.users import Person
from integrations import opcua
from integrations.opcua.connector import OpcUaConnector
from tests.engine.engine_helpers import complete, ready, run_jobs_until
from tests.support import browser_login

from .conftest import config_for, load_recipe


def test_record_page_shows_the_phase_report(runtime, app, idle_sim):
    opcua.install(runtime)
    connector = OpcUaConnector(config_for(idle_sim), runtime)
    runtime.connectors.register("BR-101", connector)
    try:
        load_recipe(runtime, "opcua_equipment.bpmn")
        batches.start_batch(runtime, "opcua_bioreactor", "OPC-PAGE", user="sv", parameters={"duration_h": 1})
        run_jobs_until(runtime, lambda: "approve_setpoint" in ready(runtime, "OPC-PAGE"))
        sv = Person("sv", "Sv", ("supervisor",))
        complete(runtime, "OPC-PAGE", "approve_setpoint", {"setpoint": 37.0}, user="sv", signer=sv)
        run_jobs_until(runtime, lambda: "check_report" in ready(runtime, "OPC-PAGE"), timeout=20)
    finally:
        connector.close()
    step = next(s for s in batches.steps(runtime, "OPC-PAGE") if s["bpmn_id"] == "run_production")
    client = app.test_client()
    browser_login(client, "sv")
    page = html.unescape(client.get("/batches/OPC-PAGE").get_data(as_text=True))
    assert step["values"]["run_id"] in page
    assert "Temperature_node_id" in page and step["values"]["Temperature_node_id"] in page
    assert "phase_report" in page and "completed" in page
