"""Who may do what: the permission matrix, enforced by the API and the CLI (never by
hidden buttons). 21 CFR 11.10(d),(g): authority checks per action, and separation of
duties where two people are needed (performer ≠ witness, author ≠ approver).

Roles: operator (executes steps), supervisor (runs the floor: starts, holds, reassigns),
qa (designs and approves recipes, reviews and releases), admin (users, system; signs
nothing of the batch record), service (other systems: ERP, LIMS, QMS, equipment),
trainer (records people's qualifications; performs, signs and witnesses no task),
maintenance (takes equipment out of service for repair or calibration and returns it).
"""

from __future__ import annotations

from .errors import BatchlineError

ALL = frozenset({"operator", "supervisor", "qa", "admin", "service"})

MATRIX: dict[str, frozenset[str]] = {
    "recipe.read": ALL,
    "recipe.import": frozenset({"qa"}),
    "recipe.approve": frozenset({"qa"}),
    "batch.read": ALL,
    "batch.start": frozenset({"supervisor", "service"}),
    "batch.hold": frozenset({"supervisor"}),
    # the endpoint admits the roles that complete some task; engine.duties decides per task
    "task.complete": frozenset({"operator", "supervisor", "qa"}),
    "task.reassign": frozenset({"supervisor"}),
    "task.callback": frozenset({"service"}),
    # the endpoint admits the roles that correct some step; engine.duties decides per step
    "step.correct": frozenset({"operator", "supervisor", "qa"}),
    "message.deliver": frozenset({"service"}),
    "incident.read": frozenset({"supervisor", "qa", "admin"}),
    "incident.retry": frozenset({"supervisor", "admin"}),
    "events.read": frozenset({"qa", "admin", "service"}),
    "audit.verify": frozenset({"qa", "admin"}),
    "exception.read": frozenset({"operator", "supervisor", "qa"}),
    "exception.disposition": frozenset({"qa"}),
    "batch.release": frozenset({"qa"}),
    "rules.read": frozenset({"supervisor", "qa", "admin"}),
    "rules.manage": frozenset({"qa"}),
    "attachment.upload": frozenset({"operator", "supervisor", "qa"}),
    "user.manage": frozenset({"admin"}),
    "analytics.read": frozenset({"operator", "supervisor", "qa"}),
    "analytics.train": frozenset({"qa"}),
    # QA's e-signed decision on a training run (never by who trained it: analytics.model_review)
    "analytics.approve": frozenset({"qa"}),
    "equipment.write": frozenset({"service", "supervisor"}),
    "subscriber.manage": frozenset({"admin"}),
    # bulk export of batches, steps, parameters, exceptions and audit (engine.exports.bulk):
    # those who review or audit records and run the system, not the floor
    "records.export": frozenset({"qa", "admin"}),
    # connector instances (engine.connector_config): endpoints and credentials of other systems
    "connector.manage": frozenset({"admin"}),
    # a LIMS's results (POST /api/lims/results), also signed by the LIMS connector's secret
    "lims.result": frozenset({"service"}),
    # an operator's "record an event" from a task page (review by exception)
    "event.record": frozenset({"operator", "supervisor", "qa"}),
    # people's training records (engine.qualifications): read by those who work with
    # them, recorded (e-signed) by QA or a trainer
    "qualification.read": frozenset({"operator", "supervisor", "qa", "admin", "trainer"}),
    "qualification.record": frozenset({"qa", "trainer"}),
    # moving a running batch to a newer recipe version: a supervisor asks, QA approves (e-signed)
    "batch.migrate": frozenset({"supervisor"}),
    "batch.migration.approve": frozenset({"qa"}),
    # another template version into the recipes that call it (as new drafts)
    "template.replace": frozenset({"qa"}),
    # process orders from the ERP (engine.process_orders): its service account only
    "erp.orders": frozenset({"service"}),
    # master data (engine.master_data): everyone reads; operators change nothing. QA and
    # supervisors keep the material list; lots are received by supervisors, QA and the
    # ERP, released or rejected by QA only; equipment is registered by supervisors and
    # maintenance, taken out of (and returned to) service by maintenance only
    "materials.read": ALL | {"maintenance", "trainer"},
    "materials.manage": frozenset({"qa", "supervisor", "service"}),
    "lots.manage": frozenset({"qa", "supervisor", "service"}),
    "lots.release": frozenset({"qa"}),
    "equipment.manage": frozenset({"supervisor", "maintenance", "service"}),
    "equipment.maintain": frozenset({"maintenance"}),
}

#: A user task's role (its ``role`` property or lane) -> the roles that may complete it and
#: sign it as performer. Supervisors stand in on the floor (operator tasks); nobody stands
#: in for QA, and admin and service accounts complete no task.
TASK_COMPLETERS: dict[str, frozenset[str]] = {
    "operator": frozenset({"operator", "supervisor"}),
    "supervisor": frozenset({"supervisor"}),
    "qa": frozenset({"qa"}),
}

#: A user task's role -> the roles that may witness it (with the form's ``witnessRole``):
#: nobody below the task's role countersigns it, so a supervisor never signs on a QA task.
TASK_WITNESSES: dict[str, frozenset[str]] = {
    "operator": frozenset({"operator", "supervisor", "qa"}),
    "supervisor": frozenset({"supervisor", "qa"}),
    "qa": frozenset({"qa"}),
}

#: A signature meaning (the form-js ``signatureMeaning``, forms.vocabulary.SIGNATURE_MEANINGS,
#: plus the witness's "Verified" and the corrector's "Corrected") -> the roles that may give
#: it. The signer also needs the task's role: the role they sign in must be in both sets.
MEANING_ROLES: dict[str, frozenset[str]] = {
    "Performed": frozenset({"operator", "supervisor", "qa"}),
    "Verified": frozenset({"operator", "supervisor", "qa"}),
    "Reviewed": frozenset({"supervisor", "qa"}),
    "Approved": frozenset({"supervisor", "qa"}),
    "Released": frozenset({"qa"}),
    "Rejected": frozenset({"qa"}),  # QA's rejection of a batch (the release flow's reject task)
    "Corrected": frozenset({"operator", "supervisor", "qa"}),
}


class Forbidden(BatchlineError):
    code = "forbidden"
    status = 403


def allowed(roles, action: str) -> bool:
    return bool(MATRIX[action] & set(roles))


def check(person, action: str) -> None:
    """Raise Forbidden unless one of the person's roles holds the action."""
    if action not in MATRIX:
        raise KeyError(f"unknown action {action}")
    if not allowed(person.roles, action):
        raise Forbidden(
            f"{person.username} may not {action.replace('.', ' ')} (needs one of: {', '.join(sorted(MATRIX[action]))})",
            details={"action": action, "roles": sorted(MATRIX[action])},
        )
