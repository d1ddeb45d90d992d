"""The task form: an operator's waiting task with its instructions, fields (live limit
hints, file attachments) and the sign dialog; its submission records one signed step.

A submission carries an idempotency key, so sending the same form again (a reload, back
+ resend, a double tap) shows the first result instead of recording a second step.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for

from engine import batches, duties, permissions, users
from engine.errors import BatchlineError, Conflict, NotFound
from forms import load_form, render_data

from ..auth import client_address
from ..runtime import runtime
from . import entry
from . import session as login
from .attachments import attachment_values
from .event_form import KINDS, blank_event
from .pages import bp, sentence
from .signature import SIGNING_CODES, signer


def waiting_task(batch_id: str, task_id: str) -> dict[str, Any] | None:
    """The task when it still waits on the batch, else None."""
    for task in batches.ready_tasks(runtime(), batch_id):
        if task["id"] == task_id:
            return task
    return None


def _task_form(task: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rendering items and the form-level signing settings of a task."""
    definition = task.get("form_definition")
    if not definition:
        return [], {"meaning": "Performed", "witness_required": False, "witness_role": None}
    form = load_form(definition)
    return render_data(form), {
        "meaning": form.signature_meaning,
        "witness_required": form.witness_required,
        "witness_role": form.witness_role,
        # who may witness it (engine.duties): named in the dialog before anyone types a password
        "witness_roles": sorted(duties.witness_roles(form.witness_role, task.get("role") or "operator")),
    }


def render_task(
    batch_id: str,
    task: dict[str, Any],
    *,
    typed=None,
    field_errors=None,
    error=None,
    sign_error=None,
    idempotency_key=None,
    event=None,
    status=200,
):
    items, signing = _task_form(task)
    batch = batches.get_batch(runtime(), batch_id)
    return render_template(
        "ui/task.html",
        batch=batch,
        task=task,
        items=items,
        signing=signing,
        not_mine=_not_mine(task, signing["meaning"] if task.get("form_definition") else None),
        typed=typed if typed is not None else entry.typed_defaults(items),
        field_errors=field_errors or {},
        error=error,
        sign_error=sign_error,
        needs_user_id=login.signing_needs_user_id(),
        idempotency_key=idempotency_key or str(uuid.uuid4()),
        timeout_minutes=runtime().settings.session_timeout_minutes,
        has_files=bool(entry.attachment_fields(items)),
        max_request_bytes=runtime().settings.max_request_bytes,
        event=event or blank_event(),
        event_kinds=KINDS,
    ), status


def _not_mine(task: dict[str, Any], meaning: str | None) -> str | None:
    """Why the logged-in person cannot complete this task (the engine refuses it anyway)."""
    person = g.person
    role = task.get("role") or "operator"
    if not permissions.allowed(person.roles, "task.complete") or not duties.may_complete(person, role):
        return _duty_sentence(person, role, duties.completers(role))
    why = duties.why_not_complete(person, role, meaning)
    signing = _task_form(task)[1]
    if why is None and signing["witness_required"] and not signing.get("witness_roles"):
        return "Nobody may witness this step as the recipe names its witness; ask QA to correct the recipe."
    if why is None and task.get("assigned_to") and task["assigned_to"] != person.username:
        return f"This task is assigned to {task['assigned_to']}; only they can complete it."
    if why is None and task.get("qual"):
        with runtime().transaction() as s:
            missing = duties.why_unqualified(s, person.username, task["qual"])
        if missing:
            return f"You cannot perform this task yet: it {missing}. QA or a trainer records qualifications."
    return why


def not_waiting(batch_id: str, task_id: str, status: int = 200):
    """A task id that does not wait on the batch: a completed one says who completed it,
    when, and links its step; an id the batch never had is a 404 ("No such task")."""
    batch = batches.get_batch(runtime(), batch_id)  # an unknown batch: 404
    step = next((s for s in batches.steps(runtime(), batch_id) if s.get("task_id") == task_id), None)
    if step is None:
        why = f"No such task in batch {batch_id}."
        if batch["state"] in ("complete", "aborted"):
            why += f" The batch is {batch['state']}: no task of it waits any more."
        abort(404, description=why + " Open the batch to see the tasks that wait.")
    performer = next((sig for sig in step.get("signatures") or [] if sig.get("role") == "performer"), None)
    who = f"{performer['printed_name']} ({performer['username']})" if performer else step.get("user") or "someone"
    message = (
        f"{step['task_name']} was already completed by {who} on {_when(step['recorded_at'])} "
        f"(step {step['seq']} of batch {batch_id}). Nothing more to record here."
    )
    links = [
        (f"Step {step['seq']}: {step['task_name']}", url_for("ui.step_page", batch_id=batch_id, seq=step["seq"])),
        (f"Batch {batch_id}", url_for("ui.batch_page", batch_id=batch_id)),
    ]
    page = render_template(
        "ui/error.html", title="Already completed", message=message, code="task_done", links=links, tone="info"
    )
    return page, status


