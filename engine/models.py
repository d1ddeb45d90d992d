"""Batchline's tables: recipes (what can happen) and batches (what did happen).

The split mirrors SpiffWorkflow's specs vs tasks. The batch record (``Step``) and the
audit trail (``AuditEvent``) are Batchline's own append-only tables; Spiff's task data
holds only ids and scalars. Workflow state is kept per Spiff task row
(``WorkflowTask``) with data de-duplicated by hash (``TaskData``) and specs stored once
by hash (``WorkflowSpec``): saving a step writes only the rows that changed, never a
whole-workflow blob (the blob is quadratic over a long batch: see docs/architecture.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from .vocabulary import AuditScheme, BatchState, ExceptionStatus, RecipeStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on both SQLite and PostgreSQL (SQLite stores no
    zone: values are written as UTC and read back as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


BigId = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


# --- recipes -------------------------------------------------------------------------


class WorkflowSpec(Base):
    """A serialized SpiffWorkflow spec set (process + called processes), stored once by hash."""

    __tablename__ = "workflow_spec"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class RecipeVersion(Base):
    """One version of a recipe: BPMN files, forms, content hash and lifecycle status."""

    __tablename__ = "recipe_version"
    __table_args__ = (
        UniqueConstraint("recipe", "version", name="uq_recipe_version"),
        UniqueConstraint("recipe", "content_hash", name="uq_recipe_content"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipe: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    process_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=RecipeStatus.APPROVED)  # a RecipeStatus
    content_hash: Mapped[str] = mapped_column(String(64))
    spec_hash: Mapped[str] = mapped_column(ForeignKey("workflow_spec.hash"))
    bpmn: Mapped[dict[str, Any]] = mapped_column(JSON)  # file name -> XML text
    forms: Mapped[dict[str, Any]] = mapped_column(JSON)  # form id -> form-js JSON
    tasks: Mapped[list[Any]] = mapped_column(JSON)  # user/service task summary
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    #: from when an approved version is the one new batches take (default: its approval)
    effective_from: Mapped[datetime | None] = mapped_column(nullable=True)
    #: the user ids who signed the approval (reviewer first, then the approvers)
    approved_by: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- people ------------------------------------------------------------------------


class User(Base):
    """A person or a service account. User ids are unique and never reused: accounts are
    deactivated, never deleted (21 CFR 11.100). Passwords are stored as argon2 hashes
    only; nobody, admins included, can read them (11.300)."""

    __tablename__ = "app_user"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_app_user_external"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    printed_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="person")  # person | service
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: the lock ends by itself at this time (None while locked: until an administrator unlocks)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    #: locks since the last successful sign-in (each lasts twice as long as the one before)
    lock_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100))
    #: ``local`` (password kept here), ``ldap`` or ``oidc`` (engine.identity)
    source: Mapped[str] = mapped_column(String(20), default="local", server_default="local")
    #: the directory's own never-reassigned id of the person (entryUUID, objectGUID, OIDC sub)
    external_id: Mapped[str | None] = mapped_column(String(300), nullable=True)


class AuthFailure(Base):
    """One failed password check, counted for the rate limits (``engine.throttle``) by
    client address and by account. Kept in the database so every app node sees the same
    counts; rows older than the window are deleted as new ones arrive."""

    __tablename__ = "auth_failure"
    __table_args__ = (Index("ix_auth_failure_key_at", "key", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token for a service account (or a person's script); only its hash is kept."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class LoginSession(Base):
    """A browser session, held on the server: the cookie carries a random token, the row
    only its SHA-256 (``id``), so reading the table gives no way in. Logout, the
    inactivity timeout, deactivation and locking set ``revoked_at``; a revoked or idle
    session never comes back (``engine.sessions``)."""

    __tablename__ = "login_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(50), nullable=True)


# --- batches -------------------------------------------------------------------------


class Batch(Base):
    """A batch: pins one recipe version by id and content hash.

    ``state`` is Batchline's ISA-88 layer (idle/running/held/complete/aborted) — Spiff
    has no hold. ``revision`` counts committed changes to the workflow state: the
    in-memory workflow cache is valid only while it matches.
    """

    __tablename__ = "batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(100), unique=True)
    recipe_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    recipe_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default=BatchState.IDLE)  # a BatchState
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    step_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: set when QA has reviewed the record; corrections are refused afterwards
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: ``production`` (a recipe run) or ``quality`` (a QA flow about a subject, see
    #: ``engine.quality.processes``): production lists and analytics leave quality out
    kind: Mapped[str] = mapped_column(String(20), default="production", server_default="production")
    #: the hold in force (a supervisor's, with the reason): None while the batch is not held
    held_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    held_at: Mapped[datetime | None] = mapped_column(nullable=True)
    hold_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: the revision the ready-task index (``ReadyTask``) reflects; another value (None
    #: after the upgrade, or a change by a previous release) means: re-index on first use
    ready_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: what a quality process is about: ``batch`` | ``exception`` | ``recipe_version``
    subject_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: the subject's id: a batch id, an exception id, a recipe version id (as text)
    subject_id: Mapped[str | None] = mapped_column(String(100), nullable=True)


class Step(Base):
    """One entry of the batch record. Append-only: rows are never updated or deleted."""

    __tablename__ = "step"
    __table_args__ = (
        UniqueConstraint("batch_id", "seq", name="uq_step_seq"),
        UniqueConstraint("batch_id", "task_id", "kind", name="uq_step_task"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # a StepKind
    task_id: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    task_name: Mapped[str] = mapped_column(String(500))
    form_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    recipe_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    user: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    units: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: SHA-256 of the form definition the values were checked against
    form_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    values_hash: Mapped[str] = mapped_column(String(64))


class Signature(Base):
    """An electronic signature (21 CFR 11.50/11.70): printed name, UTC time and meaning,
    bound to the SHA-256 of exactly what was signed. Never changed; a correction that
    replaces a signed value supersedes the earlier signatures of that step (derived when
    the record is shown: a signature older than a correction of its step is superseded)."""

    __tablename__ = "signature"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    step_seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(20))  # performer | witness | corrector
    username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: for a corrector's signature: the correction it signs
    correction_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Correction(Base):
    """A corrected value of a recorded step: the original stays; this row adds the new
    value with its mandatory reason (and the corrector's signature)."""

    __tablename__ = "correction"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    step_seq: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(200))
    old: Mapped[str | None] = mapped_column(Text, nullable=True)
    new: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    username: Mapped[str] = mapped_column(String(100))
    corrected_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskAssignment(Base):
    """A supervisor's reassignment of an operator task to one person."""

    __tablename__ = "task_assignment"
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class IdempotentRequest(Base):
    """The first answer to a request carrying an ``Idempotency-Key``, replayed verbatim."""

    __tablename__ = "idempotent_request"
    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchException(Base):
    """An exception for review by exception, whatever raised it (engine.quality.exceptions):
    a limit breach, an out-of-trend finding, a late step, an operator's event, an override,
    a correction after signing, an incident, an equipment alarm. Raised in the transaction
    of what caused it; the rule set in force then fixes its severity and what it needs."""

    __tablename__ = "batch_exception"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    step_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(String(30))  # an ExceptionSource
    category: Mapped[str] = mapped_column(String(40), default="limit.alert")  # an ExceptionCategory
    severity: Mapped[str] = mapped_column(String(20))  # a Severity
    parameter: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: the value and its limits or expected range, as shown to the reviewer
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    raised_by: Mapped[str] = mapped_column(String(200), default="system")
    status: Mapped[str] = mapped_column(String(20), default=ExceptionStatus.OPEN)  # an ExceptionStatus
    #: what the rule set in force when it was raised says (None: the built-in rules)
    rule_set_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signatures_required: Mapped[int] = mapped_column(Integer, default=1)
    blocks_release: Mapped[bool] = mapped_column(Boolean, default=True)
    opens_deviation: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: what makes an out-of-trend finding the same finding (SHA-256 of batch, step or unit
    #: procedure, parameter, rule, model): unique, so two scoring jobs of one batch raise it
    #: once whatever their timing. None for every other exception.
    finding_key: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True, index=True)


