"""Event subscribers configured without code: a name, a URL, the event types it wants
(globs such as ``qms.*``), its kind (``webhook``, ``qms`` or ``mqtt``) and a secret.

An MQTT subscriber has a broker URL (``mqtt://host:port`` or ``mqtts://``) instead of a
webhook URL, a topic prefix, and optionally a broker account whose password is encrypted
like a secret (never returned, logged or audited). The engine only keeps the registry
and the delivery job; publishing is a *publisher* an installed package registers on the
runtime by kind (``integrations.mqtt``), as connectors are.

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
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .. import audit, idempotency
from ..errors import Conflict, InvalidInput, NotFound
from ..models import EventSubscriber, IdempotentRequest, utcnow
from . import secrets
from .subscriber_checks import (  # noqa: F401 - the checks are part of this module's interface
    KINDS,
    MAX_EVENT_TYPES,
    check_event_types,
    check_kind,
    check_name,
    check_target,
    check_url,
)

CHECK_SECONDS = 1.0
TYPE_PREFIX = "org.batchline."


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


# --- reading and changing -------------------------------------------------------------


def describe(row: EventSubscriber) -> dict[str, Any]:
    """The public view: never the secret or the broker password, only that one is set."""
    return {
        "id": row.id,
        "name": row.name,
        "url": row.url,
        "event_types": list(row.event_types or []),
        "kind": row.kind,
        "enabled": row.enabled,
        "secret_set": bool(row.secret_encrypted),
        "topic_prefix": row.topic_prefix,
        "username": row.username,
        "password_set": bool(row.password_encrypted),
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


AUDITED = ("url", "event_types", "kind", "enabled", "topic_prefix", "username")


def _audited(row: EventSubscriber, secret_changed: bool = False, password_changed: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {k: v for k, v in describe(row).items() if k in AUDITED and v is not None}
    if secret_changed:
        shown["secret"] = "secret set"
    if password_changed:
        shown["password"] = "password set"
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
    topic_prefix: str | None = None,
    username: str | None = None,
    password: str | None = None,
    by: str,
    idempotency_key: str | None = None,
    request: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Add a subscriber; answers its view with the secret (shown this once) and whether
    this was a replay of an earlier request with the same key (then without secret).
    An MQTT subscriber has no secret (the broker account authenticates it)."""
    check_name(name)
    check_kind(kind)
    check_target(kind, url, topic_prefix, username, password)
    types = check_event_types(event_types)
    if kind == "mqtt":
        if secret is not None:
            raise InvalidInput("an MQTT subscriber has no secret: give username and password", code="secret_invalid")
    else:
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
            secret_encrypted=box.seal(secret) if secret is not None else "",
            event_types=types,
            kind=kind,
            enabled=True,
            topic_prefix=topic_prefix,
            username=username,
            password_encrypted=box.seal(password) if password is not None else None,
            created_by=by,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            user=by,
            action="subscriber.added",
            object_type="subscriber",
            object_id=name,
            new=_audited(row, secret is not None, password is not None),
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
    return ({**public, "secret": secret} if secret is not None else public), False


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
    topic_prefix: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Change a subscriber (audited field by field); a new or generated secret is
    answered this once, as ``secret``. A new broker password is never answered."""
    if event_types is not None:
        event_types = check_event_types(event_types)
    box = secrets.SecretBox(rt.settings)
    with rt.transaction() as s:
        row = _find(s, ref)
        # the row's kind decides what its fields may be: the changed ones checked with the rest
        check_target(
            row.kind,
            url if url is not None else row.url,
            topic_prefix if topic_prefix is not None else row.topic_prefix,
            username if username is not None else row.username,
            password,
        )
        if row.kind == "mqtt":
            if secret is not None or new_secret:
                raise InvalidInput("an MQTT subscriber has no secret: change its password", code="secret_invalid")
        elif secret is not None:
            secrets.check(secret)
        elif new_secret:
            secret = secrets.generate()
        changes = {
            "url": url,
            "event_types": event_types,
            "enabled": enabled,
            "topic_prefix": topic_prefix,
            "username": username,
        }
        for name, value in changes.items():
            if value is None or getattr(row, name) == value:
                continue
            audit.record(
                s,
                user=by,
                action="subscriber.changed",
                object_type="subscriber",
                object_id=row.name,
                field=name,
                old=getattr(row, name),
                new=value,
            )
            setattr(row, name, value)
        for name, value, column in (
            ("secret", secret, "secret_encrypted"),
            ("password", password, "password_encrypted"),
        ):
            if value is None:
                continue
            setattr(row, column, box.seal(value))
            audit.record(
                s,
                user=by,
                action="subscriber.changed",
                object_type="subscriber",
                object_id=row.name,
                field=name,
                new=f"{name} set",
            )
        row.updated_at = utcnow()
        s.flush()
        out = describe(row)
    invalidate(rt.db)
    return {**out, "secret": secret} if secret is not None else out


def disable(rt, ref: int | str, *, by: str) -> dict[str, Any]:
    """Disable, never delete: the row and its history stay."""
    return change(rt, ref, by=by, enabled=False)


@dataclass(frozen=True)
class DeliveryTarget:
    """What a delivery job needs of an enabled subscriber, secrets decrypted (kept out of
    ``repr`` so a log line or a traceback never shows them)."""

    id: int
    name: str
    kind: str
    url: str
    secret: str = field(default="", repr=False)
    topic_prefix: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def load_target(s: Session, settings, subscriber_id: int) -> DeliveryTarget | None:
    """An enabled subscriber with its secret and broker password decrypted, or None when
    it is disabled or gone (its pending deliveries are then dropped)."""
    row = s.get(EventSubscriber, subscriber_id)
    if row is None or not row.enabled:
        return None
    box = secrets.SecretBox(settings)
    return DeliveryTarget(
        id=row.id,
        name=row.name,
        kind=row.kind,
        url=row.url,
        secret=box.open(row.secret_encrypted) if row.secret_encrypted else "",
        topic_prefix=row.topic_prefix,
        username=row.username,
        password=box.open(row.password_encrypted) if row.password_encrypted else None,
    )


def load_for_delivery(s: Session, settings, subscriber_id: int) -> tuple[str, str] | None:
    """The URL and decrypted secret of an enabled subscriber, or None when it is disabled
    or gone (its pending deliveries are then dropped)."""
    target = load_target(s, settings, subscriber_id)
    return None if target is None else (target.url, target.secret)


def qms_secrets(s: Session, settings) -> list[tuple[EventSubscriber, str]]:
    """Every enabled QMS subscriber with its decrypted secret (inbound verification)."""
    box = secrets.SecretBox(settings)
    rows = s.scalars(
        select(EventSubscriber).where(EventSubscriber.kind == "qms", EventSubscriber.enabled.is_(True))
    ).all()
    return [(row, box.open(row.secret_encrypted)) for row in rows]
