"""The browser UI for the shop floor: operators complete the electronic batch record,
supervisors hold, resume, abort and reassign, QA reads the record and its exceptions.

``bp`` is a Flask blueprint at "/" (the REST API stays under /api); ``create_app``
registers it. It needs ``SECRET_KEY`` (from ``settings.secret_key``) for the session
cookie, and the bpmn-js files copied into ``static/vendor/bpmn-js`` by ``cd web && npm ci``.

One blueprint, one module per family of pages, each adding its routes to ``bp``:
``pages`` (the blueprint, every request's checks, filters, error pages), ``login``,
``batch_pages`` (my tasks, batches, the batch record, a step), ``supervision`` (hold,
resume, abort, reassign), ``task_form`` (a task, its attachments and signature) and
``corrections``; ``review`` (QA's review by exception, disposition and release).
"""

from . import batch_pages, corrections, login, recipe_diff, review, supervision, task_form
from .pages import bp

__all__ = ["bp", "batch_pages", "corrections", "login", "recipe_diff", "review", "supervision", "task_form"]