class ExceptionDisposition(Base):
    """A QA decision on an exception, e-signed (or the system's auto-closure under a rule
    set version). Append-only: a second QA signature is a second row."""

    __tablename__ = "exception_disposition"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exception_id: Mapped[int] = mapped_column(ForeignKey("batch_exception.id"), index=True)
    decision: Mapped[str] = mapped_column(String(20))  # a Decision
    justification: Mapped[str] = mapped_column(Text)
    username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    rule_set_version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class BatchDisposition(Base):
    """QA's release or rejection of a batch, e-signed (*Released* / *Rejected*). Append-only."""

    __tablename__ = "batch_disposition"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    decision: Mapped[str] = mapped_column(String(20))  # released | rejected
    comment: Mapped[str] = mapped_column(Text)
    username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))


class QualityRuleSet(Base):
    """A version of the exception rules (category -> severity, signatures, blocks release,
    opens a deviation, auto-close). QA imports a draft; another QA person approves it with
    an e-signature; the newest approved version is in force (engine.quality.rules)."""

    __tablename__ = "quality_rule_set"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft | approved | superseded
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Attachment(Base):
    """An uploaded file (a chart printout, a photo of a label), stored once by SHA-256;
    a form's attachment field refers to it by that hash."""

    __tablename__ = "attachment"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrendModel(Base):
    """A trained out-of-trend model for one recipe step (and parameter): its model card
    as JSON (never a pickle). Retraining adds a new version and deactivates the old one;
    rows are never changed otherwise. Written and read by the ``analytics`` package."""

    __tablename__ = "trend_model"
    __table_args__ = (
        UniqueConstraint("recipe", "bpmn_id", "parameter", "kind", "version", name="uq_trend_model_version"),
        Index("ix_trend_model_active", "recipe", "bpmn_id", "active"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipe: Mapped[str] = mapped_column(String(200))
    #: the recipe version the model was trained for (the newest approved one at training)
    recipe_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    parameter: Mapped[str] = mapped_column(String(200))  # form field key; "" for a step duration
    kind: Mapped[str] = mapped_column(String(50))  # UnivariateMonitor | DurationMonitor | ...
    version: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str | None] = mapped_column(String(50), nullable=True)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    trained_by: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the training run that made this version (``TrendTraining``): its evaluation report and
    #: QA's e-signed approval; a version scores only once that run is approved (``active``)
    training_id: Mapped[int | None] = mapped_column(ForeignKey("trend_training.id"), nullable=True, index=True)


class EquipmentSample(Base):
    """One reading of a unit procedure's equipment variables for a batch (variable name ->
    number), at ``t_hours`` since the unit procedure started (or the batch maturity the
    sender computed). Append-only; scored by the ``analytics`` package (``score_samples``)."""

    __tablename__ = "equipment_sample"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    unit_procedure: Mapped[str] = mapped_column(String(200))  # the call activity / called process id
    t_hours: Mapped[float] = mapped_column(Float)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(100))  # equipment id


