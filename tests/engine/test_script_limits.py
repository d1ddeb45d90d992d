"""Runaway recipe content is stopped, and never stalls other batches (issue 8, point 5).

Unit tests run scripts through the real worker pool (real subprocesses, real rlimits);
the batch tests run a hostile recipe on SQLite and PostgreSQL while a SECOND writer
completes a step of another batch, and measure how long that writer waited.
"""

from __future__ import annotations

import threading
import time

import pytest

from engine import batches
from engine.errors import BatchlineError, EngineFault, ScriptRefused
from engine.scripting import RestrictedEnvironment, ScriptLimitExceeded, ScriptLimits, ScriptResultRefused
from tests.support import approved_recipe, make_runtime, person, read_recipe

LIMITS = ScriptLimits(cpu_seconds=1, memory_mb=256, wall_seconds=4.0)
TEST_LIMITS = dict(script_cpu_seconds=1, script_wall_seconds=4.0, engine_step_seconds=1.0)


def _env() -> RestrictedEnvironment:
    return RestrictedEnvironment(limits=LIMITS)


def test_infinite_loop_is_stopped_by_the_cpu_limit_and_the_pool_recovers():
    env = _env()
    started = time.monotonic()
    with pytest.raises(ScriptLimitExceeded) as err:
        env.execute("while True:\n    pass", {})
    took = time.monotonic() - started
    assert err.value.code == "script_limit" and err.value.status == 422
    assert err.value.details["limit"] in ("cpu", "wall")
    assert took < LIMITS.wall_seconds + 1.0
    data = {"a": 1}
    env.execute("b = a + 41 * 1", data)  # a fresh worker answers the next script
    assert data == {"a": 1, "b": 42}


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("x = 7**10**7", "** would build an integer of about 28,073,550 bits"),
        ("x = 1 << 10**9", "<< would build an integer of about 1,000,000,001 bits"),
        ("x = pow(7, 10**7)", "** would build an integer of about 28,073,550 bits"),
        ("x = 3\nx **= 10**7", "** would build an integer of about 15,849,626 bits"),
    ],
)
def test_huge_integers_are_refused_before_computing(source, what):
    started = time.monotonic()
    with pytest.raises(ScriptRefused) as err:
        _env().execute(source, {})
    assert time.monotonic() - started < 1.0  # 12 s on main for 7**10**7
    assert err.value.code == "script_refused"
    assert what in err.value.message and "at most 4,096 bits" in err.value.message


def test_big_int_digits_are_limited():
    with pytest.raises(ValueError, match="Exceeds the limit"):
        _env().execute("x = int('9' * 5000)", {})


@pytest.mark.parametrize("source", ["x = 'a' * 3_000_000_000", "x = [0] * 1_000_000_000"])
def test_huge_allocations_are_refused_by_the_memory_limit(source):
    with pytest.raises(ScriptLimitExceeded) as err:
        _env().execute(source, {})
    assert err.value.details["limit"] == "memory"
    assert "256 MB" in err.value.message


@pytest.mark.parametrize(
    ("source", "element", "problem"),
    [
        ("s = {1, 2}", "`s`", "a set"),
        ("b = b'raw'", "`b`", "a bytes"),
        ("fs = [1, lambda: 1]", "`fs`[1]", "a function (functions cannot be stored)"),
        ("n = 2**4000", "`n`", "an integer of 4,001 bits (at most 64 bits are stored)"),
        ("d = {'ok': {1: 'x'}}", "`d`['ok'][1]", "a dict key that is a int, not text"),
        ("f = float('nan')", "`f`", "the non-finite number nan"),
        ("r = {'x': range(3)}", "`r`['x']", "a range"),
    ],
)
def test_script_results_must_be_recordable(source, element, problem):
    data = {"keep": 1}
    with pytest.raises(ScriptResultRefused) as err:
        _env().execute(source, data)
    assert err.value.code == "script_result_invalid"
    assert err.value.details == {"element": element, "problem": problem}
    assert err.value.message.startswith(f"script result refused: {element} is {problem}; ")
    assert data == {"keep": 1}  # nothing of a refused script lands in task data


