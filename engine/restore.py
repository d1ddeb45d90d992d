"""``batchline restore``: put a backup (``engine.backup``) back, and prove it intact.

Everything that could make a restore unsound is checked before anything is written:
the manifest and the SHA-256 of each part (a changed byte, a missing anchor file), the
database kind, a schema revision this code knows (a backup of a newer release is
refused: its tables would be read by code that does not know them), the audit key that
sealed the trail (a restore that cannot be verified is not a restore), and an empty
target unless ``force``. Then the database is restored in one step (SQLite: the backup
API into the file; PostgreSQL: the old tables dropped and the dump loaded in ONE psql
transaction), the anchors put back (those found there are kept aside, never deleted),
an older schema upgraded, ``audit verify --anchors`` run, and only then is the restore
recorded in the restored trail.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from . import audit, migrate
from .audit.keys import AuditKeys, anchor_path, key_path
from .backup import (
    ANCHORS,
    DB_PART,
    FORMAT,
    KEY,
    MANIFEST,
    SECRET_FILES,
    BackupRefused,
    _kind,
    _libpq,
    _owner_url,
    _sha256,
    _tool,
)
from .runtime import Runtime
from .vocabulary import AuditScheme

_NAMES = {MANIFEST, ANCHORS, KEY, *SECRET_FILES, *DB_PART.values()}


@contextmanager
def _opened(source: Path) -> Iterator[Path]:
    """The backup's folder: the directory itself, or a ``.tar`` unpacked (regular files
    with the known names only: a hostile archive cannot write anywhere else)."""
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise BackupRefused(f"{source}: no backup there", code="backup_not_found")
    work = Path(tempfile.mkdtemp(prefix=".batchline-restore-"))
    try:
        try:
            with tarfile.open(source, "r") as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name in _NAMES:
                        tar.extract(member, work, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BackupRefused(f"{source} is not a readable backup archive: {exc}", code="backup_damaged") from exc
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupRefused(f"{folder} has no {MANIFEST}: not a Batchline backup", code="backup_damaged") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupRefused(f"{MANIFEST} is not readable JSON (damaged)", code="backup_damaged") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("parts"), dict)
    ):
        raise BackupRefused(f"{MANIFEST} is not a Batchline backup manifest of format {FORMAT}", code="backup_damaged")
    return manifest


def _check_parts(folder: Path, manifest: dict[str, Any], kind: str) -> None:
    if manifest.get("database") != kind:
        raise BackupRefused(
            f"this is a backup of a {manifest.get('database')} database; the configured database is {kind}",
            code="backup_wrong_database",
        )
    parts = manifest["parts"]
    if DB_PART[kind] not in parts:
        raise BackupRefused(f"the backup has no database part ({DB_PART[kind]})", code="backup_damaged")
    head = manifest.get("audit_head") or {}
    keyed = head.get("scheme", AuditScheme.KEYED.value) == AuditScheme.KEYED  # older manifests: assume keyed
    if int(head.get("id") or 0) and keyed and ANCHORS not in parts:
        raise BackupRefused(
            f"the backup's audit trail has {head.get('id')} entries but no anchors: "
            "a rollback or truncation could not be detected",
            code="backup_damaged",
        )
    for name, part in parts.items():
        path = folder / name
        if name not in _NAMES or not isinstance(part, dict):
            raise BackupRefused(f"the manifest lists an unknown part {name!r}", code="backup_damaged")
        if not path.is_file():
            raise BackupRefused(f"the backup's {name} is missing", code="backup_damaged")
        if _sha256(path) != part.get("sha256"):
            raise BackupRefused(
                f"the backup's {name} does not match its SHA-256 in the manifest (changed or damaged)",
                code="backup_damaged",
            )


def _check_schema(manifest: dict[str, Any]) -> str | None:
    """The code's head revision; refuses a revision this code does not know (newer)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    revision = manifest.get("revision")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.HERE / "migrations"))
    scripts = ScriptDirectory.from_config(cfg)
    try:
        known = revision is None or scripts.get_revision(revision) is not None
    except (CommandError, KeyError, ValueError):
        known = False
    if not known:
        raise BackupRefused(
            f"the backup's schema (revision {revision}, Batchline {manifest.get('batchline_version')}) is newer than "
            f"this Batchline knows (head {scripts.get_current_head()}): restore it with that release or newer",
            code="backup_newer_schema",
        )
    return scripts.get_current_head()


