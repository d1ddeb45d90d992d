"""Text field patterns, matched by RE2: time linear in the input, whatever the pattern.

Python's `re` backtracks: measured on main, the pattern `(a+)+b` took 10.7 s on 28
characters while other writers waited for the step's transaction. RE2 (`google-re2`)
never backtracks; the price is that it refuses backreferences and lookaround, which a
form's format check has no need of. A pattern RE2 cannot compile is refused when the
form is loaded, with RE2's reason.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

__all__ = ["PatternError", "compile_pattern", "full_match"]

#: longest pattern a form may carry (RE2 also bounds the compiled program's size)
MAX_PATTERN_LENGTH = 1000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason goes into PatternError, not onto stderr


class PatternError(ValueError):
    """The pattern cannot be used; the message says why, for the form's designer."""


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(
            f"{reason}; patterns use RE2 syntax (no backreferences or lookaround), "
            "which matches in time linear in the input"
        ) from None


def full_match(pattern: str, value: str) -> bool:
    """Does all of ``value`` match ``pattern``? (the pattern was checked at form load)"""
    return compile_pattern(pattern).fullmatch(value) is not None