# --- materials and equipment (checked when an operator scans them) ------------------


class MaterialLot(Base):
    __tablename__ = "material_lot"
    lot_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    material: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="released")  # quarantine | released | rejected | expired
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: quantity on hand, in ``unit`` (the material's unit); None for lots known only by id
    quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    #: the batch that produced the lot (None for received lots)
    produced_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(nullable=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True, default=utcnow)
    # p12-masterdata (migration 0014_masterdata): why the lot has its status (QA's reason,
    # what a refused scan says) and the version a change names to refuse a lost update
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True, default=0)


class Equipment(Base):
    __tablename__ = "equipment"
    equipment_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    equipment_class: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(
        String(20), default="clean"
    )  # clean | dirty | in_use | maintenance | out_of_service
    calibrated_until: Mapped[datetime | None] = mapped_column(nullable=True)
    in_use_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # batch_id
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the OPC UA connector instance that reaches this equipment, if any
    connector: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True, default=utcnow)
    # p12-masterdata (migration 0014_masterdata): why it has its status (maintenance's
    # reason, what a refused scan says), the days a calibration holds when the SOP's form
    # gives no date, and the version a change names to refuse a lost update
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    calibration_interval_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True, default=0)
    #: the unit procedure (call activity task id) that took it; None: the batch itself
    in_use_scope: Mapped[str | None] = mapped_column(String(64), nullable=True)


