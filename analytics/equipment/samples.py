"""Receiving a running batch's equipment samples: checking what the equipment sends,
storing it in ``equipment_sample`` with the ``score_samples`` job that scores it, and
reading a batch's samples back as a time series."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Batch, EquipmentSample, Job, utcnow
from engine.runtime import Runtime
from engine.vocabulary import BatchState, JobKind

JOB = JobKind.SCORE_SAMPLES
MAX_SAMPLES = 1000  # per request
MAX_VARIABLES = 100
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
UNIT_PROCEDURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,199}$")  # a BPMN id


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def check_samples(unit_procedure: Any, source: Any, samples: Any) -> list[tuple[float, dict[str, float]]]:
    """The samples as (t_hours, {name: number}), or InvalidInput saying what is wrong."""
    if not isinstance(unit_procedure, str) or not UNIT_PROCEDURE.match(unit_procedure):
        raise InvalidInput("unit_procedure must be a BPMN id (letters, digits, _ . -)", code="unit_procedure_invalid")
    if not isinstance(source, str) or not 0 < len(source.strip()) <= 100 or any(ord(c) < 32 for c in source):
        raise InvalidInput("source must be an equipment id of 1 to 100 characters", code="source_invalid")
    if not isinstance(samples, list) or not 0 < len(samples) <= MAX_SAMPLES:
        raise InvalidInput(f"samples must be a list of 1 to {MAX_SAMPLES} samples", code="samples_invalid")
    out = []
    for i, sample in enumerate(samples):
        where = {"index": i}
        if not isinstance(sample, dict):
            raise InvalidInput(f"sample {i} must be an object", code="samples_invalid", details=where)
        t = _number(sample.get("t_hours"))
        if t is None or t < 0:
            raise InvalidInput(
                f"sample {i}: t_hours must be a finite number >= 0", code="samples_invalid", details=where
            )
        values = sample.get("values")
        if not isinstance(values, dict) or not 0 < len(values) <= MAX_VARIABLES:
            raise InvalidInput(
                f"sample {i}: values must map 1 to {MAX_VARIABLES} names to numbers",
                code="samples_invalid",
                details=where,
            )
        clean = {}
        for name, value in values.items():
            if not isinstance(name, str) or not VARIABLE_NAME.match(name):
                raise InvalidInput(
                    f"sample {i}: {str(name)[:70]!r} is not a variable name (letters, digits, _)",
                    code="samples_invalid",
                    details=where,
                )
            number = _number(value)
            if number is None:
                raise InvalidInput(f"sample {i}: {name} must be a finite number", code="samples_invalid", details=where)
            clean[name] = number
        out.append((t, clean))
    return out


def record_samples(
    rt: Runtime,
    batch_id: str,
    unit_procedure: str,
    source: str,
    samples: list[dict[str, Any]],
    *,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    """Store a running batch's equipment samples and schedule one ``score_samples`` job,
    in one transaction."""
    checked = check_samples(unit_procedure, source, samples)
    now = recorded_at or utcnow()
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            raise NotFound(f"batch {batch_id!r} not found", code="batch_not_found")
        if batch.state != BatchState.RUNNING:
            raise Conflict(
                f"batch {batch_id} is {batch.state}; equipment samples are taken while it runs",
                code="batch_not_running",
                details={"state": batch.state},
            )
        s.execute(
            insert(EquipmentSample),
            [
                {
                    "batch_id": batch.id,
                    "unit_procedure": unit_procedure,
                    "t_hours": t,
                    "values": values,
                    "recorded_at": now,
                    "source": source,
                }
                for t, values in checked
            ],
        )
        job = Job(kind=JOB, batch_id=batch.id, payload={"unit_procedure": unit_procedure}, max_attempts=3)
        s.add(job)
        s.flush()
        return {"batch_id": batch_id, "unit_procedure": unit_procedure, "received": len(checked), "job_id": job.id}


def series_of(rows: Sequence[tuple[float, dict[str, Any]]], variables: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Times (increasing, a repeated time keeps its last sample) and the matrix of the
    given variables; samples without all of them are left out."""
    by_time: dict[float, list[float]] = {}
    for t, values in rows:
        if all(_number((values or {}).get(v)) is not None for v in variables):
            by_time[float(t)] = [float(values[v]) for v in variables]
    times = np.array(sorted(by_time), dtype=float)
    return times, np.array([by_time[t] for t in times], dtype=float).reshape(len(times), len(variables))


def samples_of(s: Session, batch_pks: list[int], unit_procedure: str | None = None):
    """Rows (batch_id, unit_procedure, t_hours, values, source, recorded_at) in time order."""
    e = EquipmentSample
    stmt = (
        select(e.batch_id, e.unit_procedure, e.t_hours, e.values, e.source, e.recorded_at)
        .where(e.batch_id.in_(batch_pks))
        .order_by(e.batch_id, e.unit_procedure, e.t_hours, e.id)
    )
    if unit_procedure is not None:
        stmt = stmt.where(e.unit_procedure == unit_procedure)
    return list(s.execute(stmt))


def sample_count(rt: Runtime, batch_id: str, unit_procedure: str) -> int:
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == batch_id)).first()
        if batch is None:
            return 0
        return int(
            s.scalar(
                select(func.count())
                .select_from(EquipmentSample)
                .where(EquipmentSample.batch_id == batch.id, EquipmentSample.unit_procedure == unit_procedure)
            )
        )
