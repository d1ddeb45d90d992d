"""Diff of two versions (a changed limit, an added task) and an operation template's
where-used and replace (new drafts, audited), in the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import recipe_versions, recipes
from engine.errors import BatchlineError, InvalidInput, NotFound
from engine.models import AuditEvent, RecipeVersion
from tests.recipe_versions.helpers import import_signed, template_library
from tests.support import person


def test_diff_names_the_changed_limit_and_the_added_task(rt):
    v1, v2 = import_signed(rt, approve=False)
    diff = recipe_versions.diff_versions(rt, v2.id, v1.id)
    added = {e["id"]: e for e in diff["elements"]["added"]}
    assert set(added) == {"label_bottle", "f4"}
    assert added["label_bottle"]["type"] == "userTask" and added["label_bottle"]["name"] == "Label the bottle"
    changed = {e["id"]: e["changes"] for e in diff["elements"]["changed"]}
    # the flow after transfer now leads to the new task; transfer and end are unchanged by id
    assert changed["f3"]["properties.targetRef"] == {"old": "end", "new": "label_bottle"}
    assert "flows.incoming" in changed["end"]
    assert diff["elements"]["removed"] == []
    (form,) = diff["forms"]["changed"]
    assert form["form"] == "weigh_form"
    (field,) = form["fields"]
    assert field["key"] == "mass_g"
    assert field["attributes"] == {"properties.hardMax": {"old": "1000", "new": "1200", "what": "limit"}}
    assert not diff["identical"]
    # the other direction says the opposite
    back = recipe_versions.diff_versions(rt, v1.id, v2.id)
    assert {e["id"] for e in back["elements"]["removed"]} == {"label_bottle", "f4"}
    assert back["forms"]["changed"][0]["fields"][0]["attributes"]["properties.hardMax"]["new"] == "1000"
    assert recipe_versions.diff_versions(rt, v1.id, v1.id)["identical"]


def test_diff_refuses_what_is_not_a_version(rt):
    v1, _ = import_signed(rt)
    with pytest.raises(NotFound):
        recipe_versions.diff_versions(rt, v1.id, 999_999)
    for bad in (0, -1, 2**31, "1", True, None):
        with pytest.raises(InvalidInput):
            recipe_versions.diff_versions(rt, v1.id, bad)


def test_where_used_lists_callers_and_the_template_version_they_embed(rt):
    t1, t2, a, b = template_library(rt)
    result = recipe_versions.where_used(rt, "tpl_count")
    assert [v["version"] for v in result["versions"]] == [1, 2]
    used = {u["recipe"]: u for u in result["used_by"]}
    assert set(used) == {"rec_a", "rec_b"}
    assert used["rec_a"]["template_version"] == 1 and used["rec_b"]["template_version"] == 1
    assert {c["id"] for c in used["rec_b"]["call_activities"]} == {"b_count_1", "b_count_2"}
    with pytest.raises(NotFound):
        recipe_versions.where_used(rt, "tpl_nobody_calls")
    for bad in ("", "a b", "x" * 300, "<x>", "1abc", None, 5):
        with pytest.raises(InvalidInput):
            recipe_versions.where_used(rt, bad)


def test_replace_makes_a_new_draft_of_each_caller_audited_and_once(rt):
    t1, t2, a, b = template_library(rt)
    out = recipe_versions.replace_template(rt, "tpl_count", with_version=2, actor=person("qa.tess")).body
    rows = {r["recipe"]: r for r in out["recipes"]}
    assert set(rows) == {"rec_a", "rec_b"}
    for key in ("rec_a", "rec_b"):
        assert rows[key]["outcome"] == "new draft"
        assert rows[key]["draft"]["version"] == 2 and rows[key]["draft"]["status"] == "draft"
    # the drafts embed template version 2 (found by content) and run the new task
    used = {u["recipe"]: u for u in recipe_versions.where_used(rt, "tpl_count")["used_by"] if u["version"] == 2}
    assert used["rec_a"]["template_version"] == 2 and used["rec_b"]["template_version"] == 2
    draft_b = recipes.get_version(rt, rows["rec_b"]["draft"]["id"])
    assert {t["bpmn_id"] for t in draft_b.tasks} >= {"tc_viability", "b_feed"}
    diff = recipe_versions.diff_versions(rt, draft_b.id, b.id)
    assert {e["id"] for e in diff["elements"]["added"]} == {"tc_viability", "tc3"}
    assert diff["elements"]["removed"] == []
    with rt.transaction() as s:
        audits = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "recipe.template_replaced")))
        assert {(e.object_id, e.old, e.new) for e in audits} == {
            ("rec_a:2", "rec_a:1", "tpl_count:2"),
            ("rec_b:2", "rec_b:1", "tpl_count:2"),
        }
        assert all(e.user == "qa.tess" for e in audits)
    # again: nothing new (the newest versions embed v2 already), no second audit entry
    again = recipe_versions.replace_template(rt, "tpl_count", with_version=2, actor=person("qa.tess")).body
    assert {r["outcome"] for r in again["recipes"]} == {"already uses this version"}
    with rt.transaction() as s:
        assert len(list(s.scalars(select(AuditEvent).where(AuditEvent.action == "recipe.template_replaced")))) == 2
        assert s.scalars(select(RecipeVersion).where(RecipeVersion.recipe == "rec_a")).all()[-1].version == 2


def test_replace_only_named_recipes_and_only_approved_template_versions(rt):
    t1, t2, a, b = template_library(rt)
    out = recipe_versions.replace_template(
        rt, "tpl_count", with_version=2, recipes=["rec_a"], actor=person("qa.tess")
    ).body
    assert [r["recipe"] for r in out["recipes"]] == ["rec_a"]
    with pytest.raises(InvalidInput) as err:
        recipe_versions.replace_template(rt, "tpl_count", with_version=2, recipes=["nope"], actor=person("qa.tess"))
    assert err.value.code == "recipe_not_caller"
    draft = recipes.import_recipe(
        rt,
        {"tpl_count.bpmn": t2.bpmn["tpl_count.bpmn"].replace("Record viability", "Viability").encode()},
        user="qa.lead",
    )
    with pytest.raises(BatchlineError) as err:
        recipe_versions.replace_template(rt, "tpl_count", with_version=draft.version, actor=person("qa.tess"))
    assert err.value.code == "template_not_approved"
    with pytest.raises(NotFound):
        recipe_versions.replace_template(rt, "tpl_count", with_version=99, actor=person("qa.tess"))
    with pytest.raises(BatchlineError) as err:
        recipe_versions.replace_template(rt, "tpl_count", with_version=2, actor=person("sup.sam"))
    assert err.value.code == "forbidden"
    for bad in ("2", 0, -1, True, 2**40):
        with pytest.raises(InvalidInput):
            recipe_versions.replace_template(rt, "tpl_count", with_version=bad, actor=person("qa.tess"))
