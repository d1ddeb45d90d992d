"""What the "Record an event" form (``ui/_event.html``) is drawn with, shared by the task
page, the batch page and the route that records the event (``record_event``)."""

from __future__ import annotations

import uuid
from typing import Any

from engine.batches.events import EVENT_KINDS

#: what the kind select offers, in the engine's order, with the words a person reads
KINDS = tuple((kind, kind.capitalize()) for kind in EVENT_KINDS)


def blank_event() -> dict[str, Any]:
    """The form as first drawn: a fresh idempotency key (a double submit records one
    event), nothing typed."""
    return {"key": str(uuid.uuid4()), "kind": "documentation", "description": "", "error": None}
