"""Small helpers the engine tests share: import a test recipe, complete tasks by BPMN id."""

from __future__ import annotations

import time

from engine import batches, jobs, recipes
from tests.support import approved_recipe, person, read_recipe


def load(rt, *files: str, approve: bool = True, **kw):
    """A recipe from tests/recipes, imported by qa.lead and (unless ``approve=False``)
    approved by another QA person with an e-signature: effective at once."""
    if approve:
        return approved_recipe(rt, read_recipe(*files), user="qa.lead", **kw)
    return recipes.import_recipe(rt, read_recipe(*files), user="qa.lead", **kw)


def ready(rt, batch_id: str) -> dict[str, dict]:
    return {t["bpmn_id"]: t for t in batches.ready_tasks(rt, batch_id)}


def complete(rt, batch_id: str, bpmn_id: str, data: dict | None = None, user: str = "op.anna", **kw):
    tasks = ready(rt, batch_id)
    assert bpmn_id in tasks, f"{bpmn_id} not ready; ready: {sorted(tasks)}"
    if "signer" not in kw:
        kw.setdefault("actor", person(user))
    return batches.complete_task(rt, batch_id, tasks[bpmn_id]["id"], data or {}, user=user, **kw)


def run_jobs_until(rt, predicate, timeout: float = 10.0):
    """Run the job executor (as a worker would) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs.run_due(rt)
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached while running jobs")
