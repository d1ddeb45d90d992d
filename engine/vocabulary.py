"""The words of the batch record: batch states, step kinds, exception sources and
severities, recipe statuses, job kinds and states, why a session ended.

They are ``StrEnum`` members, so they compare equal to the strings stored in the
database and sent over the API ("running" == BatchState.RUNNING) and need no
conversion at either boundary; a typo in code, though, is an AttributeError instead of
a silent "no match".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class BatchState(StrEnum):
    """Batchline's ISA-88 layer over the workflow (SpiffWorkflow has no hold)."""

    IDLE = "idle"
    RUNNING = "running"
    HELD = "held"
    COMPLETE = "complete"
    ABORTED = "aborted"
    #: QA's disposition of a complete batch (engine.quality.release): final states
    RELEASED = "released"
    REJECTED = "rejected"

    @property
    def finished(self) -> bool:
        """A finished batch accepts no step and waits for nothing."""
        return self in (BatchState.COMPLETE, BatchState.ABORTED, BatchState.RELEASED, BatchState.REJECTED)


class StepKind(StrEnum):
    """What recorded a step: a person's form, a service task, a message or a timer."""

    USER_TASK = "user_task"
    SERVICE_TASK = "service_task"
    MESSAGE = "message"
    TIMER = "timer"


class ExceptionSource(StrEnum):
    """Where an exception to the expected execution came from (who or what raised it)."""

    LIMIT = "limit"
    TREND = "trend"
    INCIDENT = "incident"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    TIMER = "timer"
    CORRECTION = "correction"
    EQUIPMENT = "equipment"


class ExceptionCategory(StrEnum):
    """What kind of exception it is: the quality rule set maps each category to a
    severity, the signatures its disposition needs, whether it blocks release, opens a
    deviation or may close itself (engine.quality.rules)."""

    LIMIT_ALERT = "limit.alert"
    LIMIT_ACTION = "limit.action"
    OOT_VALUE = "oot.value"
    OOT_DURATION = "oot.duration"
    STEP_LATE = "step.late"
    EVENT_DOCUMENTATION = "event.documentation"
    EVENT_PROCESS = "event.process"
    EVENT_EQUIPMENT = "event.equipment"
    EVENT_MATERIAL = "event.material"
    EVENT_SAFETY = "event.safety"
    OVERRIDE = "override"
    CORRECTION_AFTER_SIGNING = "correction.after_signing"
    INCIDENT = "incident"
    EQUIPMENT_ALARM = "equipment.alarm"
    DATA_INTEGRITY = "data_integrity"

    @property
    def data_integrity(self) -> bool:
        """Categories about the record itself: never closed by the system."""
        return self in (ExceptionCategory.CORRECTION_AFTER_SIGNING, ExceptionCategory.DATA_INTEGRITY)

    @property
    def label(self) -> str:
        """The category in a reviewer's words (record, review page, PDF)."""
        return CATEGORY_TITLES[self.value]


#: what each exception category is called where people read it
CATEGORY_TITLES = {
    "limit.alert": "Out of alert limit",
    "limit.action": "Out of action limit",
    "oot.value": "Out of trend",
    "oot.duration": "Unusual step duration",
    "step.late": "Late step",
    "event.documentation": "Documentation event",
    "event.process": "Process event",
    "event.equipment": "Equipment event",
    "event.material": "Material event",
    "event.safety": "Safety event",
    "override": "Supervisor override",
    "correction.after_signing": "Correction after signing",
    "incident": "Incident",
    "equipment.alarm": "Equipment alarm",
    "data_integrity": "Data integrity",
}