# --- workflow state (per Spiff task row) --------------------------------------------


class TaskData(Base):
    """Spiff task data, de-duplicated by SHA-256 of its canonical JSON."""

    __tablename__ = "task_data"
    hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


class WorkflowState(Base):
    """Top-level workflow attributes of one batch (everything but its task rows)."""

    __tablename__ = "workflow_state"
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), primary_key=True)
    spec_hash: Mapped[str] = mapped_column(ForeignKey("workflow_spec.hash"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)


class WorkflowProcess(Base):
    """One (sub)process instance of a batch: '' is the top process, else the call
    activity's task id. ``attributes`` holds data hash, root, last task, completion."""

    __tablename__ = "workflow_process"
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    parent_process_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    spec_name: Mapped[str] = mapped_column(String(200))
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)


class WorkflowTask(Base):
    """One Spiff task. ``live`` is false once the task has been pruned from the live
    tree (a finished loop iteration): the row stays as history, it is not loaded."""

    __tablename__ = "workflow_task"
    __table_args__ = (Index("ix_workflow_task_live", "batch_id", "live"),)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(36))
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    children: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[int] = mapped_column(Integer)
    spec_name: Mapped[str] = mapped_column(String(200))
    triggered: Mapped[bool] = mapped_column(Boolean, default=False)
    last_state_change: Mapped[float] = mapped_column(Float)
    internal_data: Mapped[dict[str, Any]] = mapped_column(JSON)
    data_hash: Mapped[str] = mapped_column(String(64))
    live: Mapped[bool] = mapped_column(Boolean, default=True)


class MessageSubscription(Base):
    """A batch waiting for a message, with the correlation values it expects."""

    __tablename__ = "message_subscription"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(String(200), index=True)
    correlation: Mapped[dict[str, Any]] = mapped_column(JSON)


# --- audit, jobs, events -------------------------------------------------------------


class AuditEvent(Base):
    """Append-only audit trail entry; ``hash`` chains it to the previous entry (an HMAC
    under the audit key, which the database does not hold: engine/audit)."""

    __tablename__ = "audit_event"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    user: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    field: Mapped[str | None] = mapped_column(String(200), nullable=True)
    old: Mapped[str | None] = mapped_column(Text, nullable=True)
    new: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: an AuditScheme: ``hmac-sha256`` (sealed with the audit key) or ``sha256`` (legacy)
    scheme: Mapped[str] = mapped_column(String(20), default=AuditScheme.KEYED, server_default=AuditScheme.LEGACY)
    #: the record rows this entry records (table, id, row hash): canonical JSON, sealed
    bound: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditHead(Base):
    """Single row holding the newest audit hash; locking it serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    #: the scheme of the newest entry (an AuditScheme); a legacy head is sealed on next append
    scheme: Mapped[str] = mapped_column(String(20), default=AuditScheme.KEYED, server_default=AuditScheme.LEGACY)


class Job(Base):
    """A unit of background work (timer, service task, event delivery), Camunda-7 style."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_due", "state", "due_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(30))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id"), nullable=True, index=True)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|done|failed|cancelled
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Incident(Base):
    """Recorded when a job's retries run out: someone must look at it."""

    __tablename__ = "incident"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batch.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class OutboxEvent(Base):
    """An event written in the same transaction as the change it reports (CloudEvents 1.0
    fields). ``seq`` is the primary key so delivery order is insertion order."""

    __tablename__ = "outbox_event"
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    time: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- the QMS link: event subscribers, deviations, inbound QMS messages (engine/qms) ---


class EventSubscriber(Base):
    """A receiver of outbox events configured without code (a webhook, a QMS or an MQTT
    broker). Its secret (and an MQTT broker password) is stored encrypted under a key
    file the database does not hold (engine/qms/secrets.py); rows are disabled, never
    deleted."""

    __tablename__ = "event_subscriber"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    kind: Mapped[str] = mapped_column(String(20), default="webhook")  # webhook | qms | mqtt
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # --- p12-events: MQTT subscribers (``url`` is then the broker, mqtt:// or mqtts://) ---
    #: the topic every event goes under: ``<topic_prefix>/<event type, dots as slashes>``
    topic_prefix: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: the broker account (optional); its password is encrypted like a secret, never shown
    username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)


