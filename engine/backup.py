"""``batchline backup`` and ``restore``: one self-describing copy of the record that can be
put back and proven intact (21 CFR 11.10(c), Annex 11 §7.2: records protected and
retrievable throughout the retention period; a backup is only good if a restore verifies).

A backup is a directory (or a ``.tar`` of one) holding the database (SQLite: the online
backup API, one consistent copy while the application writes; PostgreSQL: ``pg_dump -Fc``
inside an exported snapshot, so the audit head read beside it is the dump's own), the
audit anchors (copied BEFORE the database: an anchor is written after its commit, so
every anchored entry is in the copy), and ``manifest.json`` (version, alembic revision,
time, who, database kind, the audit head, the audit key's fingerprint, SHA-256 of each
part). The audit KEY is a secret and is left out unless asked (``include_keys``): a
backup that carries the key lets whoever holds the backup re-seal a forged trail.

A restore checks everything before it writes anything: the manifest and each part's
hash, the database kind, a schema the code knows, the audit key that sealed the trail,
an empty target (unless forced). It then restores the database and the anchors (the
anchors found there are kept aside, never deleted), runs ``audit verify`` with the
anchors, and only then records the restore in the (restored) trail.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, Engine, make_url

from . import audit
from .audit.keys import anchor_path, key_path
from .errors import BatchlineError
from .runtime import Runtime
from .vocabulary import AuditScheme

FORMAT = 1
MANIFEST = "manifest.json"
ANCHORS = "audit-anchors.jsonl"
KEY = "audit.key"
#: the key files of stored subscriber and connector secrets (engine.secret_store), beside the audit key
SECRET_FILES = ("subscribers.key", "connectors.key")
DB_PART = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}


class BackupRefused(BatchlineError):
    """A backup or restore that would not be sound; nothing was written."""

    code = "backup_refused"
    status = 409


def who() -> str:
    """Who runs a backup from a shell: the operating-system account and host (backups
    are run by whoever administers the server, not by a Batchline account)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = f"uid{os.getuid()}"
    return f"os:{login}@{socket.gethostname()}"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("batchline")
    except PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _kind(engine: Engine) -> str:
    name = engine.dialect.name
    if name not in DB_PART:
        raise BackupRefused(f"backups of a {name} database are not supported", code="backup_unsupported")
    return name


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupRefused(
            f"{name} was not found on PATH: install the PostgreSQL client tools (Debian: postgresql-client) "
            "of the server's major version or newer",
            code="backup_tool_missing",
        )
    return found


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password (it goes in PGPASSWORD, not argv,
    which other local users can read)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dsn, env


def _owner_url(rt: Runtime) -> URL:
    """The schema owner's URL (a restore drops and creates tables), else the app's."""
    return make_url(rt.settings.migration_database_url or rt.settings.database_url)


def _head(first: Any) -> dict[str, Any]:
    """The audit head and schema revision of a copy; ``first(sql)`` -> its first row."""
    row = first("SELECT last_id, last_hash, scheme FROM audit_head WHERE id = 1")
    revision = (first("SELECT version_num FROM alembic_version") or [None])[0]
    head = {"id": row[0], "hash": row[1], "scheme": row[2]} if row else {"id": 0, "hash": None, "scheme": None}
    return {"audit_head": head, "revision": revision}


def _dump_sqlite(rt: Runtime, dest: Path) -> dict[str, Any]:
    source = sqlite3.connect(str(rt.db.url.database))
    target = sqlite3.connect(str(dest))
    try:
        source.backup(target)  # all pages in one step, under one read transaction: consistent
    finally:
        source.close()
    try:
        return _head(lambda sql: target.execute(sql).fetchone())
    finally:
        target.close()


