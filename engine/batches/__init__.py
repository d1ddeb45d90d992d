"""Batches: starting them, completing their steps, holding, resuming, aborting.

One step is ONE transaction (see docs/architecture.md, "one step, end to end"): lock the
batch, append the step record, advance the workflow, write the changed task rows, audit
entries and outbox events, commit — then answer. Either all of it exists or none of it
does.

The ISA-88 state (idle/running/held/complete/aborted) is Batchline's own audited layer:
SpiffWorkflow has no hold. A held or aborted batch accepts no step, and its timers and
service tasks wait.

One module per job; ``from engine import batches`` and ``batches.<name>`` stay the way
to call them:

- ``queries``: reading a batch, its record, ready tasks, exceptions, the diagram
- ``unit_of_work``: the transaction of one change (lock, replay, borrow, persist)
- ``step_path``: starting a batch, completing a task, appending steps, exceptions
- ``signatures``, ``corrections``: e-signatures and corrections of the record
- ``before_signing``: what is checked before anyone's password (task found, caller may)
- ``supervision``: hold / resume / abort and reassignment
- ``waits``: messages, timers and service tasks
- ``tasks``, ``inputs``, ``descriptions``: what they share
"""

from __future__ import annotations

from .before_signing import SigningPlan, check_own_signature, may_complete, may_correct, witness_wanted
from .corrections import correct_step
from .descriptions import describe, describe_exception, describe_signature, describe_step
from .inputs import MAX_ID_LEN, SCALARS
from .queries import (
    PAGE_DEFAULT,
    PAGE_MAX,
    TaskPage,
    diagram,
    exceptions,
    get_batch,
    list_batches,
    my_tasks,
    ready_tasks,
    steps,
    task_page,
    trend_check_pending,
)
from .signatures import signed_content
from .step_path import append_step, complete_task, raise_exception, start_batch
from .supervision import STATES, TRANSITIONS, change_state, reassign
from .task_times import open_task
from .tasks import RecipeContent, task_role
from .unit_of_work import Outcome, answered
from .waits import complete_service_task, deliver_message, fire_timer, service_task_call

__all__ = [
    "PAGE_DEFAULT",
    "PAGE_MAX",
    "TaskPage",
    "MAX_ID_LEN",
    "SCALARS",
    "STATES",
    "TRANSITIONS",
    "Outcome",
    "RecipeContent",
    "SigningPlan",
    "answered",
    "append_step",
    "change_state",
    "check_own_signature",
    "complete_service_task",
    "complete_task",
    "correct_step",
    "deliver_message",
    "describe",
    "describe_exception",
    "describe_signature",
    "describe_step",
    "diagram",
    "exceptions",
    "fire_timer",
    "get_batch",
    "list_batches",
    "may_complete",
    "may_correct",
    "my_tasks",
    "open_task",
    "raise_exception",
    "ready_tasks",
    "reassign",
    "service_task_call",
    "signed_content",
    "start_batch",
    "steps",
    "task_page",
    "task_role",
    "trend_check_pending",
    "witness_wanted",
]
