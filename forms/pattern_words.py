"""A text field's format in an operator's words: "10 digits", "“S-” then 6 digits".

Why: a refused value used to say "does not have the expected format (S-[0-9]{6})" —
a regular expression means nothing on the floor. A form may describe its pattern itself
(``patternDescription``); without one, the simple patterns forms actually use (fixed
text, digits, letters, repeated a number of times) are put into words here, and anything
else gets a plain "does not have the expected format" — never the pattern.
"""

from __future__ import annotations

import re

__all__ = ["describe_pattern", "format_message"]

#: one piece of a simple pattern: a character class or an escaped / plain literal, with a count
_PIECE = re.compile(
    r"(?P<atom>\[0-9\]|\\d|\[A-Z\]|\[a-z\]|\[A-Za-z\]|\[a-zA-Z\]|\[A-Z0-9\]|\[0-9A-Z\]|\\.|[A-Za-z0-9 _\-/:#])"
    r"(?P<count>\{\d{1,3}\}|\{\d{1,3},\d{1,3}\}|\+|\?)?"
)
_CLASSES = {
    "[0-9]": ("digit", "digits"),
    "\\d": ("digit", "digits"),
    "[A-Z]": ("capital letter", "capital letters"),
    "[a-z]": ("small letter", "small letters"),
    "[A-Za-z]": ("letter", "letters"),
    "[a-zA-Z]": ("letter", "letters"),
    "[A-Z0-9]": ("capital letter or digit", "capital letters or digits"),
    "[0-9A-Z]": ("capital letter or digit", "capital letters or digits"),
}


def _count(count: str | None) -> tuple[int, int | None] | None:
    if not count:
        return 1, 1
    if count == "+":
        return 1, None
    if count == "?":
        return 0, 1
    low, _, high = count.strip("{}").partition(",")
    return int(low), int(high) if high else int(low)


def describe_pattern(pattern: str | None) -> str | None:
    """Words for a simple pattern ("10 digits"), or None when it is not simple."""
    if not pattern:
        return None
    text = pattern.removeprefix("^").removesuffix("$")
    parts: list[str] = []
    literal = ""
    pos = 0
    while pos < len(text):
        match = _PIECE.match(text, pos)
        if match is None:
            return None
        pos = match.end()
        atom, counted = match.group("atom"), _count(match.group("count"))
        if counted is None:
            return None
        low, high = counted
        if atom in _CLASSES:
            if literal:
                parts.append(f"“{literal}”")
                literal = ""
            one, many = _CLASSES[atom]
            if high is None:
                parts.append(f"one or more {many}")
            elif low == high:
                parts.append(f"{low} {one if low == 1 else many}")
            else:
                parts.append(f"{low} to {high} {many}")
            continue
        char = atom[1:] if atom.startswith("\\") else atom
        if atom.startswith("\\") and char.isalnum():
            return None  # \w, \s, \b …: not simple
        if (low, high) != (1, 1):
            return None
        literal += char
    if literal:
        parts.append(f"“{literal}”")
    if not parts:
        return None
    return ", then ".join(parts)


def format_message(label: str, description: str | None, pattern: str | None) -> str:
    """Why a typed value was refused for its format, in words (never the pattern)."""
    words = description or describe_pattern(pattern)
    if words:
        return f"{label} does not have the expected format: {words}."
    return f"{label} does not have the expected format; check it against the label or the instructions."
