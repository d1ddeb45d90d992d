"""A recipe version's lifecycle in the engine (engine.recipe_lifecycle, recipes.promote):
only a draft (or a version in review) is approved, e-signed by a QA person other than its
author; an approval that would change nothing is refused, not silently accepted; a
version is effective from its date and the one before it is superseded then."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import batches, recipe_lifecycle, recipes
from engine.errors import Conflict
from engine.models import AuditEvent, utcnow
from engine.permissions import Forbidden
from tests.support import person

from .engine_helpers import load


def test_a_draft_is_approved_once_by_another_qa_person(rt):
    rv = load(rt, "gateways.bpmn", approve=False)
    assert rv.status == "draft"
    with pytest.raises(Forbidden) as own:
        recipe_lifecycle.approve(rt, rv.id, signer=person("qa.lead"), reason="mine")
    assert own.value.code == "author_cannot_approve"
    with pytest.raises(Forbidden):
        recipe_lifecycle.approve(rt, rv.id, signer=person("sup.sam"), reason="not QA")
    approved = recipe_lifecycle.approve(rt, rv.id, signer=person("qa.rita"), reason="reviewed")
    assert approved.status == "effective" and approved.approved_by == ["qa.rita"]

    with pytest.raises(Conflict) as again:
        recipe_lifecycle.approve(rt, rv.id, signer=person("qa.rita"), reason="reviewed twice")
    assert again.value.code == "recipe_not_draft"
    assert "is already effective" in again.value.message
    with rt.transaction() as s:
        (entry,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "recipe.approved"))
        new = json.loads(entry.new)
        assert new["signatures"] == [{"username": "qa.rita", "printed_name": "Qa.Rita", "meaning": "Approved"}]
        assert new["content_hash"] == rv.content_hash


def test_a_retired_version_is_not_approved_again(rt):
    rv = load(rt, "gateways.bpmn")
    with pytest.raises(Forbidden):
        recipe_lifecycle.retire(rt, rv.id, signer=person("op.anna"), reason="old")
    recipe_lifecycle.retire(rt, rv.id, signer=person("qa.rita"), reason="superseded")
    with pytest.raises(Conflict) as err:
        recipe_lifecycle.approve(rt, rv.id, signer=person("qa.rita"), reason="back")
    assert err.value.code == "recipe_not_draft"
    with pytest.raises(Conflict) as twice:
        recipe_lifecycle.retire(rt, rv.id, signer=person("qa.rita"), reason="again")
    assert twice.value.code == "recipe_retired"
    assert recipes.get_version(rt, rv.id).status == "retired"
    with pytest.raises(Exception, match="effective"):
        batches.start_batch(rt, "gateways", "G-1", user="sup.x")


def test_effective_from_a_date_then_the_older_version_is_superseded(rt):
    v1 = load(rt, "loop.bpmn")
    assert v1.status == "effective"
    batches.start_batch(rt, "sampling_loop", "L-1", user="sup.x")
    from tests.support import read_recipe

    files = {
        n: d.replace(b'name="Repeated sampling"', b'name="Repeated sampling v2"')
        for n, d in read_recipe("loop.bpmn").items()
    }
    v2 = recipes.import_recipe(rt, files, user="qa.lead")
    tomorrow = utcnow() + timedelta(days=1)
    v2 = recipe_lifecycle.approve(rt, v2.id, signer=person("qa.rita"), reason="ok", effective_from=tomorrow.isoformat())
    assert v2.status == "approved"
    with rt.transaction() as s:
        assert recipes.effective_version(s, "sampling_loop").id == v1.id
        # the date comes: reading promotes it (audited), the older version is superseded
        assert recipes.effective_version(s, "sampling_loop", tomorrow + timedelta(seconds=1)).id == v2.id
    assert recipes.get_version(rt, v1.id).status == "superseded"
    assert batches.start_batch(rt, "sampling_loop", "L-2", user="sup.x")["recipe_version_id"] == v2.id
    assert batches.get_batch(rt, "L-1")["recipe_version_id"] == v1.id
    with pytest.raises(Conflict) as old:
        batches.start_batch(rt, "sampling_loop", "L-3", user="sup.x", version=1)
    assert old.value.code == "recipe_not_approved"
    with rt.transaction() as s:
        changes = [
            (e.old, e.new)
            for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "recipe.status").order_by(AuditEvent.id))
        ]
    assert ("approved", "effective") in changes and ("effective", "superseded") in changes