def test_set_result_of_an_expression_is_refused():
    with pytest.raises(ScriptResultRefused, match="the expression's result is a set"):
        _env().evaluate("{1, 2}", {})


def test_task_data_size_is_bounded():
    env = RestrictedEnvironment(limits=ScriptLimits(cpu_seconds=1, wall_seconds=4.0, result_bytes=10_000))
    with pytest.raises(ScriptResultRefused, match="grew over 10,000 bytes"):
        env.execute("s = 'x' * 20_000", {})


def test_trivial_expressions_skip_the_worker_and_keep_python_semantics():
    data = {"i": 3, "n": 5}
    assert _env().evaluate("i >= n", data) is False
    _env().execute("i = i + 1", data)
    assert data == {"i": 4, "n": 5}


# --- whole batches, with a second writer --------------------------------------------

XML = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="{pid}" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:userTask id="go" name="Go"/>
    <bpmn:scriptTask id="script"><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after" name="After"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="go"/>
    <bpmn:sequenceFlow id="f2" sourceRef="go" targetRef="script"/>
    <bpmn:sequenceFlow id="f3" sourceRef="script" targetRef="after"/>
    <bpmn:sequenceFlow id="f4" sourceRef="after" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>"""

HOSTILE = {
    "infinite_loop": ("while True:\n      pass", "script_limit"),
    "huge_pow": ("x = 7**10**7", "script_refused"),
    "huge_string": ("x = 'a' * 3_000_000_000", "script_limit"),
    "big_list": ("x = [0] * 1_000_000_000", "script_limit"),
    "set_result": ("x = {1, 2}", "script_result_invalid"),
    "bytes_result": ("x = b'raw'", "script_result_invalid"),
    "lambda_result": ("x = [lambda: 1]", "script_result_invalid"),
    "huge_int_result": ("x = 2**4000", "script_result_invalid"),
}


def _ready_id(rt, batch_id: str, bpmn_id: str) -> str:
    return next(t["id"] for t in batches.ready_tasks(rt, batch_id) if t["bpmn_id"] == bpmn_id)


def _second_writer(db_url: str, batch_id: str, results: dict) -> threading.Thread:
    """Another server process's request (own runtime, own connections): complete the
    one ready task of ``batch_id`` and measure how long it took."""

    def run():
        other = make_runtime(db_url, **TEST_LIMITS)
        try:
            task = _ready_id(other, batch_id, "go")
            started = time.monotonic()
            batches.complete_task(other, batch_id, task, {}, user="op.ben", actor=person("op.ben"))
            results["took"] = time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            results["error"] = exc
        finally:
            other.close()

    return threading.Thread(target=run)


def _import(rt, pid: str, script: str) -> None:
    approved_recipe(rt, {f"{pid}.bpmn": XML.format(pid=pid, script=script).encode()}, user="qa.lead")


@pytest.mark.parametrize("case", HOSTILE, ids=HOSTILE.keys())
def test_hostile_script_is_refused_and_another_batch_is_not_blocked(db_url, case):
    script, code = HOSTILE[case]
    rt = make_runtime(db_url, **TEST_LIMITS)
    try:
        _import(rt, "hostile", script)
        _import(rt, "calm", "y = 1")
        batches.start_batch(rt, "hostile", "H-1", user="op.anna")
        batches.start_batch(rt, "calm", "C-1", user="op.anna")
        revision = batches.get_batch(rt, "H-1")
        go = _ready_id(rt, "H-1", "go")

        other: dict = {}
        writer = _second_writer(db_url, "C-1", other)
        started = time.monotonic()
        failure: dict = {}

        def hostile():
            try:
                batches.complete_task(rt, "H-1", go, {}, user="op.anna", actor=person("op.anna"))
            except BatchlineError as exc:
                failure["error"] = exc
            failure["took"] = time.monotonic() - started

        runaway = threading.Thread(target=hostile)
        runaway.start()
        time.sleep(0.2)  # the hostile script is running (and holds the batch lock)
        writer.start()
        runaway.join(30)
        writer.join(30)

        assert isinstance(failure.get("error"), BatchlineError), failure
        assert failure["error"].code == code
        assert failure["took"] < TEST_LIMITS["script_wall_seconds"] + 2.0
        assert "error" not in other, other
        # scripts run before the batch is locked (SQLite: before the write lock is taken),
        # so the second writer does not wait for the hostile script (it did until its limit)
        assert other["took"] < 2.0, other
        assert batches.get_batch(rt, "C-1")["state"] == "running"
        assert set(t["bpmn_id"] for t in batches.ready_tasks(rt, "C-1")) == {"after"}
        # the hostile batch is unchanged: same task still ready, nothing recorded
        assert batches.get_batch(rt, "H-1") == revision
        assert [t["bpmn_id"] for t in batches.ready_tasks(rt, "H-1")] == ["go"]
        assert batches.steps(rt, "H-1") == []
    finally:
        rt.close()


def test_runaway_gateway_loop_answers_within_a_second_and_another_batch_is_not_blocked(db_url):
    rt = make_runtime(db_url, **TEST_LIMITS)
    try:
        approved_recipe(rt, read_recipe("gateway_loop.bpmn"), user="qa.lead")
        _import(rt, "calm", "y = 1")
        batches.start_batch(rt, "calm", "C-2", user="op.anna")
        other: dict = {}
        writer = _second_writer(db_url, "C-2", other)
        writer.start()
        started = time.monotonic()
        with pytest.raises(EngineFault) as err:
            batches.start_batch(rt, "gateway_loop", "LOOP-X", user="op.anna", parameters={"n": 10**9})
        took = time.monotonic() - started
        writer.join(30)
        assert err.value.code == "engine_step_budget"
        assert err.value.details["seconds"] == 1.0 and err.value.details["budget"] == 10_000
        # 1 s of engine time (16 s on main), plus starting the batch; wall time on a shared
        # 2-core machine with the second writer running at the same time: 1.1-2.6 s seen
        assert took < 3.5
        assert "error" not in other and other["took"] < 3.0, other
        assert [b for b in batches.list_batches(rt) if b["batch_id"] == "LOOP-X"] == []
    finally:
        rt.close()


def test_scripts_run_before_the_lock_and_the_batch_is_rechecked_under_it(db_url):
    """A hold that lands while a step's script runs is not blocked by it, and the step,
    worked out on the running batch, is then refused: the revision and state are checked
    again once the batch is locked, the work is redone on the held batch, and refused."""
    rt = make_runtime(db_url, script_cpu_seconds=20, script_wall_seconds=40.0)
    try:
        _import(rt, "slow", "x = 0\nfor k in range(40_000_000):\n    x = x + 1")
        batches.start_batch(rt, "slow", "S-1", user="op.anna")
        go = _ready_id(rt, "S-1", "go")
        outcome: dict = {}

        def step():
            began = time.monotonic()
            try:
                outcome["ok"] = batches.complete_task(rt, "S-1", go, {}, user="op.anna", actor=person("op.anna"))
            except BatchlineError as exc:
                outcome["error"] = exc
            outcome["took"] = time.monotonic() - began

        worker = threading.Thread(target=step)
        worker.start()
        time.sleep(0.3)
        started = time.monotonic()
        batches.change_state(rt, "S-1", "hold", user="sv.sam", reason="line clearance")
        held_after = time.monotonic() - started
        assert worker.is_alive(), "the script finished before the hold: make it slower"
        worker.join(60)
        # the hold did not wait for the script: it took a fraction of the step's time (a
        # hold that waited would take the rest of the script's run); on a loaded 2-core
        # machine the hold alone was seen to take up to 2.4 s, so 1 s is not the bound
        assert held_after < 1.0 or held_after < 0.5 * outcome["took"], (held_after, outcome["took"])
        assert "ok" not in outcome and outcome["error"].code == "batch_held"
        assert batches.steps(rt, "S-1") == []
        batches.change_state(rt, "S-1", "resume", user="sv.sam", reason="cleared")
        batches.complete_task(rt, "S-1", go, {}, user="op.anna", actor=person("op.anna"))
        assert [s["bpmn_id"] for s in batches.steps(rt, "S-1")] == ["go"]
    finally:
        rt.close()
