"""Simulated ERP and LIMS for the demo and for trying recipes without the real systems.

The simulated ERP confirms every goods movement with a document number. The simulated
LIMS registers a sample, answers with its id, and a few seconds later sends the result
back the way a real LIMS would: as a correlated message (``lims_result`` with the
``sample_id``), retried until the batch is waiting for it.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time

from engine.connectors import Completed, ServiceCall

log = logging.getLogger("batchline.simulated")


class SimulatedErp:
    def __init__(self, settings=None):
        self._numbers = itertools.count(4_900_000_001)

    def call(self, call: ServiceCall) -> Completed:
        return Completed({"document": str(next(self._numbers)), "status": "posted"})


class SimulatedLims:
    def __init__(self, settings=None, *, runtime=None, delay_seconds: float = 5.0, seed: int = 7):
        self.runtime = runtime
        self.delay = delay_seconds
        self._numbers = itertools.count(1)
        self._rng = random.Random(seed)

    def call(self, call: ServiceCall) -> Completed:
        sample_id = f"S-{call.batch_id}-{next(self._numbers):03d}"
        if self.runtime is not None:
            result = {
                "sample_id": sample_id,
                "titre": round(self._rng.gauss(4.8, 0.3), 2),
                "bioburden": 0,
                "endotoxin": round(self._rng.uniform(0.01, 0.2), 3),
            }
            threading.Thread(target=self._answer, args=(result,), daemon=True, name="simulated-lims").start()
        return Completed({"sample_id": sample_id, "test": call.params.get("test")})

    def _answer(self, result: dict, attempts: int = 60) -> None:
        from engine import batches
        from engine.errors import NotFound

        time.sleep(self.delay)
        for _ in range(attempts):
            try:
                batches.deliver_message(self.runtime, "lims_result", result, user="svc.lims")
                return
            except NotFound:  # the batch is not waiting for this result yet
                time.sleep(1.0)
            except Exception:  # noqa: BLE001 - a demo helper must never kill the server
                log.exception("simulated LIMS could not deliver %s", result["sample_id"])
                return
