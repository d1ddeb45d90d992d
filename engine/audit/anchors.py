"""Anchors: the audit head written outside the database.

The keyed chain stops anyone without the key from recomputing hashes; it cannot stop a
database owner from rolling the whole database back to an earlier, consistent state, or
cutting the newest entries together with the head. An anchor is a line, HMAC'd with the
audit key's anchor sub-key, holding an entry id and its hash, appended (``O_APPEND``,
fsync'd) to a file outside the database and, when ``audit_anchor_url`` is set, POSTed to
an external sink. ``verify --anchors`` checks every anchored head is still in the chain
with the same hash.

Anchored automatically after the commit that makes the chain keyed (its first keyed
entry) and each time ``audit_anchor_every`` entries were added; on demand with
``batchline audit anchor``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy.orm import Session

from ..config import Settings
from ..errors import BatchlineError
from ..models import AuditHead, utcnow
from .binding import utc_text
from .keys import AuditKeys, anchor_path

log = logging.getLogger("batchline.audit")


class AnchorFailed(BatchlineError):
    """An anchor could not be written or sent (the chain itself is unchanged)."""

    code = "audit_anchor_failed"
    status = 503


def _payload(entry_id: int, digest: str, at: str) -> str:
    return json.dumps([entry_id, digest, at], separators=(",", ":"))


def anchor_line(keys: AuditKeys, entry_id: int, digest: str) -> dict[str, Any]:
    at = utc_text(utcnow())
    return {"id": entry_id, "hash": digest, "at": at, "mac": keys.seal_anchor(_payload(entry_id, digest, at))}


def append_to_file(path: Path, line: dict[str, Any]) -> None:
    """Append one line; the file is only ever opened for appending (never rewritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)  # one write of a short line: never interleaved with another
        os.fsync(fd)
    finally:
        os.close(fd)


def post_to_sink(settings: Settings, line: dict[str, Any]) -> None:
    response = requests.post(
        settings.audit_anchor_url,
        json={"type": "batchline.audit.anchor", "source": settings.event_source, **line},
        timeout=settings.audit_anchor_timeout_seconds,
    )
    response.raise_for_status()


def write_anchor(settings: Settings, keys: AuditKeys, entry_id: int, digest: str, *, strict: bool) -> dict[str, Any]:
    """Anchor one head to the file and the sink. ``strict``: a failure raises
    ``AnchorFailed`` (on demand); otherwise it is logged and the next anchor tries again."""
    line = anchor_line(keys, entry_id, digest)
    path = anchor_path(settings)
    try:
        append_to_file(path, line)
        out: dict[str, Any] = {**line, "file": str(path), "sink": None}
        if settings.audit_anchor_url:
            post_to_sink(settings, line)
            out["sink"] = settings.audit_anchor_url
        return out
    except (OSError, requests.RequestException) as exc:
        if strict:
            raise AnchorFailed(f"the audit head could not be anchored: {exc}") from exc
        log.warning("audit anchor of entry %s failed: %s", entry_id, exc)
        return {**line, "file": str(path), "error": str(exc)}


def anchor_now(settings: Settings, keys: AuditKeys, session: Session) -> dict[str, Any]:
    """``batchline audit anchor``: anchor the current head."""
    head = session.get(AuditHead, 1)
    if head is None or not head.last_id:
        raise AnchorFailed("the audit trail is empty: nothing to anchor", code="audit_empty")
    return write_anchor(settings, keys, head.last_id, head.last_hash, strict=True)


def due(start_id: int, end_id: int, every: int) -> bool:
    """True when the entries start_id+1..end_id crossed a multiple of ``every``."""
    return every > 0 and end_id // every > start_id // every


@dataclass
class AnchorCheck:
    """What ``verify --anchors`` found: lines read, the anchored heads, the problems."""

    file: str
    lines: int = 0
    newest: int | None = None
    heads: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # entry id -> [(line no, hash)]
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "anchors": self.lines, "newest": self.newest, "problems": self.problems}


def read_anchors(settings: Settings, keys: AuditKeys) -> AnchorCheck:
    """Read and authenticate every anchor line (a line not HMAC'd with the key is a problem)."""
    path = anchor_path(settings)
    check = AnchorCheck(file=str(path))
    if not path.exists():
        return check
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            check.lines += 1
            try:
                line = json.loads(raw)
                entry_id, digest, at, mac = int(line["id"]), str(line["hash"]), str(line["at"]), str(line["mac"])
            except (ValueError, KeyError, TypeError):
                check.problems.append(f"anchor line {number}: not an anchor (damaged)")
                continue
            if keys.seal_anchor(_payload(entry_id, digest, at)) != mac:
                check.problems.append(f"anchor line {number}: not sealed with the audit key (forged or damaged)")
                continue
            check.heads.setdefault(entry_id, []).append((number, digest))
            check.newest = max(check.newest or 0, entry_id)
    return check


def compare(check: AnchorCheck, hashes: dict[int, str], keyed_entries: int) -> None:
    """Every anchored head must still be in the chain with the same hash."""
    for entry_id in sorted(check.heads):
        for number, digest in check.heads[entry_id]:
            now = hashes.get(entry_id)
            if now is None:
                check.problems.append(
                    f"anchor line {number}: entry {entry_id} is no longer in the trail (truncated or rolled back)"
                )
            elif now != digest:
                check.problems.append(
                    f"anchor line {number}: entry {entry_id} has another hash than when it was anchored (re-chained)"
                )
    if keyed_entries and not check.lines:
        check.problems.append(
            f"no anchor in {check.file} although the trail has {keyed_entries} keyed entries (anchors removed?)"
        )
