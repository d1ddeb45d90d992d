"""Event subscribers configured without code: a name, a URL, the event types it wants
(globs such as ``qms.*``), its kind (``webhook`` or ``qms``) and a secret.

Why a cached list: ``engine.outbox.emit`` runs on every step and asks which enabled
subscribers want the event. Reading the table each time would add a query per event, so
each process keeps the list per database engine and checks a cheap fingerprint of the
table (row count and newest ``updated_at``) at most every ``CHECK_SECONDS``; a change made
through this module in the same process takes effect at once. A change made by another
process (the CLI while the server runs) reaches the server within ``CHECK_SECONDS``.

Rows are never deleted: ``disable`` keeps the row and its audit history; a disabled
subscriber gets no new deliveries and pending ones are dropped when they run. The secret
is never returned, logged or audited (the audit trail says ``secret set``).
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .. import audit, idempotency
from ..errors import Conflict, InvalidInput, NotFound
from ..models import EventSubscriber, IdempotentRequest, utcnow
from . import secrets

KINDS = ("webhook", "qms")
CHECK_SECONDS = 1.0
TYPE_PREFIX = "org.batchline."
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.*-]{1,200}")
MAX_EVENT_TYPES = 50


@dataclass(frozen=True)
class Target:
    """What ``emit`` needs of an enabled subscriber (no secret)."""

    id: int
    patterns: tuple[str, ...]

    def wants(self, type_: str) -> bool:
        full = TYPE_PREFIX + type_
        return any(fnmatch.fnmatchcase(type_, p) or fnmatch.fnmatchcase(full, p) for p in self.patterns)


class _Cache:
    def __init__(self) -> None:
        self.checked = -1e9
        self.fingerprint: Any = None
        self.targets: tuple[Target, ...] = ()


_caches: WeakKeyDictionary[Engine, _Cache] = WeakKeyDictionary()
_lock = threading.Lock()


def _cache_for(session: Session) -> _Cache:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = _Cache()
        return cache


def invalidate(engine: Engine) -> None:
    """Make this process read the list again on the next event (called after commit, so
    no other thread caches the list as it was before the change)."""
    with _lock:
        cache = _caches.get(engine)
    if cache is not None:
        cache.checked = -1e9


def matching(session: Session, type_: str) -> list[int]:
    """Ids of the enabled subscribers that want events of ``type_`` (without prefix)."""
    cache = _cache_for(session)
    now = time.monotonic()
    if now - cache.checked > CHECK_SECONDS:
        fingerprint = tuple(
            session.execute(select(func.count(EventSubscriber.id), func.max(EventSubscriber.updated_at))).one()
        )
        if fingerprint != cache.fingerprint:
            rows = session.execute(
                select(EventSubscriber.id, EventSubscriber.event_types).where(EventSubscriber.enabled.is_(True))
            ).all()
            cache.targets = tuple(Target(i, tuple(types or ())) for i, types in rows)
            cache.fingerprint = fingerprint
        cache.checked = now
    return [t.id for t in cache.targets if t.wants(type_)]


# --- checks ---------------------------------------------------------------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            "the name is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit",
            code="subscriber_name_invalid",
        )
    return name


def check_url(url: Any) -> str:
    """http(s) with a host, no user or password in it (credentials belong in the secret)."""
    if not isinstance(url, str) or not 1 <= len(url) <= 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput("the URL is an http or https URL of at most 2000 characters", code="subscriber_url_invalid")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput("the URL cannot be parsed", code="subscriber_url_invalid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the URL is an http or https URL with a host", code="subscriber_url_invalid")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "the URL must not hold a user or password (the secret signs every request)", code="subscriber_url_invalid"
        )
    return url


def check_event_types(types: Any) -> list[str]:
    if not isinstance(types, list) or not 1 <= len(types) <= MAX_EVENT_TYPES:
        raise InvalidInput(f"event_types is a list of 1 to {MAX_EVENT_TYPES} types", code="event_types_invalid")
    for t in types:
        if not isinstance(t, str) or not _EVENT_TYPE.fullmatch(t):
            raise InvalidInput(
                "an event type is letters, digits, '.', '_', '-' and '*' (e.g. qms.*)", code="event_types_invalid"
            )
    return list(dict.fromkeys(types))


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise InvalidInput("kind is webhook or qms", code="subscriber_kind_invalid")
    return kind


# --- reading and changing -------------------------------------------------------------


def describe(row: EventSubscriber) -> dict[str, Any]:
    """The public view: never the secret, only that one is set."""
    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "event_types": list(row.event_types or []),
        "kind": row.kind,
        "enabled": row.enabled,
        "secret_set": bool(row.secret_encrypted),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _audited(row: EventSubscriber, secret_changed: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {k: v for k, v in describe(row).items() if k in ("url", "event_types", "kind", "enabled")}
    if secret_changed:
        shown["secret"] = "secret set"
    return shown


def list_subscribers(rt) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        return [describe(r) for r in s.scalars(select(EventSubscriber).order_by(EventSubscriber.id))]


def _find(s: Session, ref: int | str) -> EventSubscriber:
    if isinstance(ref, int):
        row = s.get(EventSubscriber, ref)
    else:
        row = s.scalars(select(EventSubscriber).where(EventSubscriber.name == ref)).one_or_none()
    if row is None:
        raise NotFound(f"subscriber {ref} not found", code="subscriber_not_found")
    return row


def get(rt, ref: int | str) -> dict[str, Any]:
    with rt.transaction() as s:
        return describe(_find(s, ref))


def add(
    rt,
    *,
    name: str,
    url: str,
    event_types: list[str],
    kind: str = "webhook",
    secret: str | None = None,
    by: str,
    idempotency_key: str | None = None,
    request: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Add a subscriber; answers its view with the secret (shown this once) and whether
    this was a replay of an earlier request with the same key (then without secret)."""
    check_name(name)
    check_url(url)
    types = check_event_types(event_types)
    check_kind(kind)
    secret = secrets.check(secret) if secret is not None else secrets.generate()
    box = secrets.SecretBox(rt.settings)
    scope = f"subscribers|user:{by}"
    with rt.transaction() as s:
        if idempotency_key is not None:
            stored = idempotency.replay(s, scope, idempotency_key, request or {})
            if stored is not None:
                return dict(stored.body), True
        if s.scalars(select(EventSubscriber.id).where(EventSubscriber.name == name)).first() is not None:
            raise Conflict(f"a subscriber named {name} exists", code="subscriber_exists")
        now = utcnow()
        row = EventSubscriber(
            name=name,
            url=url,
            secret_encrypted=box.seal(secret),
            event_types=types,
            kind=kind,
            enabled=True,
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        audit.record(
            s, user=by, action="subscriber.added", object_type="subscriber", object_id=name, new=_audited(row, True)
        )
        public = describe(row)
        if idempotency_key is not None:
            s.add(
                IdempotentRequest(
                    scope=scope,
                    key=idempotency_key,
                    request_hash=idempotency.request_hash(request or {}),
                    status=201,
                    response=public,
                )
            )
    invalidate(rt.db)
    return {**public, "secret": secret}, False


def change(
    rt,
    ref: int | str,
    *,
    by: str,
    url: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
    secret: str | None = None,
    new_secret: bool = False,
) -> dict[str, Any]:
    """Change a subscriber (audited field by field); a new or generated secret is
    answered this once, as ``secret``."""
    if url is not None:
        check_url(url)
    if event_types is not None:
        event_types = check_event_types(event_types)
    if secret is not None:
        secrets.check(secret)
    elif new_secret:
        secret = secrets.generate()
    with rt.transaction() as s:
        row = _find(s, ref)
        changes = {"url": url, "event_types": event_types, "enabled": enabled}
        for field, value in changes.items():
            if value is None or getattr(row, field) == value:
                continue
            audit.record(
                s,
                user=by,
                action="subscriber.changed",
                object_type="subscriber",
                object_id=row.name,
                field=field,
                old=getattr(row, field),
                new=value,
            )
            setattr(row, field, value)
        if secret is not None:
            row.secret_encrypted = secrets.SecretBox(rt.settings).seal(secret)
            audit.record(
                s,
                user=by,
                action="subscriber.changed",
                object_type="subscriber",
                object_id=row.name,
                field="secret",
                new="secret set",
            )
        row.updated_at = utcnow()
        s.flush()
        out = describe(row)
    invalidate(rt.db)
    return {**out, "secret": secret} if secret is not None else out


def disable(rt, ref: int | str, *, by: str) -> dict[str, Any]:
    """Disable, never delete: the row and its history stay."""
    return change(rt, ref, by=by, enabled=False)


def load_for_delivery(s: Session, settings, subscriber_id: int) -> tuple[str, str] | None:
    """The URL and decrypted secret of an enabled subscriber, or None when it is disabled
    or gone (its pending deliveries are then dropped)."""
    row = s.get(EventSubscriber, subscriber_id)
    if row is None or not row.enabled:
        return None
    return row.url, secrets.SecretBox(settings).open(row.secret_encrypted)


def qms_secrets(s: Session, settings) -> list[tuple[EventSubscriber, str]]:
    """Every enabled QMS subscriber with its decrypted secret (inbound verification)."""
    box = secrets.SecretBox(settings)
    rows = s.scalars(
        select(EventSubscriber).where(EventSubscriber.kind == "qms", EventSubscriber.enabled.is_(True))
    ).all()
    return [(row, box.open(row.secret_encrypted)) for row in rows]
