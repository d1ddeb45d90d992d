"""Subscriber secrets at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
key the database does not hold.

Why encrypted, not hashed: Batchline must *sign* with the secret (outbound) and check
the QMS's signatures with it (inbound), so it needs the secret back; a hash would not
do. Why a key file: a copy of the database (a backup, a read-only SQL account, an
injection) must not give anyone the power to forge webhooks to the QMS or QMS answers
to Batchline. The key file ``subscribers.key`` lives beside the audit key (beside the
SQLite database, else ``var/``, or where ``audit_key_file`` points); it is made on
first use with mode 0600 and refused when others can read it (``engine.secret_key``'s
checks: regular file, own user, 0600). It is a key of its own: a leak of the session or
audit key gives nothing here. Losing the file makes the stored secrets unreadable
(delivery fails with ``subscriber_secret_unreadable``; set new secrets).

Secrets are Standard Webhooks secrets: ``whsec_`` + base64 of 24 to 64 random bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets as _random
from pathlib import Path

from .. import secret_store
from ..config import Settings
from ..errors import BatchlineError, InvalidInput

KEY_FILE = "subscribers.key"
PREFIX = "whsec_"
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]+={0,2}")


class SecretUnreadable(BatchlineError):
    """A stored secret cannot be decrypted (the key file changed or was lost)."""

    code = "subscriber_secret_unreadable"
    status = 503


def key_file(settings: Settings) -> Path:
    """Where the subscriber key lives: beside the audit key (see the module docstring)."""
    return secret_store.key_file(settings, KEY_FILE)


def generate() -> str:
    """A new Standard Webhooks secret (32 random bytes)."""
    return PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def check(secret: str) -> str:
    """A given secret must be ``whsec_`` + base64 of 24..64 bytes (what both sides decode)."""
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        raise InvalidInput("the secret is whsec_ followed by base64 (24 to 64 bytes)", code="secret_invalid")
    try:
        raw = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the secret is whsec_ followed by base64 (24 to 64 bytes)", code="secret_invalid") from None
    if not 24 <= len(raw) <= 64:
        raise InvalidInput(f"the secret decodes to {len(raw)} bytes; 24 to 64 are needed", code="secret_invalid")
    return secret


def raw_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    return base64.b64decode(secret[len(PREFIX) :])


class SecretBox(secret_store.SecretBox):
    """Encrypts and decrypts subscriber secrets with the key file of one settings
    (``engine.secret_store`` with the subscribers' own key file and purpose)."""

    def __init__(self, settings: Settings):
        super().__init__(
            settings,
            file_name=KEY_FILE,
            purpose=b"batchline subscriber secrets v1",
            unreadable=SecretUnreadable,
            unreadable_message="a subscriber secret cannot be decrypted with the key file "
            "(was subscribers.key replaced?); set a new secret for the subscriber",
        )
