"""``POST /api/erp/process-orders``: B2MML OperationsSchedule or JSON orders start batches
of the recipe's effective version; resends find their batch; changed resends conflict;
unknown recipes and materials are named and start nothing; only the ERP's service
account may post; identical posts at the same moment make one batch."""

from __future__ import annotations

import json
import threading

from lxml import etree
from sqlalchemy import select

from engine import users
from engine.models import AuditEvent, ProcessOrder
from tests.support import PASSWORD

from .conftest import HERE, PRODUCT, RECIPE, URL, batch_count, order_json, order_xml, post_xml

NS = "{http://www.mesa.org/xml/B2MML}"


def test_an_xml_order_starts_a_batch_of_the_effective_version(erp, runtime):
    r = post_xml(erp, order_xml())
    assert r.status_code == 201, r.json
    assert r.json["created"] == 1
    (batch,) = r.json["batches"]
    assert batch["batch_id"] == "PO-1001" and batch["process_order"] == "PO-1001" and batch["created"] is True
    assert batch["recipe"]["recipe"] == RECIPE and batch["state"] == "running"
    assert batch["parameters"]["planned_quantity"] == 2000 and batch["parameters"]["planned_unit"] == "L"
    assert batch["parameters"]["planned_lots"] == "MED-L-1"
    with runtime.transaction() as s:
        order = s.get(ProcessOrder, "PO-1001")
        assert (order.material, order.quantity, order.unit) == (PRODUCT, 2000.0, "L")
        assert order.planned_lots == [{"lot": "MED-L-1", "material": "MED-CD-CHO", "quantity": 12.5, "unit": "kg"}]
        assert order.received_by == "alice"
    listed = erp.get(URL).json
    assert listed[0]["order"] == "PO-1001" and listed[0]["state"] == "running"


def test_the_order_is_audited(erp, runtime):
    post_xml(erp, order_xml())
    with runtime.transaction() as s:
        trail = s.scalars(
            select(AuditEvent).where(AuditEvent.object_type == "process_order", AuditEvent.object_id == "PO-1001")
        ).all()
        assert [e.action for e in trail] == ["process_order.received"]
        assert trail[0].user == "alice" and json.loads(trail[0].new)["material"] == PRODUCT


def test_a_json_order_is_the_same_order(erp, runtime):
    r = erp.post(URL, json=order_json(), headers=erp.auth["alice"])
    assert r.status_code == 201, r.json
    again = post_xml(erp, order_xml())  # the same content as XML: a resend
    assert again.status_code == 200, again.json
    assert again.json["batches"][0]["created"] is False
    assert batch_count(runtime) == 1


def test_a_resent_order_answers_with_its_batch(erp, runtime):
    first = post_xml(erp, order_xml())
    again = post_xml(erp, order_xml())
    assert again.status_code == 200 and again.json["created"] == 0
    assert again.json["batches"][0]["batch_id"] == first.json["batches"][0]["batch_id"]
    assert batch_count(runtime) == 1


def test_a_changed_order_under_the_same_id_is_a_conflict(erp, runtime):
    post_xml(erp, order_xml())
    r = post_xml(erp, order_xml(quantity=1800))
    assert r.status_code == 409 and r.json["code"] == "process_order_changed"
    assert "OperationsRequest[1]/ID" in r.json["message"]
    with runtime.transaction() as s:
        assert s.get(ProcessOrder, "PO-1001").quantity == 2000


def _schedule(*orders: bytes) -> bytes:
    """One OperationsSchedule holding the OperationsRequests of several documents."""
    roots = [etree.fromstring(o) for o in orders]
    for extra in roots[1:]:
        roots[0].append(extra.find(NS + "OperationsRequest"))
    return etree.tostring(roots[0])


def test_an_unknown_recipe_is_named_and_nothing_is_started(erp, runtime):
    body = _schedule(order_xml("PO-1"), order_xml("PO-2", recipe="no_such_recipe"))
    r = post_xml(erp, body)
    assert r.status_code == 422, r.json
    assert r.json["message"] == "OperationsRequest[2]/OperationsDefinitionID: no approved recipe 'no_such_recipe'"
    assert batch_count(runtime) == 0
    with runtime.transaction() as s:
        assert s.scalars(select(ProcessOrder)).all() == []


