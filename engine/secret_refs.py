"""Secrets named by reference in the settings: ``env:NAME`` (an environment variable of
the server) or ``file:/absolute/path`` (a file only the service account reads), read when
they are needed and never kept in the settings or logged.

One reading for the directory's service account (``ldap_bind_secret``) and the OIDC
client secret (``oidc_client_secret``): a message names the reference, never what it
holds. (Connector secrets have their own, per connector row: ``engine.connector_config``.)
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretReferenceError(ValueError):
    """The reference is malformed, not set, empty or unreadable; the message says which."""


def read(ref: str, what: str) -> str:
    """The secret ``ref`` names, read now; ``what`` is the setting's name for messages."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:], "")
    elif ref.startswith("file:") and Path(ref[5:]).is_absolute():
        try:
            value = Path(ref[5:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretReferenceError(f"{what} {ref} cannot be read ({exc.strerror or type(exc).__name__})") from None
    else:
        raise SecretReferenceError(f"{what} is env:NAME or file:/absolute/path")
    if not value:
        raise SecretReferenceError(f"{what} {ref} is empty or not set")
    return value
