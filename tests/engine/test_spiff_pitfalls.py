"""SpiffWorkflow 3.2.0 pitfalls (DESIGN.md), each pinned by a test.

Two kinds of test here: ``test_spiff_*`` show the pitfall in plain SpiffWorkflow, so an
upgrade that fixes (or changes) it is noticed; the others show Batchline is not hurt.
"""

from __future__ import annotations

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine import batches
from engine.bpmn import make_serializer, parse_recipe
from engine.scripting import make_script_engine
from tests.support import RECIPES, make_runtime

from .engine_helpers import complete, load, ready


def _spiff_workflow(name: str, **data) -> BpmnWorkflow:
    parsed = parse_recipe({name: (RECIPES / name).read_bytes()})
    wf = BpmnWorkflow(parsed.spec, parsed.subprocess_specs, script_engine=make_script_engine())
    wf.task_tree.data.update(data)
    return wf


def test_spiff_gateway_loop_stalls_and_claims_completion():
    """Spiff's task iterators stop at depth 1000: the loop stalls with a READY task while
    is_completed() says True. If this fails, SpiffWorkflow changed: revisit runner.py."""
    wf = _spiff_workflow("gateway_loop.bpmn", n=2000)
    wf.do_engine_steps()
    ready_anywhere = [t for t in wf.tasks.values() if t.state == TaskState.READY]
    assert ready_anywhere, "pitfall gone: the gateway loop no longer stalls"
    assert wf.is_completed() is True


@pytest.mark.parametrize("recipe", ["gateway_loop.bpmn", "script_loop.bpmn"])
def test_2000_iteration_loop_completes(db_url, recipe):
    # 2,000 iterations in one request pin the depth pitfall, not the engine-step time
    # budget (default 1 s: a standard loop of 2,000 scripts takes longer on a busy machine)
    rt = make_runtime(db_url, engine_step_seconds=60.0)
    try:
        load(rt, recipe)
        process = recipe.removesuffix(".bpmn")
        batches.start_batch(rt, process, "LOOP-1", user="op.anna", parameters={"n": 2000})
        info = batches.get_batch(rt, "LOOP-1")
        assert info["state"] == "running"  # never "complete" while a task is READY
        tasks = ready(rt, "LOOP-1")
        assert set(tasks) == {"confirm"}
        rt.cache.clear()  # and the same after a reload from the database
        complete(rt, "LOOP-1", "confirm", {"count_ok": True})
        assert batches.get_batch(rt, "LOOP-1")["state"] == "complete"
    finally:
        rt.close()


def test_recorded_values_never_change_when_later_tasks_mutate_data(rt):
    load(rt, "aliasing.bpmn")
    batches.start_batch(rt, "aliasing", "AL-1", user="op.anna")
    first = {"value": 5, "readings": [1, 2], "meta": {"instrument": "pH-7"}}
    complete(rt, "AL-1", "first", first)
    rt.cache.clear()
    complete(rt, "AL-1", "second", {"value": 6})
    record = batches.steps(rt, "AL-1")
    assert record[0]["values"] == first
    assert record[1]["values"] == {"value": 6}
    # only scalars reach Spiff's data; the list a later script mutates is the recipe's own
    with rt.transaction() as s:
        from engine.models import Step

        hashes = [r.values_hash for r in s.query(Step).order_by(Step.seq)]
    from engine.workflow_store import canonical, sha256

    assert hashes[0] == sha256(canonical(first))


def test_spiff_typename_key_breaks_plain_deserialization():
    """Spiff's registry takes any dict with a 'typename' key for a serialized object."""
    wf = _spiff_workflow("loop.bpmn", done=False)
    wf.do_engine_steps()
    task = wf.get_tasks(state=TaskState.READY, manual=True)[0]
    task.data["typename"] = "buffer"
    task.data["nested"] = {"typename": "x", "v": 1}
    serializer = make_serializer()
    text = serializer.serialize_json(wf)
    with pytest.raises(TypeError, match="not callable"):  # 3.2.0 looks up a converter for "buffer"
        serializer.deserialize_json(text)


def test_typename_key_in_form_data_round_trips(rt):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "TN-1", user="op.anna", parameters={"done": False})
    data = {"typename": "buffer", "nested": {"typename": "x", "v": 1}, "done": False}
    complete(rt, "TN-1", "take_sample", data)
    rt.cache.clear()  # reload from rows: the escaped key must come back as it was
    tasks = ready(rt, "TN-1")
    assert set(tasks) == {"take_sample"}
    assert batches.steps(rt, "TN-1")[0]["values"] == data
    loaded = rt.store.load
    with rt.transaction() as s:
        from engine.models import Batch

        b = s.query(Batch).filter_by(batch_id="TN-1").one()
        live = loaded(s, b.id, b.revision)
    task = [t for t in live.workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual][0]
    assert task.data["typename"] == "buffer"
    complete(rt, "TN-1", "take_sample", {"done": True})
    assert batches.get_batch(rt, "TN-1")["state"] == "complete"


# The call_service pitfall (an exception inside a connector surfaces as
# ``NameError: script``) is pinned in tests/test_scripting.py; Batchline's own connector
# path keeps the real message (tests/test_engine_features.py, incident test).


def test_waiting_inside_call_activity_survives_reload(rt):
    load(rt, "call_activities.bpmn")
    batches.start_batch(rt, "mab_mini", "CA-9", user="op.anna")
    complete(rt, "CA-9", "line_clearance")
    complete(rt, "CA-9", "thaw_vial")
    for _ in range(3):  # several reloads from rows, no cache
        rt.cache.clear()
        assert set(ready(rt, "CA-9")) == {"count_cells"}
    complete(rt, "CA-9", "count_cells", {"vcd": 1.9})
    rt.cache.clear()
    assert set(ready(rt, "CA-9")) == {"harvest_volume"}


def test_whole_workflow_blob_is_never_written(rt):
    """Per-task rows: a step writes a handful of rows, however long the batch is."""
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "RW-1", user="op.anna", parameters={"done": False})
    from sqlalchemy import func, select

    from engine.models import WorkflowTask

    for i in range(40):
        complete(rt, "RW-1", "take_sample", {"reading": i, "done": False})
    with rt.transaction() as s:
        live = s.scalar(select(func.count()).select_from(WorkflowTask).where(WorkflowTask.live.is_(True)))
        total = s.scalar(select(func.count()).select_from(WorkflowTask))
    assert live < 12  # finished iterations are pruned from the live tree...
    assert total >= 40  # ...but their rows are kept as history
