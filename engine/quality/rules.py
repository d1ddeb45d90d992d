"""The exception rules: what each category of exception weighs and needs.

A rule set maps every exception category (``engine.vocabulary.ExceptionCategory``) to
its severity (and the severity when the parameter or step is critical), the number of
QA signatures its disposition needs (1, or 2 by two different QA people), whether it
blocks release while unresolved, whether it asks the QMS for a deviation (``never``,
``if_critical``, ``always``) and whether the system may close it by itself.

Rules are configuration that decides GMP outcomes, so they are versioned and approved
like a recipe (21 CFR 11.10(k)): QA imports a draft, another QA person approves it with an
e-signature, and the newest approved version is in force from then on. An exception keeps
the version it was raised under. Until a rule set is approved the *built-in* rules apply:
the packaged defaults with every auto-closure switched off — without an approved rule set
nothing is closed without a person.

Whatever a rule set says, critical and data-integrity exceptions never close themselves
(refused at import, and checked again when an exception is raised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import audit
from ..errors import Conflict, InvalidInput, NotFound
from ..idempotency import Outcome, remember, replay
from ..models import QualityRuleSet, utcnow
from ..permissions import Forbidden
from ..runtime import Runtime
from ..users import Person
from ..vocabulary import ExceptionCategory, Severity
from ..workflow_store import canonical, sha256
from . import integrity

DEVIATION = ("never", "if_critical", "always")
KEYS = ("severity", "critical_severity", "signatures", "blocks_release", "deviation", "auto_close")
#: a rule file is small; anything bigger is not a rule set
MAX_RULES_BYTES = 64 * 1024


@dataclass(frozen=True)
class Rule:
    category: str
    severity: str
    critical_severity: str
    signatures: int
    blocks_release: bool
    deviation: str
    auto_close: bool

    def outcome(self, critical: bool) -> dict[str, Any]:
        """What an exception of this category gets, given whether it touches a critical
        parameter or step."""
        severity = self.critical_severity if critical else self.severity
        # a critical parameter or step is never waved through by the system, whatever the rule
        never_auto = critical or severity == Severity.CRITICAL or ExceptionCategory(self.category).data_integrity
        return {
            "severity": severity,
            "signatures_required": self.signatures,
            "blocks_release": self.blocks_release,
            "opens_deviation": self.deviation == "always" or (self.deviation == "if_critical" and critical),
            "auto_close": self.auto_close and not never_auto,
        }


@dataclass(frozen=True)
class RuleSet:
    version: int | None  # None: the built-in rules (no rule set approved yet)
    rules: dict[str, Rule]

    def rule(self, category: str) -> Rule:
        return self.rules[category]


def default_content() -> dict[str, Any]:
    """The packaged default rules (``workflows/qa/exception_rules.json``)."""
    text = resources.files("workflows").joinpath("qa/exception_rules.json").read_text("utf-8")
    return json.loads(text)


def builtin() -> RuleSet:
    """The rules before any rule set is approved: the defaults, nothing auto-closed."""
    categories = check(default_content())
    return RuleSet(None, {c: Rule(c, **{**r, "auto_close": False}) for c, r in categories.items()})


def check(content: Any) -> dict[str, dict[str, Any]]:
    """The categories of a rule file, checked: every category present, each value of the
    right kind, no auto-closure where it is never allowed. Errors name each category."""
    if not isinstance(content, dict) or not isinstance(content.get("categories"), dict):
        raise InvalidInput("a rule set is a JSON object with a 'categories' object", code="rules_invalid")
    given = content["categories"]
    problems: dict[str, str] = {}
    for name in sorted(set(given) - set(ExceptionCategory)):
        problems[str(name)[:60]] = "unknown category"
    out: dict[str, dict[str, Any]] = {}
    for category in ExceptionCategory:
        rule = given.get(category.value)
        if not isinstance(rule, dict):
            problems[category.value] = "missing (every category needs a rule)"
            continue
        problem = _check_rule(category, rule)
        if problem:
            problems[category.value] = problem
        else:
            out[category.value] = {k: rule[k] for k in KEYS}
    if problems:
        raise InvalidInput(
            f"the rule set has {len(problems)} problem(s)", code="rules_invalid", details={"categories": problems}
        )
    return out


def _check_rule(category: ExceptionCategory, rule: dict[str, Any]) -> str | None:
    extra = set(rule) - set(KEYS)
    if extra:
        return f"unknown key(s): {', '.join(sorted(str(k)[:40] for k in extra))}"
    if any(k not in rule for k in KEYS):
        return f"needs all of: {', '.join(KEYS)}"
    for key in ("severity", "critical_severity"):
        if rule[key] not in tuple(Severity):
            return f"{key} is one of minor, major, critical"
    if rule["signatures"] not in (1, 2) or isinstance(rule["signatures"], bool):
        return "signatures is 1 or 2"
    for key in ("blocks_release", "auto_close"):
        if not isinstance(rule[key], bool):
            return f"{key} is true or false"
    if rule["deviation"] not in DEVIATION:
        return f"deviation is one of {', '.join(DEVIATION)}"
    if rule["auto_close"] and (rule["severity"] == Severity.CRITICAL or category.data_integrity):
        return "critical and data-integrity exceptions can never close themselves"
    return None


def in_force(s: Session) -> RuleSet:
    """The newest approved rule set, or the built-in rules."""
    row = s.scalars(
        select(QualityRuleSet).where(QualityRuleSet.status == "approved").order_by(QualityRuleSet.version.desc())
    ).first()
    if row is None or not integrity.rule_set_intact(row):
        # rules changed behind Batchline's back are not applied: the built-in rules close
        # nothing by themselves and block release (``audit verify`` reports the row)
        return builtin()
    return RuleSet(row.version, {c: Rule(c, **r) for c, r in row.rules.items()})


def describe(row: QualityRuleSet) -> dict[str, Any]:
    return {
        "version": row.version,
        "status": row.status,
        "content_hash": row.content_hash,
        "comment": row.comment,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "approved_by": row.approved_by,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        "categories": row.rules,
    }


def import_rules(rt: Runtime, content: Any, *, user: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Store a rule file as a new draft version (audited). With ``idempotency_key`` a
    repeated request answers with the version the first one made."""
    categories = check(content)
    comment = content.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 2000:
        raise InvalidInput("comment is a text of at most 2000 characters", code="rules_invalid")
    request = {"categories": categories, "comment": comment}
    scope = f"rules|user:{user}"
    with rt.transaction() as s:
        if idempotency_key:
            stored = replay(s, scope, idempotency_key, request)
            if stored is not None:
                return stored.body
        version = (s.scalar(select(func.max(QualityRuleSet.version))) or 0) + 1
        row = QualityRuleSet(
            version=version,
            rules=categories,
            content_hash=sha256(canonical(categories)),
            status="draft",
            comment=comment,
            created_by=user,
            created_at=utcnow(),
        )
        s.add(row)
        audit.record(
            s,
            user=user,
            action="rules.imported",
            object_type="quality_rule_set",
            object_id=str(version),
            new={"status": "draft", "content_hash": row.content_hash},
        )
        s.flush()
        answer = describe(row)
        if idempotency_key:
            remember(s, scope, idempotency_key, request, Outcome(201, answer))
        return answer


