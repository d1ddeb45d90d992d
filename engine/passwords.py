"""Passwords: argon2id hashes, the rules a new password meets, ageing, and the dummy
check that makes an unknown user id cost as much as a wrong password.

Why a dummy check: without it a login for an id that does not exist answers at once
while a wrong password for a real id takes an argon2 verification, so the answer time
tells an attacker which ids exist (measured on main: 7 ms against 156 ms).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import InvalidInput
from .models import User, utcnow
from .runtime import Runtime

MAX_LENGTH = 200
_HASHERS: dict[tuple[int, int], PasswordHasher] = {}
_DUMMY_HASHES: dict[tuple[int, int], str] = {}


def _key(rt: Runtime) -> tuple[int, int]:
    return (rt.settings.argon2_time_cost, rt.settings.argon2_memory_kib)


def hasher(rt: Runtime) -> PasswordHasher:
    """argon2id with the configured cost (RFC 9106 defaults in production; tests may
    lower it, as they do not defend against offline guessing)."""
    key = _key(rt)
    if key not in _HASHERS:
        _HASHERS[key] = PasswordHasher(time_cost=key[0], memory_cost=key[1])
    return _HASHERS[key]


def new_hash(rt: Runtime, password: Any, username: str) -> str:
    """The hash of a new password, refused (``password_weak``) unless it meets the rules."""
    if not isinstance(password, str) or len(password) < rt.settings.password_min_length:
        raise InvalidInput(
            f"a password needs at least {rt.settings.password_min_length} characters", code="password_weak"
        )
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_LENGTH} characters", code="password_weak")
    if username.lower() in password.lower():
        raise InvalidInput("a password must not contain the user id", code="password_weak")
    return hasher(rt).hash(password)


def verify(rt: Runtime, password_hash: str, password: str) -> bool:
    try:
        return bool(hasher(rt).verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_verify(rt: Runtime, password: str) -> None:
    """Spend what a real verification costs, for an attempt that cannot succeed anyway
    (unknown id, service account, deactivated or locked account)."""
    key = _key(rt)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = hasher(rt).hash("not a password of anyone: only its verification time counts")
    verify(rt, _DUMMY_HASHES[key], password)


def expired(rt: Runtime, u: User) -> bool:
    """The password is older than ``password_max_age_days`` (service accounts have none)."""
    if u.password_hash is None:
        return False
    age = utcnow() - (u.password_changed_at or u.created_at)
    return age > timedelta(days=rt.settings.password_max_age_days)