def test_an_unknown_material_is_named_and_nothing_is_started(erp, runtime):
    body = _schedule(order_xml("PO-1"), order_xml("PO-2"), order_xml("PO-3", material="NO-SUCH"))
    r = post_xml(erp, body)
    assert r.status_code == 422, r.json
    assert r.json["message"].startswith(
        "OperationsRequest[3]/SegmentRequirement[1]/MaterialRequirement[1]/MaterialDefinitionID: unknown material"
    )
    assert batch_count(runtime) == 0
    r = erp.post(URL, json=order_json(material="NO-SUCH"), headers=erp.auth["alice"])
    assert r.status_code == 422 and r.json["message"] == "orders[1].material: unknown material 'NO-SUCH'"
    assert batch_count(runtime) == 0


def test_a_schedule_of_several_orders_starts_them_all(erp, runtime):
    r = post_xml(erp, _schedule(order_xml("PO-1"), order_xml("PO-2")))
    assert r.status_code == 201 and r.json["created"] == 2
    assert [b["batch_id"] for b in r.json["batches"]] == ["PO-1", "PO-2"]
    again = post_xml(erp, _schedule(order_xml("PO-1"), order_xml("PO-3")))  # one resend, one new
    assert again.status_code == 201 and [b["created"] for b in again.json["batches"]] == [False, True]
    assert batch_count(runtime) == 3


def test_a_draft_recipe_is_not_an_approved_recipe(erp, runtime):
    from tests.web.through_api import import_recipe

    draft = (HERE / "erp_order.bpmn").read_text(encoding="utf-8").replace("harvest_order", "draft_order")
    import_recipe(erp, draft, name="draft.bpmn", approve=False)
    r = post_xml(erp, order_xml(recipe="draft_order"))
    assert r.status_code == 422 and "no approved recipe 'draft_order'" in r.json["message"]


def test_only_the_erp_service_account_may_post(erp, runtime):
    for who in ("op", "sv", "qa", "uu"):
        r = post_xml(erp, order_xml(), who=who)
        assert r.status_code == 403, (who, r.json)
    users.create_user(runtime, "svc.erp", "ERP", ["service"], by="test", password=PASSWORD)
    token = {"Authorization": "Bearer " + users.create_token(runtime, "svc.erp", "erp", by="test")}
    r = erp.post(URL, data=order_xml(), headers={**token, "Content-Type": "application/xml"})
    assert r.status_code == 201, r.json
    assert batch_count(runtime) == 1


def test_identical_posts_at_the_same_moment_make_one_batch(erp, runtime):
    body = order_xml()
    app = erp.application
    auth = erp.auth["alice"]
    answers: list[int] = []
    start = threading.Barrier(4)

    def post():
        client = app.test_client()
        start.wait()
        r = client.post(URL, data=body, headers={**auth, "Content-Type": "application/xml"})
        answers.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == [200, 200, 200, 201], answers
    assert batch_count(runtime) == 1


def test_an_unknown_material_of_a_planned_lot_is_named(erp, runtime):
    body = order_xml().replace(b"<MaterialDefinitionID>MED-CD-CHO<", b"<MaterialDefinitionID>MED-NOPE<")
    r = post_xml(erp, body)
    assert r.status_code == 422, r.json
    assert r.json["message"] == (
        "OperationsRequest[1]/SegmentRequirement[1]/MaterialRequirement[2]/MaterialDefinitionID: "
        "unknown material 'MED-NOPE'"
    )
    assert batch_count(runtime) == 0


def test_a_batch_id_taken_by_another_batch_is_a_conflict(erp, runtime):
    from tests.web.through_api import start_batch

    start_batch(erp, RECIPE, "PO-1001")
    r = post_xml(erp, order_xml())
    assert r.status_code == 409 and r.json["code"] == "batch_exists"
    assert batch_count(runtime) == 1
