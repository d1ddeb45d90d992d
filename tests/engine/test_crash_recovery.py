"""An acknowledged step is never lost: a child process completes steps and is killed
with SIGKILL at random points, 20 times; after each kill the batch is reopened and
checked: every acknowledged step is there exactly once, the record has no gaps, the
batch resumes at the right task, and the audit trail verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine import audit, batches
from tests.support import make_runtime

from .engine_helpers import load

ROOT = Path(__file__).resolve().parents[2]
KILLS = 20


def _run_child_and_kill(url: str, rng: random.Random) -> list[int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.crash_child", url, "CR-1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[int] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            if line.startswith("READY"):
                ready.set()
            elif line.startswith("ACK "):
                acked.append(int(line.split()[1]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(60), proc.stderr.read() if proc.poll() is not None else "child did not start"
    time.sleep(rng.uniform(0.02, 0.4))  # a random point somewhere in a step
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join(5)
    return acked


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_step(rt, db_url):
    load(rt, "loop.bpmn")
    batches.start_batch(rt, "sampling_loop", "CR-1", user="op.crash", parameters={"done": False})
    rng = random.Random(20261125)
    acknowledged: list[int] = []
    for kill in range(KILLS):
        acknowledged += _run_child_and_kill(db_url, rng)
        fresh = make_runtime(db_url)  # a new process's view: nothing cached
        try:
            record = batches.steps(fresh, "CR-1")
            ns = [s["values"]["n"] for s in record]
            assert ns == list(range(1, len(ns) + 1)), f"kill {kill}: gaps or duplicates in {ns}"
            assert [s["seq"] for s in record] == list(range(1, len(record) + 1))
            missing = set(acknowledged) - set(ns)
            assert not missing, f"kill {kill}: acknowledged steps lost: {sorted(missing)}"
            tasks = batches.ready_tasks(fresh, "CR-1")
            assert [t["bpmn_id"] for t in tasks] == ["take_sample"], f"kill {kill}: resumes at {tasks}"
            with fresh.transaction() as s:
                result = audit.verify(s)
            assert result.ok, result.problems
        finally:
            fresh.close()
    assert len(acknowledged) >= KILLS  # the child got work done between kills