def _check_key(rt: Runtime, folder: Path, manifest: dict[str, Any]) -> str | None:
    """The key that sealed the backup must be the key here (or come with the backup and
    no key be here yet); returns the key text to install, if any."""
    wanted = manifest.get("audit_key")
    carried = None
    if KEY in manifest["parts"]:
        carried = (folder / KEY).read_text(encoding="utf-8").strip()
        if AuditKeys.from_secret(carried).fingerprint != wanted:
            raise BackupRefused("the key in the backup is not the key that sealed it", code="backup_damaged")
    here = key_path(rt.settings)
    if not rt.settings.audit_key and not here.exists():
        if carried is None:
            raise BackupRefused(
                f"no audit key at {here}: put back the audit key kept with your secrets (fingerprint {wanted}) "
                "before restoring, or the restored trail cannot be verified",
                code="backup_key_missing",
            )
        return carried
    current = audit.load_keys(rt.settings).fingerprint
    if current != wanted:
        raise BackupRefused(
            f"the audit key here (fingerprint {current}) did not seal this backup (fingerprint {wanted}): "
            "configure the key that did, or the restored trail cannot be verified",
            code="backup_key_mismatch",
        )
    return None


def _is_empty(rt: Runtime) -> bool:
    """No record yet: no audit entry (every change to the record is audited)."""
    if "audit_event" not in inspect(rt.db).get_table_names():
        return True
    with rt.db.connect() as conn:
        return conn.execute(text("SELECT 1 FROM audit_event LIMIT 1")).first() is None


def _load_sqlite(rt: Runtime, dump: Path) -> None:
    rt.db.dispose()
    source = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
    target = sqlite3.connect(str(rt.db.url.database))
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


#: what the public schema holds, each with how it is dropped (views first, types last);
#: objects of an installed extension are left to the extension
_OBJECTS = (
    ("VIEW", "SELECT quote_ident(viewname) FROM pg_views WHERE schemaname = 'public'"),
    ("TABLE", "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"),
    ("SEQUENCE", "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"),
    (
        "FUNCTION",
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND NOT EXISTS "
        "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
    ),
    (
        "TYPE",
        "SELECT quote_ident(t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd') AND NOT EXISTS "
        "(SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')",
    ),
)


def _drop_everything(rt: Runtime) -> str:
    """The statements that empty the public schema (run in the restore's transaction)."""
    rt.db.dispose()
    lines = []
    with rt.db.connect() as conn:
        for kind, query in _OBJECTS:
            lines += [f"DROP {kind} IF EXISTS {name} CASCADE;" for (name,) in conn.execute(text(query))]
    rt.db.dispose()
    return "\n".join(lines)


def _load_postgresql(rt: Runtime, dump: Path) -> None:
    """Drop what is there and load the dump in one transaction: it all happens or nothing."""
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    dsn, env = _libpq(_owner_url(rt))
    with tempfile.TemporaryDirectory(prefix=".batchline-restore-") as tmp:
        script, drop = Path(tmp) / "restore.sql", Path(tmp) / "drop.sql"
        done = subprocess.run(
            [pg_restore, "--no-owner", "--no-privileges", "-f", str(script), str(dump)], capture_output=True, text=True
        )
        if done.returncode:
            raise BackupRefused(f"pg_restore could not read the dump: {done.stderr.strip()}", code="backup_damaged")
        drop.write_text(_drop_everything(rt) + "\n")
        rt.db.dispose()
        done = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", str(drop), "-f", str(script)]
            + ["-d", dsn],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise BackupRefused(
                f"the database could not be restored (unchanged): {done.stderr.strip()}", code="restore_failed"
            )
    if rt.settings.migration_database_url:  # the application role's rights are not in the dump
        from .append_only import grant_app_role

        owner = _owner_engine(rt)
        try:
            grant_app_role(owner, rt.settings.database_app_role)
        finally:
            owner.dispose()


