"""The server's secret key: given in the settings, or made once into a key file.

Why no default: the key signs the browser's session cookie; a key printed in the
repository (as ``dev-insecure-change-me`` once was) lets anyone who read it sign a
cookie. So either the operator gives a key (``BATCHLINE_SECRET_KEY`` or ``secret_key``
in the config file, at least 32 characters, not one published in this repository), or
the first start makes a random one into a key file readable by the server's user only
(mode 0600) and every later start reads it back:

- SQLite: beside the database file, named after it (``var/batchline.db`` ->
  ``var/batchline.db.key``), so a backup of the directory keeps the two together;
- PostgreSQL (or an in-memory SQLite): ``batchline.key`` in ``key_dir``, by default
  ``var/`` under the working directory.

A key file that cannot be made, is not a regular file of the server's own user, or can
be read by others is refused (``secret_key_unsafe``): the server does not start.
``resolve`` also says where the key came from, for the start-up log (never the key).
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import BatchlineError

KEY_FILE_NAME = "batchline.key"
MIN_LENGTH = 32
#: keys that were ever written in this repository (defaults, examples, test settings):
#: refused as ``secret_key`` even when someone sets them on purpose
PUBLISHED = frozenset({"dev-insecure-change-me", "browser-tests-only", "change-me", "secret", "dev"})


class SecretKeyError(BatchlineError):
    """The secret key cannot be used: the server must not start with it."""

    code = "secret_key_unsafe"


@dataclass(frozen=True)
class SecretKey:
    value: str = ""
    #: where the key came from, e.g. "settings (BATCHLINE_SECRET_KEY or config file)" or
    #: "generated into var/batchline.db.key"; safe to log
    source: str = ""

    def __repr__(self) -> str:
        return f"SecretKey(source={self.source!r})"


def key_file(settings: Settings) -> Path:
    """Where the generated key lives for these settings (see the module docstring)."""
    url = settings.database_url
    if settings.is_sqlite and "///" in url:
        path = url.split("///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:" and not path.startswith("file:"):
            db = Path(path)
            return db.with_name(db.name + ".key")
    return Path(settings.key_dir or "var") / KEY_FILE_NAME


def check_given(key: str) -> None:
    """A key given in the settings must be long and never published."""
    if key.strip() in PUBLISHED or key.strip().lower() in PUBLISHED:
        raise SecretKeyError(
            "the secret key is one published in the Batchline repository; anyone could forge a session with it. "
            "Remove BATCHLINE_SECRET_KEY to let the server make a random key file, or set a random key "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))')",
            code="secret_key_weak",
        )
    if len(key) < MIN_LENGTH:
        raise SecretKeyError(
            f"the secret key has {len(key)} characters; at least {MIN_LENGTH} are needed "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "or remove BATCHLINE_SECRET_KEY to let the server make a random key file",
            code="secret_key_weak",
        )


def resolve(settings: Settings) -> SecretKey:
    """The key to sign sessions with, and where it came from; raises ``SecretKeyError``."""
    if settings.secret_key:
        check_given(settings.secret_key)
        return SecretKey(settings.secret_key, "settings (BATCHLINE_SECRET_KEY or the config file)")
    path = key_file(settings)
    if path.exists() or path.is_symlink():
        return SecretKey(read_key_file(path), f"key file {path}")
    return SecretKey(create_key_file(path), f"generated on first start into key file {path}")


def read_key_file(path: Path) -> str:
    """Read a key file that only the server's user can read; anything else is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise SecretKeyError(f"cannot read the key file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretKeyError(f"the key file {path} is not a regular file")
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise SecretKeyError(
                f"the key file {path} belongs to another user (uid {info.st_uid}); "
                "it must belong to the user the server runs as"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SecretKeyError(
                f"the key file {path} can be read or written by others (mode {mode:04o}); "
                f"it must be 0600: chmod 600 {path}, and consider the key disclosed (delete the file "
                "to make a new key: everyone logs in again)"
            )
        data = os.read(fd, 4096).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)
    if len(data) < MIN_LENGTH:
        raise SecretKeyError(f"the key file {path} holds no usable key (fewer than {MIN_LENGTH} characters)")
    return data


def create_key_file(path: Path) -> str:
    """Make a random key into ``path`` (mode 0600, never over an existing file); when
    another process made it first, read theirs."""
    key = secrets.token_urlsafe(48)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (key + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)  # appears complete, or not at all; never replaces a file
        except FileExistsError:
            return read_key_file(path)
        finally:
            os.unlink(temp)
    except OSError as exc:
        raise SecretKeyError(
            f"cannot create the key file {path}: {exc.strerror or exc}. Make the directory writable for the "
            "server's user, set key_dir (BATCHLINE_KEY_DIR), or set BATCHLINE_SECRET_KEY"
        ) from None
    return read_key_file(path)
