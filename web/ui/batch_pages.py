"""The pages to read: my tasks, the batch list, the batch record (with its exceptions,
its waiting tasks and its diagram) and the page of one recorded step."""

from __future__ import annotations

import re
from typing import Any

from flask import abort, g, jsonify, render_template, request

from engine import batches, permissions, users
from engine.vocabulary import BatchState

from ..runtime import runtime
from . import notices
from .diagram import diagram_view
from .event_form import KINDS, blank_event
from .pages import bp
from .record_rows import add_rows, form_fields, may_correct_step

#: the batch list's state filter, in the order of a batch's life
STATES = tuple(state.value for state in BatchState)


@bp.route("/")
def home():
    """My tasks, a page at a time (``?after=`` the cursor of the "more" link); a held
    batch's tasks stay on the list, greyed, with who held it, when and why."""
    after = request.args.get("after", "")
    cursor = int(after) if re.fullmatch(r"[0-9]{1,18}", after) else None  # anything else: the first page
    page = batches.task_page(runtime(), g.person, limit=batches.PAGE_DEFAULT, after=cursor)
    tasks = list(page.items)
    assigned = notices.assignment_notes(t["batch_id"] for t in tasks if t.get("assigned_to"))
    for task in tasks:
        task["assignment"] = assigned.get((task["batch_id"], task["id"]))
    names = notices.people_named([*(t.get("hold") for t in tasks), *(t["assignment"] for t in tasks)])
    return render_template("ui/home.html", tasks=tasks, names=names, next_after=page.next_after, paged=bool(after))


@bp.route("/batches")
def batch_list():
    state = request.args.get("state") or None
    if state not in (None, *STATES):
        state = None
    return render_template(
        "ui/batches.html",
        batches=batches.list_batches(runtime(), state=state),
        state=state,
        states=STATES,
        may_start=permissions.allowed(g.person.roles, "batch.start"),
    )


@bp.route("/batches/<batch_id>")
def batch_page(batch_id: str):
    return render_batch(batch_id)


def render_batch(batch_id: str, *, event: dict[str, Any] | None = None, status: int = 200):
    """The batch record page; ``event`` is the "Record an event" form as typed when it was
    refused (shown open with the reason)."""
    batch = batches.get_batch(runtime(), batch_id)
    forms_by_id = form_fields(batch)
    steps = batches.steps(runtime(), batch_id)
    # QA's review closes the record to corrections
    reviewed_at = batch["reviewed_at"]
    may_correct = permissions.allowed(g.person.roles, "step.correct") and reviewed_at is None
    for step in steps:
        add_rows(step, forms_by_id, batch_id, may_correct and may_correct_step(g.person, step))
    exceptions = readable_exceptions(batch_id)
    by_step: dict[int, list] = {}
    for exc in exceptions:
        by_step.setdefault(exc.get("step_seq"), []).append(exc)
    tasks = batches.ready_tasks(runtime(), batch_id)
    people = []
    if permissions.allowed(g.person.roles, "task.reassign") and tasks:
        people = [
            u
            for u in users.list_users(runtime())
            if u.get("active") and not u.get("locked") and u.get("kind") == "person"
        ]
    notes = notices.assignment_notes([batch_id]) if any(t.get("assigned_to") for t in tasks) else {}
    assignments = {task_id: note for (_, task_id), note in notes.items()}
    return render_template(
        "ui/batch.html",
        batch=batch,
        assignments=assignments,
        names=notices.people_named([batch.get("hold"), *assignments.values()]),
        steps=steps,
        exceptions=exceptions,
        exceptions_by_step=by_step,
        tasks=tasks,
        people=people,
        reviewed_at=reviewed_at,
        event=event or blank_event(),
        event_kinds=KINDS,
    ), status


def readable_exceptions(batch_id: str) -> list[dict[str, Any]]:
    """The batch's exceptions, for roles that may read them (others see none)."""
    if not permissions.allowed(g.person.roles, "exception.read"):
        return []
    return batches.exceptions(runtime(), batch_id)


@bp.route("/batches/<batch_id>/diagram")
def batch_diagram(batch_id: str):
    """The recipe's BPMN with done / current element ids, for the bpmn-js viewer."""
    return jsonify(diagram_view(batches.diagram(runtime(), batch_id)))


@bp.route("/batches/<batch_id>/steps/<id:seq>")
def step_page(batch_id: str, seq: int):
    """What was just recorded, with the exceptions it raised (shown at once)."""
    batch = batches.get_batch(runtime(), batch_id)
    step = next((s for s in batches.steps(runtime(), batch_id) if s["seq"] == seq), None)
    if step is None:
        abort(404, description=f"Batch {batch_id} has no step {seq}.")
    forms_by_id = form_fields(batch)
    add_rows(step, forms_by_id)
    raised = [e for e in readable_exceptions(batch_id) if e.get("step_seq") == seq]
    mine = {t["id"] for t in batches.my_tasks(runtime(), g.person, batch_id=batch_id)}
    next_tasks = [t for t in batches.ready_tasks(runtime(), batch_id) if t["id"] in mine]
    return render_template(
        "ui/step.html",
        batch=batch,
        step=step,
        exceptions=raised,
        next_tasks=next_tasks,
        trend_check_pending=batches.trend_check_pending(runtime(), batch_id, seq),
    )
