"""Secrets Batchline must use again (sign with, send), kept at rest Fernet-encrypted
(AES-128-CBC + HMAC-SHA256) under a key the database does not hold.

Why encrypted, not hashed: Batchline signs outbound webhooks with a subscriber's secret
and sends a connector's credentials to the other system, so it needs the secret back.
Why a key file: a copy of the database (a backup, a read-only SQL account, an injection)
must not give anyone those powers. Each use has a key file of its own beside the audit
key (``subscribers.key``, ``connectors.key``; beside the SQLite database, else ``var/``,
or where ``audit_key_file`` points), made on first use with mode 0600 and refused when
others can read it (``engine.secret_key``'s checks). A leak of one key gives nothing
for the others. Losing a file makes the secrets sealed under it unreadable: set new ones.

Used by ``engine.qms.secrets`` (subscriber secrets) and ``engine.connector_config``
(connector credentials).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from .audit.keys import key_path
from .config import Settings
from .errors import BatchlineError
from .secret_key import create_key_file, read_key_file


class SecretUnreadable(BatchlineError):
    """A stored secret cannot be decrypted (the key file changed or was lost)."""

    code = "secret_unreadable"
    status = 503


def key_file(settings: Settings, name: str) -> Path:
    """Where a key file named ``name`` lives: beside the audit key."""
    return key_path(settings).parent / name


class SecretBox:
    """Seals and opens secrets with one key file of one settings. ``purpose`` separates
    the derived Fernet keys; ``unreadable`` is the error type raised when a token does not open
    (its message says what to do, never what the secret was)."""

    _lock = threading.Lock()
    _boxes: dict[tuple[Path, bytes], Fernet] = {}

    def __init__(
        self,
        settings: Settings,
        *,
        file_name: str,
        purpose: bytes,
        unreadable: type[BatchlineError] = SecretUnreadable,
        unreadable_message: str = "",
    ):
        path = key_file(settings, file_name).resolve()
        with self._lock:
            fernet = self._boxes.get((path, purpose))
            if fernet is None:
                text = read_key_file(path) if path.exists() or path.is_symlink() else create_key_file(path)
                digest = hmac.new(text.encode(), purpose, hashlib.sha256).digest()
                fernet = Fernet(base64.urlsafe_b64encode(digest))
                self._boxes[(path, purpose)] = fernet
        self._fernet = fernet
        self._unreadable = unreadable
        self._unreadable_message = unreadable_message or (
            f"a stored secret cannot be decrypted with the key file {file_name} (was it replaced?); set a new secret"
        )

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise self._unreadable(self._unreadable_message) from None