def _owner_engine(rt: Runtime) -> Engine:
    from .db import make_engine

    return make_engine(replace(rt.settings, database_url=str(_owner_url(rt).render_as_string(hide_password=False))))


def _put_anchors(rt: Runtime, folder: Path, manifest: dict[str, Any]) -> str | None:
    """The backup's anchors become the anchor file; one found there is kept aside."""
    path = anchor_path(rt.settings)
    kept = None
    if path.exists() and path.stat().st_size:
        kept = path.with_name(f"{path.name}.before-restore-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
        path.rename(kept)
    if ANCHORS in manifest["parts"]:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / ANCHORS, path)
        os.chmod(path, 0o600)
    return str(kept) if kept else None


def _put_secret_keys(rt: Runtime, folder: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """Subscriber and connector key files from the backup: installed where none is; a
    different one already there is kept (its secrets are then set again, not guessed)."""
    out = {}
    for name in SECRET_FILES:
        if name not in manifest["parts"]:
            continue
        here = key_path(rt.settings).parent / name
        if not here.exists():
            here.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(here, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write((folder / name).read_bytes())
            out[name] = "installed"
        else:
            out[name] = "same" if here.read_bytes() == (folder / name).read_bytes() else "kept the one here"
    return out


def restore(rt: Runtime, source: str | os.PathLike, *, user: str, force: bool = False) -> dict[str, Any]:
    """Restore the backup at ``source`` into the configured database; see the module doc."""
    try:
        return _restore(rt, Path(source), user=user, force=force)
    except OSError as exc:
        raise BackupRefused(f"the restore stopped: {exc.strerror or exc}", code="restore_failed") from exc


def _restore(rt: Runtime, src: Path, *, user: str, force: bool) -> dict[str, Any]:
    with _opened(src) as folder:
        manifest = _manifest(folder)
        kind = _kind(rt.db)
        _check_parts(folder, manifest, kind)
        head = _check_schema(manifest)
        key_text = _check_key(rt, folder, manifest)
        if not force and not _is_empty(rt):
            raise BackupRefused(
                "the configured database already holds a record: restoring would replace it "
                "(use --force to replace it; its anchors are kept aside)",
                code="restore_not_empty",
            )
        if key_text is not None:
            here = key_path(rt.settings)
            here.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(here, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key_text + "\n")
        try:
            (_load_sqlite if kind == "sqlite" else _load_postgresql)(rt, folder / DB_PART[kind])
            kept = _put_anchors(rt, folder, manifest)
            secret_keys = _put_secret_keys(rt, folder, manifest)
        except (OSError, sqlite3.Error) as exc:
            raise BackupRefused(f"the restore stopped: {exc}", code="restore_failed") from exc
    rt.recipe_content.clear()
    upgraded = None
    if manifest.get("revision") != head:
        owner = _owner_engine(rt) if rt.settings.migration_database_url else rt.db
        try:
            migrate.upgrade(owner)
        finally:
            if owner is not rt.db:
                owner.dispose()
        upgraded = {"from": manifest.get("revision"), "to": head}
    with rt.transaction() as s:
        result = audit.verify(s, settings=rt.settings, anchors=True)
    with rt.transaction() as s:
        audit.record(
            s,
            user=user,
            action="backup.restored",
            object_type="database",
            object_id=kind,
            new={
                "from": str(src.resolve()),
                "backup_created_at": manifest.get("created_at"),
                "audit_head": manifest.get("audit_head"),
                "verify_ok": result.ok,
                "problems": len(result.problems),
            },
        )
    return {
        "restored": True,
        "from": str(src.resolve()),
        "database": kind,
        "backup": {k: manifest.get(k) for k in ("batchline_version", "revision", "created_at", "created_by")},
        "audit_head": manifest.get("audit_head"),
        "key_installed": key_text is not None,
        "secret_keys": secret_keys,
        "anchors_kept_aside": kept,
        "upgraded": upgraded,
        "verify": result.to_dict(),
    }