def approve(rt: Runtime, version: int, *, signer: Person, meaning: str = "Approved") -> dict[str, Any]:
    """Put a draft in force, e-signed by a QA person other than its author; the version in
    force until now becomes superseded."""
    if "qa" not in signer.roles:
        raise Forbidden("only QA approves exception rules", code="forbidden")
    with rt.transaction() as s:
        row = s.scalars(select(QualityRuleSet).where(QualityRuleSet.version == version)).first()
        if row is None:
            raise NotFound(f"rule set version {version} not found", code="rules_not_found")
        if row.status != "draft":
            raise Conflict(
                f"rule set version {version} is {row.status}; only a draft can be approved",
                code="rules_not_draft",
                details={"status": row.status},
            )
        if row.created_by == signer.username:
            raise Forbidden("the author of a rule set cannot approve it", code="author_cannot_approve")
        for older in s.scalars(select(QualityRuleSet).where(QualityRuleSet.status == "approved")):
            older.status = "superseded"
            audit.record(
                s,
                user=signer.username,
                action="rules.status",
                object_type="quality_rule_set",
                object_id=str(older.version),
                field="status",
                old="approved",
                new="superseded",
            )
        row.status = "approved"
        row.approved_by = signer.username
        row.approved_at = utcnow()
        audit.record(
            s,
            user=signer.username,
            action="rules.approved",
            object_type="quality_rule_set",
            object_id=str(version),
            field="status",
            old="draft",
            new={
                "status": "approved",
                "printed_name": signer.printed_name,
                "meaning": meaning,
                "content_hash": row.content_hash,
            },
        )
        return describe(row)


def list_rule_sets(rt: Runtime) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        return [describe(r) for r in s.scalars(select(QualityRuleSet).order_by(QualityRuleSet.version.desc()))]
