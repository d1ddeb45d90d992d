"""Simulated equipment for the demo and the tests: hourly bioreactor samples of
simulated fed-batch fermentations (``analytics.simulator``), sent as a historian that
knows the feed start would send them, and written as the history of earlier batches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from engine.models import Batch, EquipmentSample
from engine.runtime import Runtime

from ..simulator import VARIABLE_NAMES, feed_start, simulate_batches
from ..timeseries import align


def simulated_samples(
    n_batches: int, seed: int, *, faults=None, reference: float | None = None, hours: int = 300
) -> tuple[list[list[dict[str, Any]]], float]:
    """Hourly samples of simulated fed-batch fermentations (``analytics.simulator``), with
    ``t_hours`` = batch maturity: the batch phase stretched so that the feed starts at
    ``reference`` (default: the median feed start of these batches), as a historian that
    knows the feed start would send them. Returns (samples per batch, reference)."""
    sims = simulate_batches(n_batches, seed, faults=faults, hours=hours)
    if reference is None:
        reference = float(np.median([feed_start(b) for b in sims]))
    grid = sims[0].times
    out = []
    for b in sims:
        aligned = align(b.times, b.series, grid, [feed_start(b)], [reference])
        out.append(
            [
                {"t_hours": float(t), "values": {v: round(float(x), 6) for v, x in zip(VARIABLE_NAMES, row)}}
                for t, row in zip(grid, aligned)
            ]
        )
    return out, reference


#: where demo history samples come from: (n_batches, seed) -> samples per batch
SampleSource = Callable[[int, int], list[list[dict[str, Any]]]]


def _fermentations(n_batches: int, seed: int) -> list[list[dict[str, Any]]]:
    return simulated_samples(n_batches, seed)[0]


def write_simulated_history(
    rt: Runtime,
    batch_ids: list[str],
    *,
    seed: int,
    unit_procedure: str,
    source: str = "BIOREACTOR-01",
    samples: SampleSource | None = None,
) -> int:
    """Equipment samples for earlier (complete) batches, straight into the table: one
    simulated batch per id (``samples(len(batch_ids), seed)``, by default the simulated
    fermentations of ``simulated_samples``; the demo passes the equipment simulator's
    process model); batches that have samples of the unit procedure already are left
    alone. Demo data. Returns rows."""
    with rt.transaction() as s:
        found = {b.batch_id: b for b in s.scalars(select(Batch).where(Batch.batch_id.in_(batch_ids)))}
        have = set(
            s.scalars(
                select(EquipmentSample.batch_id)
                .where(
                    EquipmentSample.batch_id.in_([b.id for b in found.values()]),
                    EquipmentSample.unit_procedure == unit_procedure,
                )
                .distinct()
            )
        )
        todo = [i for i, b in enumerate(batch_ids) if b in found and found[b].id not in have]
        if not todo:
            return 0
        per_batch = (samples or _fermentations)(len(batch_ids), seed)
        rows = []
        for i in todo:
            batch = found[batch_ids[i]]
            rows += [
                {
                    "batch_id": batch.id,
                    "unit_procedure": unit_procedure,
                    "t_hours": x["t_hours"],
                    "values": x["values"],
                    "source": source,
                    "recorded_at": batch.created_at + timedelta(hours=x["t_hours"]),
                }
                for x in per_batch[i]
            ]
        s.execute(insert(EquipmentSample), rows)
        return len(rows)
