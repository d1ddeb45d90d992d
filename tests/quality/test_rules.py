"""The exception rules (SQLite and PostgreSQL): versioned, approved by a second QA person,
in force from approval; auto-closure audited with actor ``system`` and the rule set
version; critical and data-integrity exceptions never close themselves."""

from __future__ import annotations

import copy
import json
import threading

import pytest
from sqlalchemy import select

from engine import audit
from engine.batches import unit_of_work
from engine.errors import InvalidInput
from engine.models import AuditEvent
from engine.permissions import Forbidden
from engine.quality import dispositions, rules
from engine.quality import exceptions as qx
from tests.support import approved_recipe, person, read_recipe


def _approved(rt, author="qa.author", approver="qa.approver", content=None):
    draft = rules.import_rules(rt, content or rules.default_content(), user=author)
    return rules.approve(rt, draft["version"], signer=person(approver))


@pytest.fixture
def batch(rt):
    from engine import batches

    rv = approved_recipe(rt, read_recipe("loop.bpmn"), user="qa.author")
    batches.start_batch(rt, rv.recipe, "R-1", user="sup.x")
    return "R-1"


def _raise(rt, batch_id, **kw):
    with rt.transaction() as s:
        b = unit_of_work.find_batch(s, batch_id)
        exc = qx.raise_in(rt, s, b, **{"message": "m", **kw})
        return exc.id, exc.status, exc.severity, exc.rule_set_version


def test_without_an_approved_rule_set_nothing_closes_itself(rt, batch):
    _id, status, severity, version = _raise(rt, batch, category="event.documentation", raised_by="op.x")
    assert (status, severity, version) == ("open", "minor", None)


def test_an_approved_rule_set_auto_closes_documentation_remarks_audited_as_system(rt, batch):
    _approved(rt)
    exc_id, status, _sev, version = _raise(rt, batch, category="event.documentation", raised_by="op.x")
    assert (status, version) == ("closed", 1)
    (listed,) = qx.list_for_batch(rt, batch)
    (auto,) = listed["dispositions"]
    assert (auto["decision"], auto["username"], auto["rule_set_version"]) == ("auto_close", "system", 1)
    with rt.transaction() as s:
        entry = s.scalars(select(AuditEvent).where(AuditEvent.action == "exception.auto_closed")).one()
        assert entry.user == "system" and '"rule_set_version": 1' in entry.new
        assert audit.verify(s, settings=rt.settings).ok


def test_critical_and_data_integrity_never_close_themselves(rt, batch):
    content = copy.deepcopy(rules.default_content())
    content["categories"]["event.documentation"]["critical_severity"] = "critical"
    _approved(rt, content=content)
    assert _raise(rt, batch, category="event.documentation", critical=True)[1] == "open"
    for category in ("correction.after_signing", "data_integrity"):
        bad = copy.deepcopy(rules.default_content())
        bad["categories"][category]["auto_close"] = True
        with pytest.raises(InvalidInput) as refused:
            rules.check(bad)
        assert "never close themselves" in refused.value.details["categories"][category]


def test_a_rule_set_is_complete_well_typed_and_approved_by_someone_else(rt):
    content = copy.deepcopy(rules.default_content())
    del content["categories"]["incident"]
    content["categories"]["made.up"] = {}
    content["categories"]["limit.alert"]["signatures"] = 3
    with pytest.raises(InvalidInput) as refused:
        rules.import_rules(rt, content, user="qa.a")
    problems = refused.value.details["categories"]
    assert set(problems) == {"incident", "made.up", "limit.alert"}
    for hostile in (None, [], "rules", {"categories": []}):
        with pytest.raises(InvalidInput):
            rules.import_rules(rt, hostile, user="qa.a")
    draft = rules.import_rules(rt, rules.default_content(), user="qa.a")
    with pytest.raises(Forbidden) as own:
        rules.approve(rt, draft["version"], signer=person("qa.a"))
    assert own.value.code == "author_cannot_approve"
    with pytest.raises(Forbidden):
        rules.approve(rt, draft["version"], signer=person("sup.x"))
    rules.approve(rt, draft["version"], signer=person("qa.b"))
    newer = _approved(rt, author="qa.b", approver="qa.a")
    assert [(r["version"], r["status"]) for r in rules.list_rule_sets(rt)] == [
        (newer["version"], "approved"),
        (draft["version"], "superseded"),
    ]


def test_an_exception_keeps_the_rule_set_it_was_raised_under(rt, batch):
    _approved(rt)
    first = _raise(rt, batch, category="limit.action", raised_by="op.x")
    stricter = copy.deepcopy(rules.default_content())
    stricter["categories"]["limit.action"]["severity"] = "critical"
    _approved(rt, content=stricter)
    second = _raise(rt, batch, category="limit.action", raised_by="op.x")
    assert (first[2], first[3]) == ("major", 1) and (second[2], second[3]) == ("critical", 2)


def test_two_qa_people_signing_at_once_are_counted_one_after_the_other(rt, batch):
    _approved(rt)
    exc_id = _raise(rt, batch, category="limit.action", raised_by="op.x")[0]  # two signatures
    results, errors = [], []

    def sign(who):
        try:
            out = dispositions.disposition(rt, batch, exc_id, "accept", "checked", signer=person(who))
            results.append(out.body["status"])
        except Exception as exc:  # noqa: BLE001 - the test reports what went wrong
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(who,)) for who in ("qa.one", "qa.two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == ["accepted", "open"]
    (listed,) = qx.list_for_batch(rt, batch)
    assert listed["status"] == "accepted" and listed["signatures_given"] == 2


def test_nobody_dispositions_what_they_raised(rt, batch):
    _approved(rt)
    exc_id = _raise(rt, batch, category="event.process", raised_by="qa.one")[0]
    with pytest.raises(Forbidden) as refused:
        dispositions.disposition(rt, batch, exc_id, "accept", "fine", signer=person("qa.one"))
    assert refused.value.code == "segregation_of_duties"


def test_rules_changed_in_the_database_are_not_applied_and_fail_verification(rt, batch):
    from sqlalchemy import text

    _approved(rt)
    loosened = copy.deepcopy(rules.default_content()["categories"])
    loosened["limit.action"]["auto_close"] = True  # someone with database access waves breaches through
    with rt.transaction() as s:
        value = "CAST(:r AS JSON)" if rt.settings.is_sqlite is False else ":r"
        s.execute(text(f"UPDATE quality_rule_set SET rules = {value}"), {"r": json.dumps(loosened)})
    _id, status, _sev, version = _raise(rt, batch, category="limit.action", raised_by="op.x")
    assert (status, version) == ("open", None)  # the built-in rules, not the tampered ones
    with rt.transaction() as s:
        result = audit.verify(s, settings=rt.settings)
    assert not result.ok and any("rule set 1" in p for p in result.problems)


def test_a_batch_marked_released_in_the_database_fails_verification(rt, batch):
    from sqlalchemy import text

    with rt.transaction() as s:
        s.execute(text("UPDATE batch SET state = 'released'"))
        result = audit.verify(s, settings=rt.settings)
    assert not result.ok and any("without a signed released decision" in p for p in result.problems)
