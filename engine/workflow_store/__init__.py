"""Durable SpiffWorkflow state, one row per task — never one blob per step.

Why: SpiffWorkflow 3.2.0's whole-workflow ``serialize_json`` grows with the task tree,
so saving it after every step is quadratic over a batch (see docs/architecture.md: 162 s
of saving over a 3,000-step batch). Here a step writes only the task and process rows
whose content changed; task data is stored once per distinct content (SHA-256), specs
once per recipe.

Three more things keep a long batch as cheap as a short one:

* **A live tree that stays small.** Spiff scans its whole task tree on every task run.
  Finished iterations of a standard loop or multi-instance activity (and the call
  activities inside them) are *pruned* from the in-memory tree once merged: their rows
  stay in the database with ``live = false`` (history is never deleted), they are just
  not loaded again. The loop's list of merged children becomes a ``MergeLog`` that
  counts pruned entries instead of listing them.
* **A cache of loaded workflows** per process, keyed by batch and checked against
  ``Batch.revision`` under the batch lock, so a step does not reload the workflow.
* **Data that cannot break loading**: a ``typename`` key in user data (which Spiff's
  registry would mistake for a serialized object) is escaped on the way in.

Modules: ``encoding`` (data to JSON and hashes), ``tree`` (the workflow classes
Batchline runs, pruning), ``live`` (a loaded workflow and the cache), ``rows`` (the row
shapes compared to find changes, upserts), ``store`` (saving and loading).
"""

from __future__ import annotations

from .encoding import ESCAPED, MERGE_LOG, MergeLog, canonical, encode, register_types, sha256
from .live import LiveWorkflow, WorkflowCache
from .store import WorkflowStore
from .tree import TOP, BatchSubWorkflow, BatchWorkflow, all_processes, prune

__all__ = [
    "ESCAPED",
    "MERGE_LOG",
    "TOP",
    "BatchSubWorkflow",
    "BatchWorkflow",
    "LiveWorkflow",
    "MergeLog",
    "WorkflowCache",
    "WorkflowStore",
    "all_processes",
    "canonical",
    "encode",
    "prune",
    "register_types",
    "sha256",
]
