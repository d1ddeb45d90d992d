"""The permission matrix is enforced by the API: every endpoint × every role.

Every API endpoint but the public ones must declare its action (a new endpoint without
one fails here), and each role gets 403 ``forbidden`` exactly where the matrix says so.
"""

from __future__ import annotations

import re

import pytest

from engine import permissions, users
from tests.support import PASSWORD

PUBLIC = {"/api/health", "/api/openapi.json", "/api/docs", "/api/docs/"}
ROLES = ["operator", "supervisor", "qa", "admin", "service"]


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
        if role in permissions.MATRIX[action]:
            assert code != "forbidden", f"{role} refused {method} {rule.rule} ({action})"
        else:
            assert response.status_code == 403 and code == "forbidden", (
                f"{role} allowed {method} {rule.rule} ({action}): {response.status_code} {code}"
            )
        checked += 1
    assert checked >= 20
