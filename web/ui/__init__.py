"""The browser UI for the shop floor: operators complete the electronic batch record,
supervisors hold, resume, abort and reassign, QA reads the record and its exceptions.

``bp`` is a Flask blueprint at "/" (the REST API stays under /api); ``create_app``
registers it. It needs ``SECRET_KEY`` (from ``settings.secret_key``) for the session
cookie, and the bpmn-js files copied into ``static/vendor/bpmn-js`` by ``cd web && npm
ci``.

One blueprint, one module per family of pages, each adding its routes to ``bp``: ``pages``
(the blueprint, every request's checks, filters, error pages), ``login``, ``batch_pages``
(my tasks, batches, the batch record, a step), ``supervision`` (hold, resume, abort,
reassign), ``task_form`` (a task, its attachments and signature) and ``corrections``;
``genealogy`` (a lot traced backward and forward); ``record_event`` (an operator's event
from a task or the batch page, for review); ``review`` (QA's review by exception,
disposition and release); ``qualifications`` (people's training records, granted and
revoked by QA or a trainer); ``recipe_pages`` (the recipe list, a recipe, and QA's recipe
editor); ``recipe_diff`` (two versions compared); ``start_batch`` (a supervisor starts a
batch); ``form_answers`` (post/redirect/get: a form's answer never re-posts on back)."""

from . import (
    batch_pages,
    corrections,
    form_answers,
    genealogy,
    login,
    master_data,
    qualifications,
    recipe_diff,
    recipe_pages,
    record_event,
    review,
    scan_check,
    start_batch,
    supervision,
    task_form,
)
from .pages import bp

__all__ = [
    "bp",
    "batch_pages",
    "corrections",
    "form_answers",
    "genealogy",
    "login",
    "master_data",
    "qualifications",
    "recipe_diff",
    "recipe_pages",
    "record_event",
    "review",
    "scan_check",
    "start_batch",
    "supervision",
    "task_form",
]
