"""The browser UI's pages: login, my tasks, batches, the batch record, the task form
(with file attachments) and its signature, corrections of recorded values, and the
supervisor's hold / resume / abort / reassign.

Pages are rendered on the server (Jinja, autoescaped) from the engine's functions; the
only scripts are our own (live limit hints, the sign dialog, the bpmn-js diagram).
Every POST carries the session's CSRF token; every change is made as the logged-in
person, and a step is signed by that person only (21 CFR 11.200(a)(2)).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from engine import attachments, batches, permissions, recipes, users
from engine.errors import BatchlineError, NotFound
from engine.models import Batch
from forms import load_form, render_data

from . import entry
from . import session as login
from .diagram import diagram_view
from .markdown import render_markdown

bp = Blueprint("ui", __name__, url_prefix="/")

PUBLIC = {"ui.login"}
#: refusals that concern the signature rather than the form's values
SIGNING_CODES = {
    "auth_failed",
    "account_locked",
    "account_inactive",
    "password_expired",
    "self_witness",
    "witness_role",
    "witness_required",
    "signature_required",
    "sign_for_other",
}
#: idempotency keys of this session's recent submissions -> their result page
DONE_KEYS = "done"
DONE_KEEP = 8
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: http: https:; connect-src 'self'; font-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def rt():
    return login.runtime()


@bp.record_once
def _configure(state) -> None:
    """The session cookie must not ride along on another site's POST (SameSite=Lax) nor
    be readable by scripts. Flask's defaults are HttpOnly without SameSite; an app that
    chose a SameSite value itself keeps it."""
    config = state.app.config
    config["SESSION_COOKIE_HTTPONLY"] = True
    if config.get("SESSION_COOKIE_SAMESITE") is None:
        config["SESSION_COOKIE_SAMESITE"] = "Lax"


# --- every request ---------------------------------------------------------------------


@bp.before_request
def _who_is_there():
    person, why = login.load_person()
    g.person = person
    if why:
        flash(why, "warning")
    if person is None and request.endpoint not in PUBLIC:
        # a POST after a timeout changes nothing: log in, then the page is shown again
        target = request.full_path if request.method == "GET" else request.path
        return redirect(url_for("ui.login", next=target.rstrip("?")))
    if request.method == "POST":
        login.check_csrf()
    return None


@bp.after_request
def _headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    # batch records must not linger in a shared tablet's cache
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.app_template_filter("utc")
def _utc(value: Any) -> str:
    """ISO time -> "2025-11-25 20:45:12 UTC" (records are kept and shown in UTC)."""
    if not value:
        return "—"
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("filesize")
def _filesize(value: Any) -> str:
    return entry.file_size(value)


@bp.app_template_filter("markdown")
def _markdown(value: str | None):
    return render_markdown(value)


@bp.context_processor
def _context() -> dict[str, Any]:
    person = g.get("person")
    return {
        "person": person,
        "csrf_token": login.csrf_token,
        "may": lambda action: bool(person) and permissions.allowed(person.roles, action),
        "timeout_minutes": rt().settings.session_timeout_minutes,
        "has_trends": "trends.dashboard" in current_app.view_functions,
    }


@bp.errorhandler(BatchlineError)
def _engine_error(error: BatchlineError):
    status = int(getattr(error, "status", 422))
    return render_template(
        "ui/error.html", title=_error_title(status), message=_sentence(error.message), code=error.code
    ), status


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    if error.code == 413:
        return _too_large()
    return render_template(
        "ui/error.html", title=error.name, message=error.description, code=str(error.code)
    ), error.code or 500


def _too_large():
    """A submission over MAX_CONTENT_LENGTH (settings.max_request_bytes) is refused before
    anything is read: nothing was recorded and no file was stored."""
    limit = entry.file_size(int(rt().settings.max_request_bytes))
    back = request.path if request.method == "POST" else None  # the task / correction page again
    return render_template(
        "ui/error.html",
        title="File too large",
        message=f"What you sent is too large: at most {limit} can be sent at once (the file and the form "
        "together). Nothing was recorded and no file was stored. Make the file smaller (e.g. a PDF "
        "instead of a photo, or a lower resolution) and try again, or ask your supervisor.",
        code="413",
        back=back,
    ), 413


def _error_title(status: int) -> str:
    return {401: "Not signed in", 403: "Not allowed", 404: "Not found", 409: "Not possible now"}.get(
        status, "Not accepted"
    )


# --- login -------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"], endpoint="login")
def login_page():
    next_url = login.safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.person is not None:
            return redirect(next_url or url_for("ui.home"))
        return render_template("ui/login.html", next_url=next_url, username="", error=None)
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    try:
        person = users.authenticate(rt(), username, password, purpose="login")
        if person.kind != "person":
            raise users.AuthFailed(
                "service accounts cannot log in to the browser; use an API token", code="account_service"
            )
    except users.AuthFailed as exc:
        return render_template(
            "ui/login.html", next_url=next_url, username=username, error=_sentence(exc.message), error_code=exc.code
        ), 401
    login.start(person)
    return redirect(next_url or url_for("ui.home"))


@bp.route("/logout", methods=["POST"])
def logout():
    login.end()
    flash("You are logged out. The next signature needs your user id and password again.", "info")
    return redirect(url_for("ui.login"))


# --- tasks and batches -------------------------------------------------------------------


@bp.route("/")
def home():
    tasks = batches.my_tasks(rt(), g.person)
    return render_template("ui/home.html", tasks=tasks)


@bp.route("/batches")
def batch_list():
    state = request.args.get("state") or None
    if state not in (None, *batches.STATES):
        state = None
    return render_template(
        "ui/batches.html", batches=batches.list_batches(rt(), state=state), state=state, states=batches.STATES
    )


def _form_fields(batch: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """form id -> field key -> rendering data, for labels and option names in the record."""
    try:
        rv = recipes.get_version(rt(), batch["recipe_version_id"])
    except NotFound:
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for form_id, definition in (rv.forms or {}).items():
        try:
            out[form_id] = {f["key"]: f for f in entry.input_fields(render_data(definition))}
        except Exception:  # an old definition the forms package no longer reads: show raw keys
            out[form_id] = {}
    return out


def _record_rows(step: dict[str, Any], fields: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per recorded value: label, value as recorded, current value, corrections."""
    values = step.get("values") or {}
    current = step.get("current_values") or values
    units = step.get("units") or {}
    corrections: dict[str, list] = {}
    for c in step.get("corrections") or []:
        corrections.setdefault(c.get("field"), []).append(c)
    keys = [k for k in fields if k in values or k in current] + [
        k for k in list(values) + list(current) if k not in fields
    ]
    rows = []
    for key in dict.fromkeys(keys):
        field = fields.get(key)
        unit = units.get(key) or (field or {}).get("unit")
        for c in corrections.get(key, []):
            c["old_text"] = entry.display_value(c.get("old"), field, unit)
            c["new_text"] = entry.display_value(c.get("new"), field, unit)
            c["old_file"] = c.get("old") if entry.is_attachment(c.get("old")) else None
            c["new_file"] = c.get("new") if entry.is_attachment(c.get("new")) else None
        rows.append(
            {
                "key": key,
                "label": (field or {}).get("label") or key,
                "recorded": entry.display_value(values.get(key), field, unit),
                "current": entry.display_value(current.get(key), field, unit),
                "recorded_file": values.get(key) if entry.is_attachment(values.get(key)) else None,
                "current_file": current.get(key) if entry.is_attachment(current.get(key)) else None,
                "corrected": key in corrections,
                "corrections": corrections.get(key, []),
                "correctable": not (field or {}).get("readonly"),
            }
        )
    return rows


