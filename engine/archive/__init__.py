"""The archive: completed batches QA released or rejected, older than the retention,
leave the live tables for a sealed file each (docs/archive.md).

Modules: ``files`` (one gzip'd canonical JSON file per batch, written once, read only
against its hash), ``moving`` (archiving one batch in one transaction: the file, the
``archived_batch`` row, the audit entry sealing its SHA-256, the live rows removed),
``selection`` (which batches are due; a run; the worker's daily ``run_due``),
``reading`` (the archive of a batch, its record from the verified file), ``check``
(every archive against the audit trail), ``guard`` (nothing is added to an archived
batch's record).
"""

from __future__ import annotations

from .check import problems
from .files import ArchiveUnreadable, archive_dir
from .guard import install
from .moving import archive_batch
from .reading import archived_record, status
from .selection import due, run, run_due

__all__ = [
    "ArchiveUnreadable",
    "archive_batch",
    "archive_dir",
    "archived_record",
    "due",
    "install",
    "problems",
    "run",
    "run_due",
    "status",
]
