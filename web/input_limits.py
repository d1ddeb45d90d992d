"""Hostile input stops at the door: bounded ids in URLs, JSON bodies checked before they
are parsed, text that every database can store, finite numbers only.

Why here, before any view runs: Python's ``json`` recurses once per nesting level (5,000
levels raised ``RecursionError``, a 500), converts 4,300-digit integers slowly and then
refuses them, accepts ``NaN`` and ``Infinity`` (and ``1e400`` becomes infinity), and
keeps a lone surrogate ``"\\ud800"`` as a string that no UTF-8 encoder, SQLite or
PostgreSQL, can store. The raw body is pre-scanned (nesting depth and number length,
in linear time, without parsing) and then parsed strictly, so every such body gets a
4xx with a stable code and the views only ever see clean JSON. URL path and query text
is held to the same rule; integer path segments are bounded by ``IdConverter``.

The limits and codes are listed in ``docs/security.md`` ("Hostile input").
"""

from __future__ import annotations

import math
import re
from itertools import accumulate
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from .errors import ApiError

#: the largest recipe version id, version, step sequence number or incident id a client
#: can name: they are INTEGER columns, 32-bit on PostgreSQL (a larger value failed the query)
MAX_ID = 2**31 - 1
#: the largest 64-bit integer (BIGINT columns: the event feed's sequence numbers)
MAX_INT = 2**63 - 1
#: deepest nesting of arrays and objects in a JSON body (recipes' form-js JSON needs ~10)
MAX_JSON_DEPTH = 64
#: longest run of digits in a JSON number (an integer above 10^100 is no measurement)
MAX_NUMBER_DIGITS = 100

# A JSON string, possessive so it never backtracks: it ends at its closing quote, or at
# the end of the body when unterminated (the parser reports that afterwards).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_LONG_NUMBER = re.compile(rb"[0-9]{%d}" % (MAX_NUMBER_DIGITS + 1))
#: text no database stores as given: NUL (PostgreSQL refuses it) and lone UTF-16 surrogates
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive integer of at most 10 ASCII digits, at most ``MAX_ID``;
    anything else names nothing (404) instead of overflowing the database driver (500)."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's name
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character"
    return f"contains a lone surrogate U+{ord(found.group()):04X} (not Unicode text)"


def text_invalid(where: str, problem: str) -> ApiError:
    return ApiError(422, "text_invalid", f"{where} {problem}", {"where": where})


def not_finite(what: str) -> ApiError:
    return ApiError(
        422,
        "number_not_finite",
        f"{what} is not a finite number: NaN, Infinity and numbers beyond ±1.8e308 are refused",
        {"value": what},
    )


def prescan(raw: bytes) -> None:
    """Refuse a body nested too deep or holding an overlong number, without parsing it."""
    outside_strings = _STRING.sub(b'""', raw)
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    if brackets and max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))) > MAX_JSON_DEPTH:
        raise ApiError(
            400,
            "json_too_deep",
            f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels",
            {"max_depth": MAX_JSON_DEPTH},
        )
    if _LONG_NUMBER.search(outside_strings):
        raise ApiError(
            400,
            "json_number_too_large",
            f"the JSON body holds a number with more than {MAX_NUMBER_DIGITS} digits",
            {"max_digits": MAX_NUMBER_DIGITS},
        )


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise not_finite(text)
    return value


def _no_constant(text: str):
    raise not_finite(text)


def check_strings(value: Any, where: str = "the JSON body") -> None:
    """Every key and string in a parsed JSON value is storable text (depth is bounded)."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise text_invalid(f"a string in {where}", problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(key, where)
            check_strings(item, where)
    elif isinstance(value, list):
        for item in value:
            check_strings(item, where)


def strict_json_loads(raw: bytes, where: str = "the JSON body") -> Any:
    """Parse JSON as RFC 8259 says, within Batchline's limits: UTF-8, depth, number
    length, finite numbers only, storable text. Raises ``ApiError`` (400/422)."""
    import json

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise text_invalid(where, "is not valid UTF-8") from None
    prescan(raw)
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except ValueError:
        raise ApiError(400, "json_invalid", f"{where} is not valid JSON") from None
    check_strings(value, where)
    return value


def check_request() -> None:
    """``before_request``: the URL's text and a JSON body, before any view reads them."""
    problem = text_problem(request.path)
    if problem:
        raise text_invalid("the URL path", problem)
    for key, values in request.args.lists():
        for text in (key, *values):
            problem = text_problem(text)
            if problem:
                raise text_invalid(f"the query parameter {key!r}", problem)
    if request.is_json:
        raw = request.get_data(cache=True)
        if raw:
            strict_json_loads(raw)
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, values in request.form.lists():
            for text in (key, *values):
                problem = text_problem(text)
                if problem:
                    raise text_invalid(f"the form field {key!r}", problem)