def _add_rows(
    step: dict[str, Any],
    forms_by_id: dict[str, dict[str, dict[str, Any]]],
    batch_id: str | None = None,
    may_correct: bool = False,
) -> None:
    step["rows"] = _record_rows(step, forms_by_id.get(step.get("form") or "", {}))
    step["labels"] = {row["key"]: row["label"] for row in step["rows"]}
    step["correct_url"] = None
    if may_correct and batch_id and step.get("kind") == "user_task" and any(r["correctable"] for r in step["rows"]):
        step["correct_url"] = url_for("ui.correct_page", batch_id=batch_id, seq=step["seq"])
        for row in step["rows"]:
            if row["correctable"]:
                row["correct_url"] = url_for("ui.correct_page", batch_id=batch_id, seq=step["seq"], field=row["key"])


def _reviewed_at(batch_id: str) -> datetime | None:
    """When QA reviewed the record (corrections close then). engine.batches.describe does
    not carry it yet, so it is read from the batch row."""
    with rt().transaction() as s:
        return s.scalar(select(Batch.reviewed_at).where(Batch.batch_id == batch_id))


@bp.route("/batches/<batch_id>")
def batch_page(batch_id: str):
    batch = batches.get_batch(rt(), batch_id)
    forms_by_id = _form_fields(batch)
    steps = batches.steps(rt(), batch_id)
    reviewed_at = _reviewed_at(batch_id)
    may_correct = permissions.allowed(g.person.roles, "step.correct") and reviewed_at is None
    for step in steps:
        _add_rows(step, forms_by_id, batch_id, may_correct)
    exceptions = _exceptions(batch_id)
    by_step: dict[int, list] = {}
    for exc in exceptions:
        by_step.setdefault(exc.get("step_seq"), []).append(exc)
    tasks = batches.ready_tasks(rt(), batch_id)
    people = []
    if permissions.allowed(g.person.roles, "task.reassign") and tasks:
        people = [
            u for u in users.list_users(rt()) if u.get("active") and not u.get("locked") and u.get("kind") == "person"
        ]
    return render_template(
        "ui/batch.html",
        batch=batch,
        steps=steps,
        exceptions=exceptions,
        exceptions_by_step=by_step,
        tasks=tasks,
        people=people,
        reviewed_at=reviewed_at,
    )


