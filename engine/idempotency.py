"""Answering a repeated request once: the first answer to a request carrying an
``Idempotency-Key`` is stored in the same transaction as the change it made, and a
repeat gets that answer back instead of a second change. The same key with a different
request is refused (a client bug, or someone reusing another request's key).

Scopes keep keys apart: a batch change is scoped to the batch and the user
(``engine.batches.unit_of_work``), a disposition to the exception and the user, so a key
one person chose never hands their answer to another."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .errors import InvalidInput
from .models import IdempotentRequest
from .workflow_store import canonical, sha256


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def request_hash(request: dict[str, Any]) -> str:
    return sha256(canonical(request))


def replay(s: Session, scope: str, key: str, request: dict[str, Any]) -> Outcome | None:
    """The stored answer to this request, or None when it is new."""
    prior = s.get(IdempotentRequest, (scope, key))
    if prior is None:
        return None
    if prior.request_hash != request_hash(request):
        raise InvalidInput(
            "this Idempotency-Key was already used for a different request", code="idempotency_key_reused"
        )
    return Outcome(prior.status, prior.response, replayed=True)


def remember(s: Session, scope: str, key: str, request: dict[str, Any], outcome: Outcome) -> Outcome:
    s.add(
        IdempotentRequest(
            scope=scope, key=key, request_hash=request_hash(request), status=outcome.status, response=outcome.body
        )
    )
    return outcome
