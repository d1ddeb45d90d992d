"""The permission matrix is enforced by the API: every endpoint × every role.

Every API endpoint but the public ones must declare its action (a new endpoint without
one fails here), and each role gets 403 ``forbidden`` exactly where the INTENDED matrix
below says so. The matrix is written out here as a literal table, never read from
``engine.permissions.MATRIX``: a wrong entry there fails this test.
"""

from __future__ import annotations

import re

import pytest

from engine import permissions, users
from forms.vocabulary import SIGNATURE_MEANINGS
from tests.support import PASSWORD

#: /api/qms/events is authenticated by the QMS's signature, not by a user (tests/qms)
PUBLIC = {"/api/health", "/api/ready", "/api/openapi.json", "/api/docs", "/api/docs/", "/api/qms/events"}
ROLES = ["operator", "supervisor", "qa", "admin", "service", "trainer", "maintenance"]
EVERYONE = {"operator", "supervisor", "qa", "admin", "service"}

#: action -> the roles that may call its endpoints. ``task.complete`` and ``step.correct``
#: admit every role that completes or corrects SOME task; which one is decided per task by
#: engine.duties (tests/engine/test_duties.py).
INTENDED = {
    "recipe.read": EVERYONE,
    "recipe.import": {"qa"},
    "recipe.approve": {"qa"},
    "batch.read": EVERYONE,
    "batch.start": {"supervisor", "service"},
    "batch.hold": {"supervisor"},
    "task.complete": {"operator", "supervisor", "qa"},
    "task.reassign": {"supervisor"},
    "task.callback": {"service"},
    "step.correct": {"operator", "supervisor", "qa"},
    "message.deliver": {"service"},
    "incident.read": {"supervisor", "qa", "admin"},
    "incident.retry": {"supervisor", "admin"},
    "events.read": {"qa", "admin", "service"},
    "audit.verify": {"qa", "admin"},
    "exception.read": {"operator", "supervisor", "qa"},
    "exception.disposition": {"qa"},
    "batch.release": {"qa"},
    "rules.read": {"supervisor", "qa", "admin"},
    "rules.manage": {"qa"},
    "attachment.upload": {"operator", "supervisor", "qa"},
    "user.manage": {"admin"},
    "analytics.read": {"operator", "supervisor", "qa"},
    "analytics.train": {"qa"},
    "analytics.approve": {"qa"},
    "equipment.write": {"service", "supervisor"},
    "subscriber.manage": {"admin"},
    "records.export": {"qa", "admin"},
    "connector.manage": {"admin"},
    "lims.result": {"service"},
    "event.record": {"operator", "supervisor", "qa"},
    "qualification.read": {"operator", "supervisor", "qa", "admin", "trainer"},
    "qualification.record": {"qa", "trainer"},
    "batch.migrate": {"supervisor"},
    "batch.migration.approve": {"qa"},
    "template.replace": {"qa"},
    "erp.orders": {"service"},
    # master data (p12-masterdata): operators read, never change
    "materials.read": EVERYONE | {"maintenance", "trainer"},
    "materials.manage": {"qa", "supervisor", "service"},
    "lots.manage": {"qa", "supervisor", "service"},
    "lots.release": {"qa"},
    "equipment.manage": {"supervisor", "maintenance", "service"},
    "equipment.maintain": {"maintenance"},
}

#: task role -> who completes it; signature meaning -> who gives it (engine.duties reads these)
INTENDED_TASK_COMPLETERS = {"operator": {"operator", "supervisor"}, "supervisor": {"supervisor"}, "qa": {"qa"}}
INTENDED_TASK_WITNESSES = {
    "operator": {"operator", "supervisor", "qa"},
    "supervisor": {"supervisor", "qa"},
    "qa": {"qa"},
}
INTENDED_MEANING_ROLES = {
    "Performed": {"operator", "supervisor", "qa"},
    "Verified": {"operator", "supervisor", "qa"},
    "Reviewed": {"supervisor", "qa"},
    "Approved": {"supervisor", "qa"},
    "Released": {"qa"},
    "Rejected": {"qa"},
    "Corrected": {"operator", "supervisor", "qa"},
}


def test_the_matrix_is_the_intended_one():
    assert {a: set(r) for a, r in permissions.MATRIX.items()} == INTENDED
    assert {a: set(r) for a, r in permissions.TASK_COMPLETERS.items()} == INTENDED_TASK_COMPLETERS
    assert {m: set(r) for m, r in permissions.MEANING_ROLES.items()} == INTENDED_MEANING_ROLES
    assert {a: set(r) for a, r in permissions.TASK_WITNESSES.items()} == INTENDED_TASK_WITNESSES


def test_every_form_meaning_has_its_roles():
    """A meaning a form may name (forms.vocabulary) that no role may give would make its
    tasks impossible to sign; one missing from the table would be refused to everyone."""
    assert set(SIGNATURE_MEANINGS) | {"Corrected"} == set(INTENDED_MEANING_ROLES)


def _action(view):
    while view is not None:
        action = getattr(view, "batchline_action", None)
        if action:
            return action
        view = getattr(view, "__wrapped__", None)
    return None


def _endpoints(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api") or rule.rule in PUBLIC or rule.rule.startswith("/api/docs"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_api_endpoint_declares_its_permission(app):
    missing = [f"{m} {r.rule}" for r, m in _endpoints(app) if _action(app.view_functions[r.endpoint]) is None]
    assert not missing, f"endpoints without @requires: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_allowed_exactly_what_the_matrix_says(app, runtime, role):
    users.create_user(runtime, f"only-{role}", f"Only {role}", [role], by="test", password=PASSWORD)
    token = users.create_token(runtime, f"only-{role}", "perm", by="test")
    client = app.test_client()
    checked = 0
    for rule, method in _endpoints(app):
        action = _action(app.view_functions[rule.endpoint])
        path = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "B-404" if m.group(2) == "batch_id" else "1", rule.rule)
        response = client.open(path, method=method, json={}, headers={"Authorization": f"Bearer {token}"})
        body = response.get_json(silent=True)
        code = body.get("code") if isinstance(body, dict) else None
        assert action in INTENDED, f"{method} {rule.rule}: action {action} is not in the intended matrix"
        if role in INTENDED[action]:
            assert code != "forbidden", f"{role} refused {method} {rule.rule} ({action})"
        else:
            assert response.status_code == 403 and code == "forbidden", (
                f"{role} allowed {method} {rule.rule} ({action}): {response.status_code} {code}"
            )
        checked += 1
    assert checked >= 20
