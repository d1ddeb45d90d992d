"""The audit trail and the record it protects (21 CFR 11.10(e), Annex 11 §9).

Modules: ``keys`` (the audit key the database does not hold), ``chain`` (appending keyed,
chained entries at commit: the head is locked last), ``binding`` (the
``step``/``signature``/``correction`` rows each entry records), ``anchors`` (the head
written outside the database), ``verify`` (all checks).
The database side — triggers refusing UPDATE/DELETE/TRUNCATE and an application role
without those rights — is in ``engine/append_only.py``. docs/security.md, "The audit
trail and the record", explains the threat and the production settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from .anchors import AnchorFailed, anchor_now, due, write_anchor
from .chain import (
    ANCHOR_NOW_INFO,
    GENESIS,
    HEAD_INFO,
    HEAD_START_INFO,
    HEAD_TX_INFO,
    KEYS_INFO,
    expected_hash,
    flush_pending,
    keyed_hash,
    legacy_hash,
    record,
    session_keys,
)
from .keys import AuditKeyError, AuditKeys, KeySource, anchor_path, key_path, load_keys
from .verify import VerifyResult, verify

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = [
    "GENESIS",
    "AnchorFailed",
    "AuditKeyError",
    "AuditKeys",
    "VerifyResult",
    "anchor",
    "anchor_path",
    "expected_hash",
    "flush_pending",
    "install",
    "key_path",
    "keyed_hash",
    "legacy_hash",
    "load_keys",
    "record",
    "session_keys",
    "verify",
]


def install(rt: Runtime) -> None:
    """Give every session of the runtime the audit key, and anchor the head after a
    commit that made the chain keyed or crossed a multiple of ``audit_anchor_every``."""
    source = KeySource(rt.settings)
    rt.sessions.configure(info={KEYS_INFO: source})
    settings = rt.settings

    def after_commit(session: Session) -> None:
        head = session.info.pop(HEAD_INFO, None)  # the lock ended with the transaction
        session.info.pop(HEAD_TX_INFO, None)
        if head is None:
            return
        start = session.info.pop(HEAD_START_INFO, head.last_id)
        if session.info.pop(ANCHOR_NOW_INFO, False) or due(start, head.last_id, settings.audit_anchor_every):
            try:
                write_anchor(settings, source.get(), head.last_id, head.last_hash, strict=False)
            except Exception:  # noqa: BLE001 - an anchor never fails a committed change
                import logging

                logging.getLogger("batchline.audit").exception("audit anchor failed")

    event.listen(rt.sessions, "after_commit", after_commit)


def anchor(rt: Runtime) -> dict[str, Any]:
    """Anchor the current head now (file and, if configured, the external sink)."""
    with rt.transaction() as s:
        return anchor_now(rt.settings, session_keys(s), s)
