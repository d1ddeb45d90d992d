"""A recipe version's lifecycle: only a draft can be approved, by someone other than its
author; an approval that would change nothing is refused, not silently accepted."""

from __future__ import annotations

import pytest

from engine import recipes
from engine.errors import Conflict
from engine.permissions import Forbidden

from .engine_helpers import load


def test_a_draft_is_approved_once_by_another_person(rt):
    rv = load(rt, "gateways.bpmn", approve=False)
    assert rv.status == "draft"
    with pytest.raises(Forbidden) as own:
        recipes.set_status(rt, rv.id, "approved", "qa.lead", "mine")
    assert own.value.code == "author_cannot_approve"
    assert recipes.set_status(rt, rv.id, "approved", "qa.rita", "reviewed").status == "approved"

    with pytest.raises(Conflict) as again:
        recipes.set_status(rt, rv.id, "approved", "qa.rita", "reviewed twice")
    assert again.value.code == "recipe_not_draft"
    assert again.value.message == "version 1 of gateways is approved already; only a draft can be approved"
    assert recipes.get_version(rt, rv.id).status == "approved"


def test_a_retired_version_is_not_approved_again(rt):
    rv = load(rt, "gateways.bpmn")
    recipes.set_status(rt, rv.id, "retired", "qa.rita", "superseded")
    with pytest.raises(Conflict) as err:
        recipes.set_status(rt, rv.id, "approved", "qa.rita", "back")
    assert err.value.code == "recipe_not_draft"
    assert "only a draft can be approved" in err.value.message
    with pytest.raises(Conflict) as draft:
        recipes.set_status(rt, rv.id, "draft", "qa.rita", "back")
    assert draft.value.code == "recipe_retired"
    assert recipes.get_version(rt, rv.id).status == "retired"