class QmsDeviation(Base):
    """The QMS's deviation for one exception: its number, status and CAPA reference."""

    __tablename__ = "qms_deviation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exception_id: Mapped[int] = mapped_column(ForeignKey("batch_exception.id"), unique=True)
    qms: Mapped[str] = mapped_column(String(100))
    number: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(50))
    capa: Mapped[str | None] = mapped_column(String(100), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QmsInboundEvent(Base):
    """A QMS message whose signature verified, kept with its body; the unique
    ``webhook_id`` makes a replay answer 200 without a second effect."""

    __tablename__ = "qms_inbound_event"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(200), unique=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("event_subscriber.id"))
    type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Qualification(Base):
    """One e-signed entry of a person's training record (21 CFR 11.10(i)): a grant of a
    qualification valid until a date, or its revocation (``revoked_at`` set, no
    ``valid_until``). Append-only: a renewal or a revocation is a new row and the person's
    current state is the newest row per qualification (``engine.qualifications``)."""

    __tablename__ = "qualification"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    qualification: Mapped[str] = mapped_column(String(64), index=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    granted_by: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))


# --- running-batch migrations (engine.recipe_versions.migration) ---------------------


class BatchMigration(Base):
    """A supervisor's request to move a running batch to a newer version of its recipe,
    and what became of it: ``requested`` -> ``approved`` (QA's e-signature, the batch
    moved) or ``refused`` (its position no longer mapped when QA approved). Status
    changes are audited; the signature is its own append-only row."""

    __tablename__ = "batch_migration"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    from_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    #: the position when it was checked: mapped elements, or the problems that refused it
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BatchMigrationSignature(Base):
    """QA's e-signature approving a migration (*Approved*), bound to the SHA-256 of what
    was approved. Append-only."""

    __tablename__ = "batch_migration_signature"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    migration_id: Mapped[int] = mapped_column(ForeignKey("batch_migration.id"), index=True)
    username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))


# --- equipment logbook (engine.equipment_logbook) ------------------------------------


class EquipmentLogEntry(Base):
    """One entry of an equipment's logbook, written on the step path by a user task with
    a ``logbook`` property (a calibration, a daily check, CIP, SIP, line clearance, a use):
    the scanned equipment, the batch and step that did it and the step's values.
    Append-only, bound into the audit chain."""

    __tablename__ = "equipment_log_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    equipment_id: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # an engine.equipment_logbook.KINDS entry
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    step_seq: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- task times (engine.batches.task_times) ------------------------------------------


