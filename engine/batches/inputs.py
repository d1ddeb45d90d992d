"""What callers hand to a batch operation — batch ids, idempotency keys, task ids,
start parameters, reasons — checked here once, the same way for every operation, before
any transaction is opened.

Batch ids appear in URLs, file names of exported records, labels and audit entries, so a
new batch's id keeps to a safe alphabet (``BATCH_ID_RULE``): an id with ``/`` or ``..``
was unreachable over the API, ``<script>`` waited for a renderer's mistake, and a
right-to-left override or a Cyrillic "А" in "MАB-001" looked like another batch.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from uuid import UUID

from ..errors import InvalidInput, NotFound
from ..finite import check_finite

MAX_ID_LEN = 100
MAX_REASON_LEN = 2000
#: what Spiff's task data may hold: ids and scalars only (the record is in ``Step``)
SCALARS = (str, int, float, bool, type(None))

#: what a new batch id may hold, in the words of the refusal
BATCH_ID_RULE = (
    f"a batch id has 1 to {MAX_ID_LEN} characters: letters of one script, digits 0-9, '-', '_' and '.', "
    "starting with a letter or digit, without '..'"
)
#: letters (upper, lower, title case, other: CJK), not modifier letters or marks
_LETTER_CATEGORIES = {"Lu", "Ll", "Lt", "Lo"}
_PUNCTUATION = frozenset("-_.")
#: bidirectional formatting characters: they reorder how an id is shown (U+202E ...)
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: scripts written together in one language count as one (Japanese)
_SCRIPT_FAMILIES = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK"}


def _script(char: str) -> str:
    """The script of a letter, from its Unicode name ("CYRILLIC CAPITAL LETTER A")."""
    first = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
    return _SCRIPT_FAMILIES.get(first, first)


def _text_problem(value: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains control characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return "contains a lone surrogate (not Unicode text)"
    return None


def _unstorable(value: str) -> bool:
    """NUL (PostgreSQL refuses it) or a lone surrogate (no UTF-8 encoder takes it)."""
    return any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in value)


def check_identifier(value: Any, what: str) -> str:
    """An id a caller chose (idempotency key, ...): text of 1 to ``MAX_ID_LEN`` characters,
    storable in every database. Batch ids have their own, stricter rule (``check_batch_id``)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string", code=f"{what}_invalid")
    if len(value) > MAX_ID_LEN:
        raise InvalidInput(f"{what} is longer than {MAX_ID_LEN} characters", code=f"{what}_invalid")
    problem = _text_problem(value)
    if problem:
        raise InvalidInput(f"{what} {problem}", code=f"{what}_invalid")
    return value


def _batch_id_problem(value: str) -> str | None:
    if not value or len(value) > MAX_ID_LEN:
        return f"it has {len(value)} characters"
    bidi = [c for c in value if c in BIDI_CONTROLS]
    if bidi:
        return f"it holds a bidirectional control character (U+{ord(bidi[0]):04X}) that changes how it is shown"
    if ".." in value:
        return "it holds '..'"
    if not (value[0].isascii() and value[0].isdigit()) and unicodedata.category(value[0]) not in _LETTER_CATEGORIES:
        return f"it starts with {value[0]!r}"
    for char in value:
        ascii_ok = char.isascii() and (char.isalnum() or char in _PUNCTUATION)
        if not ascii_ok and (char.isascii() or unicodedata.category(char) not in _LETTER_CATEGORIES):
            return f"{char!r} (U+{ord(char):04X}) is not allowed"
    scripts = sorted({_script(c) for c in value if not c.isascii() or c.isalpha()} - {"DIGIT"})
    if len(scripts) > 1:
        return "it mixes the scripts " + " and ".join(scripts) + " (letters that look alike)"
    return None


def check_batch_id(value: Any) -> str:
    """A new batch's id, NFKC-normalised (full-width "ＭＡＢ" is "MAB"), within
    ``BATCH_ID_RULE``; refused with 422 ``batch_id_invalid`` saying what is allowed."""
    if not isinstance(value, str):
        raise InvalidInput(
            f"batch_id must be text: {BATCH_ID_RULE}", code="batch_id_invalid", details={"allowed": BATCH_ID_RULE}
        )
    normalised = unicodedata.normalize("NFKC", value)
    problem = _batch_id_problem(normalised)
    if problem:
        raise InvalidInput(
            f"batch id {normalised[:MAX_ID_LEN]!r} is refused: {problem}; {BATCH_ID_RULE}",
            code="batch_id_invalid",
            details={"allowed": BATCH_ID_RULE, "problem": problem},
        )
    return normalised


#: the largest id, version or sequence number (INTEGER columns, 32-bit on PostgreSQL)
MAX_ID = 2**31 - 1


def check_reference(value: Any, what: str) -> Any:
    """A recipe key or a positive id/version within ``MAX_ID`` (no query overflows)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"{what} must be a key or a number", code=f"{what}_invalid")
    if isinstance(value, int) and not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{what} must be between 1 and {MAX_ID}", code=f"{what}_invalid")
    if isinstance(value, str) and (not value or len(value) > 200 or _text_problem(value)):
        raise InvalidInput(f"{what} must be a key of 1 to 200 characters", code=f"{what}_invalid")
    return value


def check_parameters(parameters: Any) -> dict[str, Any]:
    """A batch's start parameters: names mapped to scalars (they become Spiff data),
    numbers finite, text storable."""
    parameters = parameters or {}
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters must be an object", code="parameters_invalid")
    bad = [
        k
        for k, v in parameters.items()
        if not isinstance(k, str)
        or not isinstance(v, SCALARS)
        or _text_problem(k)
        or (isinstance(v, str) and _unstorable(v))
    ]
    if bad:
        raise InvalidInput(
            "parameters must map names to scalar values (names without control characters, text without NUL)",
            code="parameters_invalid",
            details={"keys": [str(k) for k in bad]},
        )
    check_finite(parameters, "parameters")
    return parameters


def require_reason(reason: Any, doing: str) -> str:
    """A supervisor's or corrector's decision is recorded with its reason (21 CFR 11.10(e)):
    no reason, no change."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"{doing} needs a reason", code="reason_required")
    if len(reason) > MAX_REASON_LEN:
        raise InvalidInput(f"reason is longer than {MAX_REASON_LEN} characters", code="reason_invalid")
    return reason


def task_uuid(task_id: str) -> UUID:
    """A task id as Spiff knows it; anything else names no task."""
    try:
        return UUID(str(task_id))
    except ValueError:
        raise NotFound(f"task {task_id!r} not found", code="task_not_found") from None


def scalar_data(values: dict[str, Any]) -> dict[str, Any]:
    """What goes into Spiff's task data: ids and scalars only (the record is in ``Step``)."""
    return {k: v for k, v in values.items() if isinstance(v, SCALARS)}