def _exceptions(batch_id: str) -> list[dict[str, Any]]:
    """The batch's exceptions, for roles that may read them (others see none)."""
    if not permissions.allowed(g.person.roles, "exception.read"):
        return []
    return batches.exceptions(rt(), batch_id)


@bp.route("/batches/<batch_id>/diagram")
def batch_diagram(batch_id: str):
    """The recipe's BPMN with done / current element ids, for the bpmn-js viewer."""
    return jsonify(diagram_view(batches.diagram(rt(), batch_id)))


@bp.route("/batches/<batch_id>/state", methods=["POST"])
def batch_state(batch_id: str):
    _require("batch.hold")
    action = request.form.get("action") or ""
    reason = (request.form.get("reason") or "").strip()
    if action not in ("hold", "resume", "abort"):
        abort(400, description="Choose hold, resume or abort.")
    if not reason:
        flash(f"To {action} the batch, give a reason.", "error")
        return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="supervisor"))
    try:
        batches.change_state(rt(), batch_id, action, user=g.person.username, reason=reason)
    except BatchlineError as exc:
        flash(_sentence(exc.message), "error")
    else:
        flash({"hold": "Batch put on hold.", "resume": "Batch resumed.", "abort": "Batch aborted."}[action], "success")
    return redirect(url_for("ui.batch_page", batch_id=batch_id))


@bp.route("/batches/<batch_id>/tasks/<task_id>/reassign", methods=["POST"])
def reassign(batch_id: str, task_id: str):
    _require("task.reassign")
    username = (request.form.get("username") or "").strip()
    reason = (request.form.get("reason") or "").strip()
    if not username or not reason:
        flash("To reassign a task, choose a person and give a reason.", "error")
        return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="tasks"))
    try:
        batches.reassign(rt(), batch_id, task_id, username, by=g.person.username, reason=reason)
    except BatchlineError as exc:
        flash(_sentence(exc.message), "error")
    else:
        flash(f"Task reassigned to {username}.", "success")
    return redirect(url_for("ui.batch_page", batch_id=batch_id, _anchor="tasks"))


def _require(action: str) -> None:
    """The same permission matrix as the API and the CLI (engine.permissions)."""
    if not permissions.allowed(g.person.roles, action):
        roles = ", ".join(sorted(permissions.MATRIX[action]))
        abort(403, description=f"You may not {action.replace('.', ' ')} (this needs the role: {roles}).")


# --- the task form and its signature -----------------------------------------------------


def _find_task(batch_id: str, task_id: str) -> dict[str, Any] | None:
    for task in batches.ready_tasks(rt(), batch_id):
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
    }