class TaskTime(Base):
    """When something happened to a task of a batch, once: ``ready`` (the task started
    waiting for an operator, recorded in the transaction that committed that workflow
    state), ``opened`` (someone first opened it), ``started`` / ``ended`` (a unit
    procedure's call activity began / finished; ``bpmn_id`` is the called process). The
    batch record has only completion times; a step's duration needs its start, and in
    parallel branches the previous record is not it. Append-only, one row per task and kind."""

    __tablename__ = "task_time"
    __table_args__ = (UniqueConstraint("batch_id", "task_id", "kind", name="uq_task_time"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(64))  # the Spiff task id (Step.task_id)
    kind: Mapped[str] = mapped_column(String(10))  # ready | opened | started | ended
    bpmn_id: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # who opened it


# --- out-of-trend models as GMP records (analytics.model_review) ---------------------


class TrendTraining(Base):
    """One training run of a recipe's out-of-trend models: who trained, on what, and the
    evaluation report QA approves (features, limits, training batches, false alarms on
    held-out released batches, what had not enough history). Append-only: the report is
    what the approval signs (``report_hash``); the run's state is its decision row."""

    __tablename__ = "trend_training"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipe: Mapped[str] = mapped_column(String(200), index=True)
    recipe_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    trained_by: Mapped[str] = mapped_column(String(200))
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_only: Mapped[bool] = mapped_column(Boolean, default=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    report_hash: Mapped[str] = mapped_column(String(64))


class TrendTrainingDecision(Base):
    """QA's e-signed decision on a training run (approved: its models score from now on;
    rejected: they never do). One per run (unique), never changed: a second approval of
    the same run, replayed or concurrent, is refused by the database too. Append-only."""

    __tablename__ = "trend_training_decision"
    __table_args__ = (UniqueConstraint("training_id", name="uq_trend_training_decision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    training_id: Mapped[int] = mapped_column(ForeignKey("trend_training.id"))
    decision: Mapped[str] = mapped_column(String(20))  # approved | rejected
    username: Mapped[str] = mapped_column(String(100))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    report_hash: Mapped[str] = mapped_column(String(64))


# --- plant master data and integration (issue 12) -------------------------------------


class Material(Base):
    """A material the plant consumes or produces, by its code (the ERP's material number),
    with the unit its lots are counted in. Changes are audited; a material is never
    deleted (``active`` false retires it), because lots and batch records name it."""

    __tablename__ = "material"
    material_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(20))  # L, mL, kg, g, vial, unit...
    #: raw_material | media | buffer | cell_bank | intermediate | drug_substance | consumable
    kind: Mapped[str] = mapped_column(String(30), default="raw_material")
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: p12-masterdata (migration 0014_masterdata): the version a change names
    version: Mapped[int | None] = mapped_column(Integer, nullable=True, default=0)


class LotMovement(Base):
    """Genealogy: a lot consumed by a batch (at a step, with its quantity) or a lot a
    batch produced. Tracing backward from a lot follows ``produced`` to its batch and that
    batch's ``consumed`` lots, recursively; forward the other way. Append-only (a wrong
    movement is corrected by a reversing one, never edited)."""

    __tablename__ = "lot_movement"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # consumed | produced
    lot_id: Mapped[str] = mapped_column(String(100), index=True)
    material: Mapped[str] = mapped_column(String(100))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), index=True)
    step_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    quantity: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str | None] = mapped_column(String(20), nullable=True)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConnectorInstance(Base):
    """A configured connection to another system (an ERP, a LIMS, an OPC UA server): the
    name a service task uses, its type (an entry point of ``batchline.connector_types``),
    where it is and how to sign in. The secret is stored Fernet-encrypted under a key the
    database does not hold, or referenced (``env:NAME``, ``file:/path``); it is never
    returned or logged. Rows are never deleted (``enabled`` false), changes audited."""

    __tablename__ = "connector_instance"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(50))
    endpoint: Mapped[str] = mapped_column(String(500), default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_ref: Mapped[str | None] = mapped_column(String(300), nullable=True)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class ProcessOrder(Base):
    """A process order received from the ERP (a B2MML ``OperationsRequest``): its id is the
    batch id, so a resent order finds its batch instead of making a second one. The
    document's hash tells a resend (same hash) from a changed order under the same id."""

    __tablename__ = "process_order"
    order_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), unique=True)
    recipe: Mapped[str] = mapped_column(String(200))
    recipe_version_id: Mapped[int] = mapped_column(ForeignKey("recipe_version.id"))
    material: Mapped[str] = mapped_column(String(100))
    quantity: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20))
    planned_lots: Mapped[list[Any]] = mapped_column(JSON, default=list)
    document_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by: Mapped[str] = mapped_column(String(100))


# --- p12-connectors: LIMS samples and results (engine.lims) ---------------------------


class LimsSample(Base):
    """A sample Batchline asked a LIMS to test: the LIMS's sample id, the batch and task
    it belongs to, and the specification limits sent with the request, so a result that
    comes back without limits is still checked against them."""

    __tablename__ = "lims_sample"
    sample_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    connector: Mapped[str] = mapped_column(String(100))
    batch_id: Mapped[str] = mapped_column(String(100), index=True)
    task_key: Mapped[str] = mapped_column(String(200))
    specifications: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class LimsResultReceipt(Base):
    """One result message from a LIMS, by the LIMS's result id: the replay check of
    ``POST /api/lims/results`` (a result id delivered once is answered ``replayed``).
    ``state`` is ``delivering`` while one request delivers it, ``delivered``, or
    ``undelivered`` (no batch was waiting yet: the LIMS may send it again)."""

    __tablename__ = "lims_result_receipt"
    result_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    sample_id: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(20))
    delivered_to: Mapped[list[Any]] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- the ready-task index (engine.batches.ready_index) ------------------------------