def _when(iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duty_sentence(person, role: str, allowed) -> str:
    """The reason before any password: "This step is for operators; you are signed in as QA"."""
    mine = " and ".join(r.upper() if r == "qa" else r for r in sorted(person.roles)) or "no role"
    who = " or ".join(f"{r}s" if r != "qa" else "QA" for r in sorted(allowed)) or "nobody"
    return (
        f"This step is for {role}s; you are signed in as {mine}. You can read it, but only {who} can sign it."
        if role != "qa"
        else f"This step is for QA; you are signed in as {mine}. You can read it, but only {who} can sign it."
    )


@bp.route("/batches/<batch_id>/tasks/<task_id>", methods=["GET"])
def task_page(batch_id: str, task_id: str):
    task = waiting_task(batch_id, task_id)
    if task is None:
        return not_waiting(batch_id, task_id)
    if permissions.allowed(g.person.roles, "task.complete"):
        # the step's duration runs from here (engine.batches.task_times); a race with a
        # completion in another tab is harmless: the task then simply is not waiting
        try:
            batches.open_task(runtime(), batch_id, task_id, user=g.person.username)
        except (Conflict, NotFound):
            pass
    return render_task(batch_id, task)


@bp.route("/batches/<batch_id>/tasks/<task_id>", methods=["POST"])
def submit_task(batch_id: str, task_id: str):
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    done = login.done_submissions()
    task = waiting_task(batch_id, task_id)
    if task is None:
        if key and key in done:  # a repeated submission (reload, back + resend): show the first result
            return redirect(done[key])
        return not_waiting(batch_id, task_id, status=409)
    if not key:
        key = str(uuid.uuid4())
    items, signing = _task_form(task)
    typed = entry.typed_from_post(items, request.form)
    values = entry.values_from_post(items, request.form)

    def again(**kwargs):
        return render_task(batch_id, task, typed=typed, idempotency_key=key, **kwargs)

    person = g.person
    # the task waits and this person may complete it: checked before any password (a
    # password check counts toward its owner's lockout)
    try:
        plan = batches.may_complete(runtime(), batch_id, task_id, person)
    except BatchlineError as exc:
        return again(error=sentence(exc.message), status=int(getattr(exc, "status", 403)))
    witness_id = (request.form.get("witness_id") or "").strip()
    if signing["witness_required"]:
        if not witness_id or not request.form.get("witness_password"):
            return again(
                sign_error="This step needs a witness: the witness enters their own user id and password.", status=403
            )
        try:
            batches.witness_wanted(runtime(), plan, witness_id, person)
        except BatchlineError as exc:
            return again(sign_error=sentence(exc.message), status=int(getattr(exc, "status", 403)))
    signed_by, refused = signer()
    if refused:
        return again(sign_error=refused[0], status=refused[1])
    witness = None
    if signing["witness_required"]:
        try:
            witness = users.authenticate(
                runtime(),
                witness_id,
                request.form.get("witness_password") or "",
                purpose="signature",
                client=client_address(),
            )
        except (users.AuthFailed, users.TooManyAttempts) as exc:
            status = int(getattr(exc, "status", 401))
            return again(sign_error=f"The witness signature was not accepted: {exc.message}.", status=status)
    file_errors = attachment_values(items, typed, values)
    if file_errors:
        return again(field_errors=file_errors, error="A file could not be attached; nothing was recorded.", status=422)
    try:
        outcome = batches.complete_task(
            runtime(),
            batch_id,
            task_id,
            values,
            user=person.username,
            idempotency_key=key,
            signer=signed_by,
            witness=witness,
            actor=person,
        )
    except BatchlineError as exc:
        details = exc.details or {}
        fields = details.get("fields") or details.get("field_errors")
        if exc.code == "form_invalid" and isinstance(fields, dict):
            return again(field_errors=fields, error=sentence(exc.message), status=422)
        if exc.code in SIGNING_CODES:
            return again(sign_error=sentence(exc.message), status=int(getattr(exc, "status", 403)))
        return again(error=sentence(exc.message), status=int(getattr(exc, "status", 422)))
    seq = outcome.body["step"]["seq"]
    target = url_for("ui.step_page", batch_id=batch_id, seq=seq)
    login.remember_submission(done, key, target)
    return redirect(target)


@bp.route("/batches/<batch_id>/tasks/<task_id>/witness", methods=["POST"])
def check_witness(batch_id: str, task_id: str):
    """Whether the witness typed in the sign dialog may witness this step, said before
    anyone types a password: the engine's own check of the submission (another person,
    a witnessing role, the task's qualifications). No password is checked here, and an
    unknown user id is not told apart from a known one (the submission refuses it)."""
    witness_id = (request.form.get("witness_id") or "").strip()[:100]
    try:
        plan = batches.may_complete(runtime(), batch_id, task_id, g.person)
        if witness_id:
            batches.witness_wanted(runtime(), plan, witness_id, g.person)
    except BatchlineError as exc:
        return {"ok": False, "why": sentence(exc.message)}
    return {"ok": True, "why": ""}
