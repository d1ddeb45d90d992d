"""The audit key: what makes the chain a seal rather than a checksum.

A plain SHA-256 chain proves nothing against someone who can write to the database: they
recompute every hash and the head. Each entry is therefore an HMAC-SHA256 under a key the
database does not hold: ``BATCHLINE_AUDIT_KEY`` or a key file generated on first use with
0600 permissions beside the database (``audit.key``). It is not the session secret: a key
that signs cookies must not also seal the record (one leak must not give both away).

Two sub-keys are derived from it, one for chain entries, one for anchor lines, so an
anchor line can never be replayed as an entry hash or the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import BatchlineError

KEY_FILE = "audit.key"
ANCHOR_FILE = "audit-anchors.jsonl"
MIN_KEY_CHARS = 32


class AuditKeyError(BatchlineError):
    """The audit key is missing, too short or readable by others: nothing is recorded
    (an entry sealed with a weak or exposed key would be worth nothing)."""

    code = "audit_key_invalid"
    status = 503


def data_dir(settings: Settings) -> Path:
    """Where Batchline keeps local files: beside the SQLite database, else ``var/``."""
    url = settings.database_url
    if url.startswith("sqlite") and "///" in url:
        path = url.split("///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).parent
    return Path("var")


def key_path(settings: Settings) -> Path:
    return Path(settings.audit_key_file) if settings.audit_key_file else data_dir(settings) / KEY_FILE


def anchor_path(settings: Settings) -> Path:
    return Path(settings.audit_anchor_file) if settings.audit_anchor_file else key_path(settings).parent / ANCHOR_FILE


@dataclass(frozen=True)
class AuditKeys:
    chain: bytes
    anchor: bytes
    #: a short, non-secret id of the key (reports say which key verified the trail)
    fingerprint: str

    @classmethod
    def from_secret(cls, secret: str) -> AuditKeys:
        root = secret.encode("utf-8")

        def derive(label: str) -> bytes:
            return hmac.new(root, label.encode(), hashlib.sha256).digest()

        return cls(
            chain=derive("batchline audit chain v1"),
            anchor=derive("batchline audit anchor v1"),
            fingerprint=derive("batchline audit fingerprint v1").hex()[:16],
        )

    def seal(self, payload: str) -> str:
        return hmac.new(self.chain, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    def seal_anchor(self, payload: str) -> str:
        return hmac.new(self.anchor, payload.encode("utf-8"), hashlib.sha256).hexdigest()


def _checked(secret: str, where: str) -> str:
    secret = secret.strip()
    if len(secret) < MIN_KEY_CHARS:
        raise AuditKeyError(f"the audit key in {where} is shorter than {MIN_KEY_CHARS} characters")
    return secret


def _read_key_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AuditKeyError(
            f"the audit key file {path} is readable by others (mode {stat.S_IMODE(mode):o}); run chmod 600 {path}",
            code="audit_key_exposed",
        )
    return _checked(path.read_text(encoding="utf-8"), str(path))


def _generate_key_file(path: Path) -> str:
    """Write a new random key with 0600 permissions; if another process won the race,
    its key is the key (``os.link`` never replaces an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _read_key_file(path)


def load_keys(settings: Settings) -> AuditKeys:
    """The audit keys from ``audit_key``, else the key file (generated when absent)."""
    if settings.audit_key:
        return AuditKeys.from_secret(_checked(settings.audit_key, "BATCHLINE_AUDIT_KEY"))
    path = key_path(settings)
    if path.exists():
        return AuditKeys.from_secret(_read_key_file(path))
    return AuditKeys.from_secret(_generate_key_file(path))


class KeySource:
    """The keys of one runtime, loaded on first use (``batchline --help`` creates no file)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._keys: AuditKeys | None = None
        self._lock = threading.Lock()

    def get(self) -> AuditKeys:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    self._keys = load_keys(self.settings)
        return self._keys