def exception_title(category: str, details: dict[str, Any] | None = None) -> str:
    """An exception's title as a reviewer reads it. A limit breach keeps its category
    title; an out-of-trend finding says it is out of trend, by which rule, against which
    history (the model version and how many batches it learned from) - never "out of
    limit": a value can be out of trend well inside its alert and action limits."""
    title = CATEGORY_TITLES.get(category, category)
    if not category.startswith("oot.") or not details:
        return title
    rule = details.get("rule")
    if category == "oot.duration":
        what = "step took " + ("longer" if details.get("direction") == "too_long" else "shorter") + " than usual"
    elif rule in ("T2", "SPE"):
        what = f"equipment {'T²' if rule == 'T2' else 'SPE'} beyond its limit"
        if details.get("unit_procedure"):
            what += f" ({details['unit_procedure']})"
    elif rule == 1:
        what = "beyond the usual range (rule 1)"
    elif isinstance(rule, int):
        what = f"run rule {rule}" + (f": {details['rule_description']}" if details.get("rule_description") else "")
    else:
        what = "unusual"
    history = ""
    if details.get("model_version") is not None:
        n = details.get("training_batches")
        history = f" · model v{details['model_version']}" + (f", {n} batches" if n else "")
    return f"Out of trend: {what}{history}"


class LimitLevel(StrEnum):
    """Alert limits warn; action limits call for action (ISA / GMP usage)."""

    ALERT = "alert"
    ACTION = "action"


class Severity(StrEnum):
    """How much an exception matters to the product (the rule set decides per category)."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class ExceptionStatus(StrEnum):
    """open -> accepted (dispositioned) | escalated (a deviation) -> closed."""

    OPEN = "open"
    ACCEPTED = "accepted"
    ESCALATED = "escalated"
    CLOSED = "closed"

    @property
    def resolved(self) -> bool:
        """Nothing left to do for release."""
        return self in (ExceptionStatus.ACCEPTED, ExceptionStatus.CLOSED)


class Decision(StrEnum):
    """What a disposition of an exception decided."""

    ACCEPT = "accept"
    ESCALATE = "escalate"
    AUTO_CLOSE = "auto_close"
    CLOSE = "close"


class RecipeStatus(StrEnum):
    """A recipe version's lifecycle: draft → in_review → approved → effective (from its
    effective date) → superseded (a newer version became effective) / retired. Approved
    and effective versions run; new batches take the effective one."""

    DRAFT = "draft"
    APPROVED = "approved"
    RETIRED = "retired"
    IN_REVIEW = "in_review"
    EFFECTIVE = "effective"
    SUPERSEDED = "superseded"


class JobKind(StrEnum):
    """Background work the job executor runs. The engine schedules every kind below; the
    handlers of ``SCORE_STEP`` and ``SCORE_SAMPLES`` come from the analytics package
    (``Runtime.job_handlers``), so an install without analytics schedules none."""

    TIMER = "timer"
    SERVICE_TASK = "service_task"
    DELIVER = "deliver"
    SCORE_STEP = "score_step"
    SCORE_SAMPLES = "score_samples"
    #: a user task's ``due`` time passed: raise ``step.late`` unless it was completed
    STEP_DUE = "step_due"
    #: start a quality process (QA's BPMN) about a completed batch or an escalated exception
    START_QUALITY_PROCESS = "start_quality_process"
    #: send a completed process order's confirmation (OperationsPerformance) to the ERP
    ERP_CONFIRMATION = "erp_confirmation"


class JobState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SessionEnd(StrEnum):
    """Why a browser session ended (``login_session.revoked_reason``)."""

    LOGOUT = "logout"
    #: the same browser logged in again: its earlier session ends (no two in one cookie jar)
    REPLACED = "replaced_by_login"
    TIMEOUT = "timeout"
    DEACTIVATED = "account_deactivated"
    LOCKED = "account_locked"
    PASSWORD_CHANGED = "password_changed"


class AuditScheme(StrEnum):
    """How an audit entry's hash was made: ``sha256`` entries predate the audit key
    (accepted only before the first keyed entry); ``hmac-sha256`` entries are sealed."""

    LEGACY = "sha256"
    KEYED = "hmac-sha256"
