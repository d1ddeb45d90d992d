"""The master-data pages without a browser (Flask's test client): everyone signed in
reads them; the forms are there only for the roles that may use them; a POST by an
operator is refused (403) and changes nothing; what people typed is shown escaped; a
refusal is shown on the page with the engine's reason."""

from __future__ import annotations

import re

import pytest

from engine.master_data import equipment, lots, materials
from tests.support import browser_login

XSS = "<script>window.__x=1</script>"


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def stocked(runtime):
    materials.create(runtime, {"material_id": "BUF-PBS", "name": f"PBS {XSS}", "unit": "L"}, by="qa")
    lots.create(runtime, {"lot_id": "PBS-1", "material": "BUF-PBS", "quantity": 10}, by="sv")
    equipment.create(runtime, {"equipment_id": "MV-1", "equipment_class": "mixing_vessel", "name": XSS}, by="sv")
    return runtime


@pytest.mark.parametrize("url", ["/materials/", "/lots/", "/lots/PBS-1", "/equipment/", "/equipment/MV-1"])
def test_an_operator_reads_every_page_without_forms(client, stocked, url):
    browser_login(client, "op")
    page = client.get(url)
    assert page.status_code == 200, page.text
    forms = ("lot-form", "material-form", "equipment-form", "lot-update-form", "equipment-update-form")
    assert not [f for f in forms if f'id="{f}"' in page.text]
    assert XSS not in page.text  # escaped wherever it is shown
    assert 'id="lot-status-form"' not in page.text and 'id="equipment-status-form"' not in page.text


@pytest.mark.parametrize(
    ("url", "form"),
    [
        ("/lots/PBS-1", {"action": "status", "status": "released", "reason": "x"}),
        ("/lots/PBS-1", {"action": "update", "quantity": "1", "reason": "x"}),
        ("/lots/", {"lot_id": "L-2", "material": "BUF-PBS", "quantity": "1"}),
        ("/equipment/MV-1", {"action": "status", "status": "maintenance", "reason": "x"}),
        ("/materials/", {"material_id": "M-2", "name": "x", "unit": "L"}),
    ],
)
def test_an_operators_post_is_refused_and_changes_nothing(client, stocked, url, form):
    browser_login(client, "op")
    token = csrf(client.get("/lots/").text)
    r = client.post(url, data={"csrf_token": token, **form})
    assert r.status_code == 403
    assert lots.get(stocked, "PBS-1")["status"] == "quarantine" and lots.get(stocked, "PBS-1")["quantity"] == 10
    assert equipment.get(stocked, "MV-1")["status"] == "dirty"


def test_qa_releases_from_the_page_and_a_refusal_is_explained(client, stocked):
    browser_login(client, "qa")
    page = client.get("/lots/PBS-1").text
    assert 'href="/lots/PBS-1/genealogy"' in page
    r = client.post(
        "/lots/PBS-1", data={"csrf_token": csrf(page), "action": "status", "status": "released", "reason": ""}
    )
    assert r.status_code == 422 and "reason" in r.text.lower()
    r = client.post(
        "/lots/PBS-1", data={"csrf_token": csrf(page), "action": "status", "status": "released", "reason": "CoA ok"}
    )
    assert r.status_code == 303
    assert lots.get(stocked, "PBS-1")["status"] == "released"
    r = client.post(
        "/lots/PBS-1", data={"csrf_token": csrf(page), "action": "update", "quantity": "-5", "reason": "typo"}
    )
    assert r.status_code == 422 and "quantity" in r.text


def test_a_post_without_the_csrf_token_is_refused(client, stocked):
    browser_login(client, "qa")
    r = client.post("/lots/PBS-1", data={"action": "status", "status": "released", "reason": "x"})
    assert r.status_code in (400, 403)
    assert lots.get(stocked, "PBS-1")["status"] == "quarantine"


def test_an_unknown_lot_or_equipment_page_is_404(client, stocked):
    browser_login(client, "op")
    assert client.get("/lots/NOPE").status_code == 404
    assert client.get("/equipment/" + "x" * 300).status_code == 404
