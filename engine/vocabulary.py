"""The words of the batch record: batch states, step kinds, exception sources and
severities, recipe statuses, job kinds and states, why a session ended.

They are ``StrEnum`` members, so they compare equal to the strings stored in the
database and sent over the API ("running" == BatchState.RUNNING) and need no
conversion at either boundary; a typo in code, though, is an AttributeError instead of
a silent "no match".
"""

from __future__ import annotations

from enum import StrEnum


class BatchState(StrEnum):
    """Batchline's ISA-88 layer over the workflow (SpiffWorkflow has no hold)."""

    IDLE = "idle"
    RUNNING = "running"
    HELD = "held"
    COMPLETE = "complete"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        """A finished batch accepts no step and waits for nothing."""
        return self in (BatchState.COMPLETE, BatchState.ABORTED)


class StepKind(StrEnum):
    """What recorded a step: a person's form, a service task, a message or a timer."""

    USER_TASK = "user_task"
    SERVICE_TASK = "service_task"
    MESSAGE = "message"
    TIMER = "timer"


class ExceptionSource(StrEnum):
    """Where an exception to the expected execution came from."""

    LIMIT = "limit"
    TREND = "trend"
    INCIDENT = "incident"


class Severity(StrEnum):
    """Alert limits warn; action limits call for action (ISA / GMP usage)."""

    ALERT = "alert"
    ACTION = "action"


class ExceptionStatus(StrEnum):
    OPEN = "open"
    REVIEWED = "reviewed"


class RecipeStatus(StrEnum):
    """A recipe version's lifecycle; only approved versions run."""

    DRAFT = "draft"
    APPROVED = "approved"
    RETIRED = "retired"


class JobKind(StrEnum):
    """Background work the job executor runs. The engine schedules every kind below; the
    handlers of ``SCORE_STEP`` and ``SCORE_SAMPLES`` come from the analytics package
    (``Runtime.job_handlers``), so an install without analytics schedules none."""

    TIMER = "timer"
    SERVICE_TASK = "service_task"
    DELIVER = "deliver"
    SCORE_STEP = "score_step"
    SCORE_SAMPLES = "score_samples"


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
