"""Child process for the crash-recovery test: completes steps of one batch as fast as it
can and prints ``ACK n`` after each acknowledged (committed and answered) step."""

import sys

from engine import batches
from engine.users import Person
from tests.support import make_runtime


def main(url: str, batch_id: str) -> None:
    rt = make_runtime(url)  # the test's settings: the same audit key as the parent
    n = len(batches.steps(rt, batch_id))
    print("READY", flush=True)
    while True:
        n += 1
        task = batches.ready_tasks(rt, batch_id)[0]
        out = batches.complete_task(
            rt,
            batch_id,
            task["id"],
            {"n": n, "done": False},
            user="op.crash",
            actor=Person("op.crash", "Op Crash", ("operator",)),
            idempotency_key=f"crash-{n}",
        )
        print(f"ACK {out.body['step']['values']['n']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