def _render_task(
    batch_id: str,
    task: dict[str, Any],
    *,
    typed=None,
    field_errors=None,
    error=None,
    sign_error=None,
    idempotency_key=None,
    status=200,
):
    items, signing = _task_form(task)
    batch = batches.get_batch(rt(), batch_id)
    return render_template(
        "ui/task.html",
        batch=batch,
        task=task,
        items=items,
        signing=signing,
        not_mine=_not_mine(task),
        typed=typed if typed is not None else entry.typed_defaults(items),
        field_errors=field_errors or {},
        error=error,
        sign_error=sign_error,
        needs_user_id=login.signing_needs_user_id(),
        idempotency_key=idempotency_key or str(uuid.uuid4()),
        timeout_minutes=rt().settings.session_timeout_minutes,
        has_files=bool(entry.attachment_fields(items)),
        max_request_bytes=rt().settings.max_request_bytes,
    ), status


def _signer() -> tuple[users.Person | None, tuple[str, int] | None]:
    """The logged-in person's signature from the sign dialog, or (None, (why, status)).

    §11.200(a)(1): user id + password at the first signing of this continuous session,
    the password alone later; (a)(2): the signer is always the logged-in person."""
    person = g.person
    if login.signing_needs_user_id():
        entered = (request.form.get("signer_id") or "").strip()
        if entered != person.username:
            return None, (
                "Enter your own user id: you are logged in as "
                f"{person.username}, and nobody can sign for someone else.",
                403,
            )
    if not request.form.get("password"):
        return None, ("Enter your password to sign.", 401)
    try:
        signer = users.authenticate(rt(), person.username, request.form.get("password") or "", purpose="signature")
    except users.AuthFailed as exc:
        return None, (f"Your signature was not accepted: {exc.message}.", 401)
    # both components were proven in this continuous session: later signings take the password only
    login.signed()
    return signer, None


def _accepts(field: dict[str, Any], content_type: str) -> bool:
    allowed = field.get("content_types") or []
    return not allowed or any(
        a == content_type or (a.endswith("/*") and content_type.startswith(a[:-1])) for a in allowed
    )