class ReadyTask(Base):
    """One operator task waiting in a running or held batch, written in the transaction
    that commits the workflow state (``unit_of_work.persist``), so a person's task list
    reads this table instead of loading every running workflow. Derived data: rebuilt
    from the workflow whenever ``Batch.ready_revision`` differs from ``Batch.revision``."""

    __tablename__ = "ready_task"
    __table_args__ = (
        UniqueConstraint("batch_pk", "task_id", name="uq_ready_task"),
        Index("ix_ready_task_role", "role", "id"),
        Index("ix_ready_task_assigned_to", "assigned_to", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_pk: Mapped[int] = mapped_column(ForeignKey("batch.id"))
    task_id: Mapped[str] = mapped_column(String(64))
    bpmn_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    process: Mapped[str] = mapped_column(String(200))
    #: the unit procedure's name as people read it (the BPMN process name)
    process_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(50))
    assigned_to: Mapped[str | None] = mapped_column(String(100), nullable=True)
    qual: Mapped[list[Any]] = mapped_column(JSON, default=list)
    form: Mapped[str | None] = mapped_column(String(200), nullable=True)
    iteration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recipe_version_id: Mapped[int] = mapped_column(Integer)
    ready_at: Mapped[datetime] = mapped_column(default=utcnow)
    batch_id: Mapped[str] = mapped_column(String(100))  # the batch's id as people know it
    batch_kind: Mapped[str] = mapped_column(String(20))
    subject_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    subject_id: Mapped[str | None] = mapped_column(String(100), nullable=True)


# --- OIDC sign-in (engine.identity.oidc_state) -----------------------------------------


class OidcRequest(Base):
    """One sign-in or re-authentication sent to the OIDC provider, until its answer comes
    back: the callback is believed only with the ``state`` it was sent with (kept as its
    SHA-256), from the same browser (``browser``: SHA-256 of a random value in that
    browser's signed cookie), once (``used_at``) and before it expires. The nonce and the
    PKCE verifier never leave the server."""

    __tablename__ = "oidc_request"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    browser: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(20))  # "login" | "sign"
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(200))
    username: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the signer, for "sign"
    next_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class OidcSigningGrant(Base):
    """Proof that an OIDC person re-authenticated at the provider just now (21 CFR 11.200):
    good for exactly one signature, by that person, from the browser session that asked
    for it (``session_id``: the ``login_session`` row), within ``oidc_grant_seconds``."""

    __tablename__ = "oidc_signing_grant"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    session_id: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(nullable=True)


# --- issue 13 server: the job workers' heartbeat (engine.heartbeat) -------------------


class WorkerHeartbeat(Base):
    """One row per ``batchline worker`` process: written every few seconds while it runs,
    so ``/api/ready`` and ``/metrics`` can tell that jobs are being worked, and stamped
    ``stopped_at`` (with the job locks it gave back) when it stops gracefully."""

    __tablename__ = "worker_heartbeat"
    worker: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)
    released_jobs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# --- archive: completed, QA-decided batches moved out of the live tables (engine.archive) ----


class ArchivedBatch(Base):
    """A batch whose record was sealed into an archive file and whose bulky workflow rows
    left the live tables. ``content_hash`` is the SHA-256 of the file's bytes; the same
    hash is in the ``batch.archived`` audit entry ``audit_event_id`` (sealed by the chain),
    so a changed file, a changed row or a missing one is found by ``audit verify``.
    ``location`` is relative to ``archive_dir``: the archive can move to other storage."""

    __tablename__ = "archived_batch"
    batch_id: Mapped[int] = mapped_column(ForeignKey("batch.id"), primary_key=True)
    location: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    archived_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_by: Mapped[str] = mapped_column(String(200))
    audit_event_id: Mapped[int] = mapped_column(BigId)
