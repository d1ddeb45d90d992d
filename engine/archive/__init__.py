"""The archive: completed batches QA released or rejected, older than the retention,
leave the live tables for a sealed file each (docs/archive.md).

Modules: ``files`` (one gzip'd canonical JSON file per batch, written once, read only
against its hash), ``moving`` (archiving one batch in one transaction: the file, the
``archived_batch`` row, the audit entry sealing its SHA-256, the live rows removed),
``selection`` (which batches are due; a run; the worker's daily ``run_due``),
``reading`` (the archive of a batch, its record from the verified file), ``check``
(every archive against the audit trail), ``guard`` (nothing is added to an archived
batch's record), ``daily`` (the worker's daily ``archive_run`` job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import daily, guard
from .check import problems
from .files import ArchiveUnreadable, archive_dir
from .moving import archive_batch
from .reading import archived_record, status
from .selection import due, run, run_due

if TYPE_CHECKING:
    from ..runtime import Runtime


def install(rt: Runtime) -> None:
    """On every runtime: the guard on every session, the ``archive_run`` job handler."""
    guard.install(rt)
    daily.install(rt)


schedule = daily.schedule

__all__ = [
    "ArchiveUnreadable",
    "archive_batch",
    "archive_dir",
    "archived_record",
    "due",
    "install",
    "schedule",
    "problems",
    "run",
    "run_due",
    "status",
]