def _store_upload(field: dict[str, Any], name: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The file posted under ``name`` for an attachment field: stored by the engine
    (SHA-256), answered as the field's value. (None, []) when no file was chosen; the
    field's own size and type rules are checked first so a refused file is not stored."""
    upload = request.files.get(name)
    if upload is None or not upload.filename:
        return None, []
    label = field.get("label") or field["key"]
    filename = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    content_type = (upload.mimetype or "application/octet-stream").lower()
    content = upload.read()
    if not content:
        return None, [f"{label}: the file {filename} is empty."]
    if field.get("max_size") and len(content) > field["max_size"]:
        return None, [
            f"{label}: the file is too large ({entry.file_size(len(content))}; "
            f"at most {entry.file_size(field['max_size'])})."
        ]
    if not _accepts(field, content_type):
        return None, [
            f"{label}: files of type {content_type} are not accepted here "
            f"(accepted: {', '.join(field['content_types'])})."
        ]
    try:
        stored = attachments.store(rt(), content, filename, content_type, user=g.person.username)
    except BatchlineError as exc:
        return None, [f"{label}: {_sentence(exc.message)}"]
    # the same bytes are stored once; the record names the file as this person attached it
    return {**entry.attachment_ref(stored), "filename": filename}, []


def _attachment_values(
    items: list[dict[str, Any]], typed: dict[str, Any], values: dict[str, Any]
) -> dict[str, list[str]]:
    """Store the files of the form's attachment fields and put them into ``values`` (and
    into ``typed``, so a refused form keeps them). Answers field errors."""
    errors: dict[str, list[str]] = {}
    for field in entry.attachment_fields(items):
        key = field["key"]
        stored, problems = _store_upload(field, key)
        if problems:
            errors[key] = problems
        ref = stored or entry.kept_attachment(request.form, key)
        values[key] = typed[key] = ref
    return errors


def _not_mine(task: dict[str, Any]) -> str | None:
    """Why the logged-in person cannot complete this task (the engine refuses it anyway)."""
    person = g.person
    if not permissions.allowed(person.roles, "task.complete"):
        return "You may look at this task, but completing it needs the operator or supervisor role."
    if task.get("assigned_to") and task["assigned_to"] != person.username:
        return f"This task is assigned to {task['assigned_to']}; only they can complete it."
    role = task.get("role")
    if role and not person.has(role, "supervisor"):
        return f"This task is for the {role} role."
    return None


@bp.route("/batches/<batch_id>/tasks/<task_id>", methods=["GET"])
def task_page(batch_id: str, task_id: str):
    task = _find_task(batch_id, task_id)
    if task is None:
        flash("This task is not waiting any more: it was completed, or the batch moved on.", "warning")
        return redirect(url_for("ui.batch_page", batch_id=batch_id))
    return _render_task(batch_id, task)


@bp.route("/batches/<batch_id>/tasks/<task_id>", methods=["POST"])
def submit_task(batch_id: str, task_id: str):
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    done = session.get(DONE_KEYS) or {}
    task = _find_task(batch_id, task_id)
    if task is None:
        if key and key in done:  # a repeated submission (reload, back + resend): show the first result
            return redirect(done[key])
        flash("This task is not waiting any more: it was completed, or the batch moved on.", "warning")
        return redirect(url_for("ui.batch_page", batch_id=batch_id))
    if not key:
        key = str(uuid.uuid4())
    items, signing = _task_form(task)
    typed = entry.typed_from_post(items, request.form)
    values = entry.values_from_post(items, request.form)

    def again(**kwargs):
        return _render_task(batch_id, task, typed=typed, idempotency_key=key, **kwargs)

    person = g.person
    signer, refused = _signer()
    if refused:
        return again(sign_error=refused[0], status=refused[1])
    witness = None
    if signing["witness_required"]:
        witness_id = (request.form.get("witness_id") or "").strip()
        if not witness_id or not request.form.get("witness_password"):
            return again(
                sign_error="This step needs a witness: the witness enters their own user id and password.", status=403
            )
        try:
            witness = users.authenticate(
                rt(), witness_id, request.form.get("witness_password") or "", purpose="signature"
            )
        except users.AuthFailed as exc:
            return again(sign_error=f"The witness signature was not accepted: {exc.message}.", status=401)
    file_errors = _attachment_values(items, typed, values)
    if file_errors:
        return again(field_errors=file_errors, error="A file could not be attached; nothing was recorded.", status=422)
    try:
        outcome = batches.complete_task(
            rt(), batch_id, task_id, values, user=person.username, idempotency_key=key, signer=signer, witness=witness
        )
    except BatchlineError as exc:
        details = exc.details or {}
        fields = details.get("fields") or details.get("field_errors")
        if exc.code == "form_invalid" and isinstance(fields, dict):
            return again(field_errors=fields, error=_sentence(exc.message), status=422)
        if exc.code in SIGNING_CODES:
            return again(sign_error=_sentence(exc.message), status=int(getattr(exc, "status", 403)))
        return again(error=_sentence(exc.message), status=int(getattr(exc, "status", 422)))
    seq = outcome.body["step"]["seq"]
    target = url_for("ui.step_page", batch_id=batch_id, seq=seq)
    done[key] = target
    session[DONE_KEYS] = dict(list(done.items())[-DONE_KEEP:])
    return redirect(target)


def _sentence(text: str) -> str:
    """Engine messages are lower-case fragments; on a page they read as sentences."""
    text = (text or "").strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


@bp.route("/batches/<batch_id>/steps/<int:seq>")
def step_page(batch_id: str, seq: int):
    """What was just recorded, with the exceptions it raised (shown at once)."""
    batch = batches.get_batch(rt(), batch_id)
    step = next((s for s in batches.steps(rt(), batch_id) if s["seq"] == seq), None)
    if step is None:
        abort(404, description=f"Batch {batch_id} has no step {seq}.")
    forms_by_id = _form_fields(batch)
    _add_rows(step, forms_by_id)
    raised = [e for e in _exceptions(batch_id) if e.get("step_seq") == seq]
    mine = {t["id"] for t in batches.my_tasks(rt(), g.person) if t.get("batch_id") == batch_id}
    next_tasks = [t for t in batches.ready_tasks(rt(), batch_id) if t["id"] in mine]
    return render_template(
        "ui/step.html",
        batch=batch,
        step=step,
        exceptions=raised,
        next_tasks=next_tasks,
        trend_check_pending=_trend_check_pending(batch_id, seq),
    )


def _trend_check_pending(batch_id: str, seq: int) -> bool:
    """True while the out-of-trend check of this step has not run yet (it runs right
    after commit, off the request): the page then refreshes itself once it has."""
    from engine.models import Batch, Job

    with rt().transaction() as s:
        batch_pk = s.scalars(select(Batch.id).where(Batch.batch_id == batch_id)).first()
        pending = s.scalars(
            select(Job.payload).where(Job.batch_id == batch_pk, Job.kind == "score_step", Job.state == "pending")
        )
        return any(p.get("seq") == seq for p in pending)


# --- corrections of recorded values (21 CFR 11.10(e), Annex 11 §9) ---------------------------

#: the corrected value is posted under this name, so no form key collides with the page's own
CORRECTION_INPUT = "value"
CORRECTION_MEANING = "Corrected"


def _correction_context(batch_id: str, seq: int) -> tuple[dict, dict, list[dict[str, Any]], dict[str, dict]]:
    """The batch, the step (with its record rows) and the correctable fields."""
    batch = batches.get_batch(rt(), batch_id)
    step = next((s for s in batches.steps(rt(), batch_id) if s["seq"] == seq), None)
    if step is None:
        abort(404, description=f"Batch {batch_id} has no step {seq}.")
    if step.get("kind") != "user_task":
        abort(
            409,
            description="Only values entered by an operator can be corrected; this step was recorded by the system.",
        )
    fields = _form_fields(batch).get(step.get("form") or "", {})
    _add_rows(step, {step.get("form") or "": fields})
    rows = [r for r in step["rows"] if r["correctable"]]
    return batch, step, rows, fields


def _correction_field(fields: dict[str, dict], key: str) -> dict[str, Any]:
    """The form field as an input named CORRECTION_INPUT (same type, unit, limits, options)."""
    field = fields.get(key) or {
        "item": "field",
        "key": key,
        "label": key,
        "type": "textfield",
        "options": [],
        "limits": {},
        "input": {},
    }
    return {
        **field,
        "key": CORRECTION_INPUT,
        "label": f"New value for {field.get('label') or key}",
        "required": True,
        "default": None,
    }


def _render_correction(
    batch_id: str,
    seq: int,
    field_key: str | None,
    *,
    typed=None,
    reason="",
    field_errors=None,
    error=None,
    sign_error=None,
    idempotency_key=None,
    status=200,
):
    batch, step, rows, fields = _correction_context(batch_id, seq)
    reviewed_at = _reviewed_at(batch_id)
    row = next((r for r in rows if r["key"] == field_key), None)
    field = _correction_field(fields, row["key"]) if row else None
    if typed is None and row is not None:
        current = (step.get("current_values") or {}).get(row["key"])
        typed = {CORRECTION_INPUT: entry.typed_from_value(field, current)}
    errors = dict(field_errors or {})
    return render_template(
        "ui/correct.html",
        batch=batch,
        step=step,
        rows=rows,
        row=row,
        field=field,
        typed=typed or {},
        reason=reason,
        field_errors=errors,
        error=error,
        sign_error=sign_error,
        reviewed_at=reviewed_at,
        signing={"meaning": CORRECTION_MEANING, "witness_required": False, "witness_role": None},
        needs_user_id=login.signing_needs_user_id(),
        idempotency_key=idempotency_key or str(uuid.uuid4()),
        max_request_bytes=rt().settings.max_request_bytes,
    ), status


@bp.route("/batches/<batch_id>/steps/<int:seq>/correct", methods=["GET"])
def correct_page(batch_id: str, seq: int):
    """Choose a recorded value, type the new one and the reason, sign."""
    _require("step.correct")
    return _render_correction(batch_id, seq, request.args.get("field") or None)


@bp.route("/batches/<batch_id>/steps/<int:seq>/correct", methods=["POST"])
def submit_correction(batch_id: str, seq: int):
    _require("step.correct")
    key = (request.form.get("idempotency_key") or "").strip()[:100]
    done = session.get(DONE_KEYS) or {}
    if key and key in done:  # a repeated submission (reload, back + resend): show the first result
        return redirect(done[key])
    if not key:
        key = str(uuid.uuid4())
    field_key = request.form.get("field") or ""
    reason = (request.form.get("reason") or "").strip()
    batch, step, rows, fields = _correction_context(batch_id, seq)
    row = next((r for r in rows if r["key"] == field_key), None)
    if row is None:
        flash("Choose the value to correct.", "error")
        return redirect(url_for("ui.correct_page", batch_id=batch_id, seq=seq))
    field = _correction_field(fields, row["key"])
    items = [field]
    typed = entry.typed_from_post(items, request.form)

    def again(**kwargs):
        return _render_correction(batch_id, seq, row["key"], typed=typed, reason=reason, idempotency_key=key, **kwargs)

    if _reviewed_at(batch_id) is not None:
        return again(error=CLOSED, status=409)
    if not reason:
        return again(
            field_errors={"reason": ["Give the reason for the correction: it is kept with the old and the new value."]},
            error="A correction needs a reason; nothing was changed.",
            status=422,
        )
    signer, refused = _signer()
    if refused:
        return again(sign_error=refused[0], status=refused[1])
    if field.get("type") == "attachment":
        stored, problems = _store_upload(field, CORRECTION_INPUT)
        if problems:
            return again(
                field_errors={CORRECTION_INPUT: problems},
                error="The file could not be attached; nothing was changed.",
                status=422,
            )
        value = stored or entry.kept_attachment(request.form, CORRECTION_INPUT)
        typed[CORRECTION_INPUT] = value
    else:
        value = entry.values_from_post(items, request.form)[CORRECTION_INPUT]
    try:
        result = batches.correct_step(rt(), batch_id, seq, row["key"], value, reason=reason, signer=signer)
    except BatchlineError as exc:
        details = exc.details or {}
        fields_err = details.get("fields") or details.get("field_errors")
        if exc.code == "form_invalid" and isinstance(fields_err, dict):
            mine = fields_err.get(row["key"])
            others = [m for k, ms in fields_err.items() if k != row["key"] for m in (ms or [])]
            return again(
                field_errors={CORRECTION_INPUT: mine} if mine else {},
                error=_sentence(exc.message) + (" " + " ".join(others) if others else ""),
                status=422,
            )
        if exc.code == "batch_reviewed":
            return again(error=CLOSED, status=409)
        if exc.code == "reason_required":
            return again(field_errors={"reason": [_sentence(exc.message)]}, error=_sentence(exc.message), status=422)
        if exc.code == "correction_unchanged" and _same_correction(batch_id, seq, row["key"], reason):
            return _corrected(batch_id, seq, key, done, row["label"])  # sent twice at once: done once
        if exc.code == "correction_unchanged":
            return again(
                field_errors={CORRECTION_INPUT: ["The new value is the same as the current one."]},
                error="Nothing to correct: the new value is the same as the current one.",
                status=422,
            )
        if exc.code in SIGNING_CODES:
            return again(sign_error=_sentence(exc.message), status=int(getattr(exc, "status", 403)))
        return again(error=_sentence(exc.message), status=int(getattr(exc, "status", 422)))
    return _corrected(batch_id, seq, key, done, row["label"], result)


CLOSED = (
    "This batch record has been reviewed: corrections are closed. Nothing was changed. "
    "Ask QA how to proceed (a deviation, for example)."
)


def _same_correction(batch_id: str, seq: int, field: str, reason: str) -> bool:
    """The last correction of this value is this person's, with this reason: a repeat of it."""
    step = next((s for s in batches.steps(rt(), batch_id) if s["seq"] == seq), None)
    last = [c for c in (step or {}).get("corrections") or [] if c["field"] == field][-1:]
    return bool(last) and last[0]["username"] == g.person.username and last[0]["reason"] == reason


def _corrected(batch_id: str, seq: int, key: str, done: dict, label: str, result: dict | None = None):
    target = url_for("ui.batch_page", batch_id=batch_id, _anchor=f"step-{seq}")
    done[key] = target
    session[DONE_KEYS] = dict(list(done.items())[-DONE_KEEP:])
    flash(
        f"Step {seq}: {label} corrected and signed. The original value and the earlier signature stay in the record.",
        "success",
    )
    return redirect(target)
