"""The batch record leaving the system: one complete record (``record.build``), as
JSON (that dict), as BatchML (``batchml.build``, validated against the vendored MESA
schema) and — in ``web.exports`` — as PDF. Pure engine: no Flask here."""

from __future__ import annotations

from .batchml import RecordInvalid
from .record import audit_export, build, content_hash, export_batch_id

__all__ = ["RecordInvalid", "audit_export", "build", "content_hash", "export_batch_id"]
