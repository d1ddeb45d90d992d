"""Child process for the two-worker test: a job worker whose ``probe`` jobs record who
ran them (the handler sleeps a little so two workers really overlap)."""

import sys
import time

from sqlalchemy import text

from engine import jobs
from tests.support import make_runtime


def main(url: str, name: str) -> None:
    rt = make_runtime(url, worker_poll_seconds=0.05)  # the test's settings: the parent's audit key

    def probe(rt_, batch_id, task_id, payload):
        time.sleep(0.01)
        with rt_.transaction() as s:
            s.execute(text("INSERT INTO probe_run (job, worker) VALUES (:j, :w)"), {"j": payload["n"], "w": name})

    jobs.HANDLERS["probe"] = probe
    ran = jobs.work(rt, worker=name, idle_exit=True, max_seconds=60)
    print(f"RAN {ran}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
