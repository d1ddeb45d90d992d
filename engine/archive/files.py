"""Archive files: one gzip'd canonical JSON file per archived batch, written once.

Why a file per batch, not archive tables: the live database stays small (the workflow
rows of a batch are most of its rows), the files can go to cheaper or write-once storage
by moving ``archive_dir``, and anyone can check one with ``sha256sum`` against the hash
the audit trail holds. Files are grouped by the month they were archived in
(``2026-12/42-B-0042.json.gz``); the location stored is relative to ``archive_dir``.

The bytes are deterministic for the same content (canonical JSON, gzip without a time
stamp), so writing a file twice never changes it; a file is written to a temporary name,
flushed to disk and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from ..audit.keys import key_path
from ..config import Settings
from ..errors import BatchlineError
from ..workflow_store import canonical

#: the version of the archive file's shape
FILE_FORMAT = 1


class ArchiveUnreadable(BatchlineError):
    """The archive file of a batch is missing, changed or not readable: never served."""

    code = "archive_unreadable"
    status = 500


def archive_dir(settings: Settings) -> Path:
    if settings.archive_dir:
        return Path(settings.archive_dir)
    return key_path(settings).parent / "archive"


def location_for(batch_pk: int, batch_id: str, at: datetime) -> str:
    """The file's place under ``archive_dir``: month folder, then the batch's row id (unique
    even for ids that read alike once made safe for a file name)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in batch_id)[:80]
    return f"{at:%Y-%m}/{batch_pk}-{safe}.json.gz"


def encode(content: dict[str, Any]) -> bytes:
    return gzip.compress(canonical(content).encode("utf-8"), compresslevel=6, mtime=0)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(settings: Settings, location: str, data: bytes) -> Path:
    """Write the file (temporary name, fsync, rename, fsync the folder)."""
    path = archive_dir(settings) / location
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def read(settings: Settings, location: str, expected_hash: str) -> dict[str, Any]:
    """The archive's content, only if the file's SHA-256 is ``expected_hash``."""
    path = archive_dir(settings) / location
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ArchiveUnreadable(f"archive file {location} is missing", code="archive_missing") from exc
    except OSError as exc:
        raise ArchiveUnreadable(f"archive file {location} cannot be read: {exc.strerror}") from exc
    actual = sha256_bytes(data)
    if actual != expected_hash:
        raise ArchiveUnreadable(
            f"archive file {location} does not match its hash (SHA-256 {actual[:16]}…, "
            f"the audit trail says {expected_hash[:16]}…): changed after archiving",
            code="archive_changed",
        )
    try:
        content = json.loads(gzip.decompress(data))
    except (OSError, ValueError) as exc:
        raise ArchiveUnreadable(f"archive file {location} is not a readable archive") from exc
    if not isinstance(content, dict) or content.get("format") != FILE_FORMAT:
        raise ArchiveUnreadable(f"archive file {location} has an unknown format")
    return content