def _dump_postgresql(rt: Runtime, dest: Path) -> dict[str, Any]:
    pg_dump = _tool("pg_dump")
    url = make_url(rt.settings.database_url)
    dsn, env = _libpq(url)
    # a REPEATABLE READ transaction exports its snapshot; pg_dump dumps exactly that
    # snapshot, so the head and revision read here are the dump's own
    with rt.db.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            state = _head(lambda sql: conn.exec_driver_sql(sql).first())
            done = subprocess.run(
                [pg_dump, "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(dest), "-d", dsn],
                env=env,
                capture_output=True,
                text=True,
            )
    if done.returncode:
        raise BackupRefused(f"pg_dump failed: {done.stderr.strip()}", code="backup_failed")
    return state


def _seal_legacy_trail(rt: Runtime, user: str) -> None:
    """A trail only older releases wrote (upgraded, no keyed entry yet) binds no record
    rows, so its copy could not verify. Recording that a backup starts seals it first
    (the first keyed entry does, engine.audit.chain) and anchors the head."""
    with rt.transaction() as s:
        head = s.execute(text("SELECT last_id, scheme FROM audit_head WHERE id = 1")).first()
        if head is not None and head[0] and head[1] != AuditScheme.KEYED:
            audit.record(s, user=user, action="backup.started", object_type="database", object_id=_kind(rt.db))


def take(rt: Runtime, to: str | os.PathLike, *, user: str, include_keys: bool = False) -> dict[str, Any]:
    """Write one backup to ``to`` (a new directory, or a ``.tar`` file) and audit it."""
    dest = Path(to)
    try:
        return _take(rt, dest, user=user, include_keys=include_keys)
    except OSError as exc:
        raise BackupRefused(
            f"the backup could not be written to {dest}: {exc.strerror or exc}", code="backup_failed"
        ) from exc


def _take(rt: Runtime, dest: Path, *, user: str, include_keys: bool) -> dict[str, Any]:
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise BackupRefused(f"{dest} exists: a backup is written to a new path, never over another one")
    kind = _kind(rt.db)
    keys = audit.load_keys(rt.settings)
    _seal_legacy_trail(rt, user)
    as_tar = dest.suffix == ".tar"
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".batchline-backup-", dir=dest.parent)) if as_tar else dest
    try:
        work.mkdir(parents=True, exist_ok=True)
        os.chmod(work, 0o700)
        parts: list[str] = []
        anchors = anchor_path(rt.settings)
        if anchors.exists():  # first: every anchored entry is then in the database copy
            shutil.copyfile(anchors, work / ANCHORS)
            parts.append(ANCHORS)
        state = (_dump_sqlite if kind == "sqlite" else _dump_postgresql)(rt, work / DB_PART[kind])
        parts.append(DB_PART[kind])
        head = state["audit_head"]
        if ANCHORS not in parts and head["id"] and head["scheme"] == AuditScheme.KEYED:
            raise BackupRefused(
                f"the audit trail has {head['id']} entries but there is no anchor file at {anchors}: restore or "
                "configure it (audit_anchor_file), or anchor the head now (`batchline audit anchor`), then back up",
                code="backup_no_anchors",
            )
        if include_keys:
            if rt.settings.audit_key:
                (work / KEY).write_text(rt.settings.audit_key.strip() + "\n", encoding="utf-8")
            else:
                shutil.copyfile(key_path(rt.settings), work / KEY)
            os.chmod(work / KEY, 0o600)
            parts.append(KEY)
            for name in SECRET_FILES:
                found = key_path(rt.settings).parent / name
                if found.is_file():
                    shutil.copyfile(found, work / name)
                    os.chmod(work / name, 0o600)
                    parts.append(name)
        manifest = {
            "format": FORMAT,
            "batchline_version": version(),
            "database": kind,
            "revision": state["revision"],
            "audit_head": state["audit_head"],
            "audit_key": keys.fingerprint,
            "includes_key": include_keys,
            "created_at": datetime.now(UTC).isoformat(),
            "created_by": user,
            "parts": {p: {"sha256": _sha256(work / p), "bytes": (work / p).stat().st_size} for p in parts},
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if as_tar:  # made 0600 from the start: the database is never readable by others, even briefly
            with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                with tarfile.open(fileobj=fh, mode="w") as tar:
                    for name in [MANIFEST, *parts]:
                        tar.add(work / name, arcname=name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # no half backup left to be mistaken for one
        if as_tar:
            dest.unlink(missing_ok=True)
        raise
    finally:
        if as_tar:
            shutil.rmtree(work, ignore_errors=True)
    digest = _sha256(dest / MANIFEST) if not as_tar else _sha256(dest)
    with rt.transaction() as s:
        audit.record(
            s,
            user=user,
            action="backup.taken",
            object_type="database",
            object_id=kind,
            new={"path": str(dest.resolve()), "audit_head": state["audit_head"]["id"], "sha256": digest},
        )
    return {**manifest, "path": str(dest.resolve()), "sha256": digest}
