"""The transactional outbox: events written in the same transaction as the change they
report, delivered at least once afterwards by the job executor.

Each event has a stable id (a consumer dedupes on it) and the CloudEvents 1.0 attributes
(``specversion``, ``id``, ``source``, ``type``, ``subject``, ``time``). Delivery to a
webhook is a ``deliver`` job per subscriber URL, signed per Standard Webhooks
(HMAC-SHA256 over ``{id}.{timestamp}.{body}``); data platforms can also pull
``GET /api/events?after=SEQ``.

Subscribers come from two places: ``settings.webhook_urls`` (one shared secret), and the
``event_subscriber`` table (``engine.qms.subscribers``: configured through API and CLI,
each with its own encrypted secret and event-type globs). The table is matched through a
per-process cached list, so an event costs no query when nobody subscribes to it.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Any

from sqlalchemy.orm import Session

from .config import Settings
from .models import Job, OutboxEvent, utcnow
from .qms.subscribers import matching
from .vocabulary import JobKind

TYPE_PREFIX = "org.batchline."


def emit(session: Session, settings: Settings, type_: str, subject: str, data: dict[str, Any]) -> OutboxEvent:
    event = OutboxEvent(event_id=str(uuid.uuid4()), type=TYPE_PREFIX + type_, subject=subject, time=utcnow(), data=data)
    session.add(event)
    subscribers = matching(session, type_)
    if settings.webhook_urls or subscribers:
        session.flush()  # delivery jobs need the event's sequence number
    for url in settings.webhook_urls:
        session.add(
            Job(kind=JobKind.DELIVER, payload={"seq": event.seq, "url": url}, max_attempts=settings.job_max_attempts)
        )
    for subscriber in subscribers:
        session.add(
            Job(
                kind=JobKind.DELIVER,
                payload={"seq": event.seq, "subscriber": subscriber},
                max_attempts=settings.job_max_attempts,
            )
        )
    return event


def cloudevent(event: OutboxEvent, settings: Settings) -> dict[str, Any]:
    time = event.time
    if time.tzinfo is None:
        time = time.replace(tzinfo=UTC)
    return {
        "specversion": "1.0",
        "id": event.event_id,
        "source": settings.event_source,
        "type": event.type,
        "subject": event.subject,
        "time": time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "sequence": str(event.seq),
        "data": event.data,
    }
