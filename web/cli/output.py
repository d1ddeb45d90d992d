"""How answers look: a readable table (or ``key: value`` lines) by default, JSON with
``--json`` (for scripts), and ``error [code]: message`` on stderr with exit 2 for
anything the user can fix — never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

import click

from .context import CliContext, as_json


def fail(code: str, message: str, lines: Iterable[str] = ()) -> NoReturn:
    click.echo(f"error [{code}]: {message}", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    sys.exit(2)


def warn(line: str) -> None:
    """Something the user should know that is not an error (stderr, also with --json)."""
    click.echo(line, err=True)


def problem_line(problem) -> str:
    """One problem of a recipe, located: ``file:line: element ID: message [code]``."""
    where = ":".join(str(x) for x in (problem.file, problem.line) if x)
    element = f"element {problem.element_id}: " if problem.element_id else ""
    return f"{where + ': ' if where else ''}{element}{problem.message} [{problem.code}]"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def show(data: Any, columns: list[str] | None = None) -> None:
    """JSON for ``--json``; else a table (lists) or ``key: value`` lines (one object)."""
    if as_json():
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    if isinstance(data, dict):
        keys = columns or list(data)
        width = max((len(k) for k in keys), default=0)
        for key in keys:
            click.echo(f"{key:<{width}}  {_cell(data.get(key))}")
        return
    rows = list(data)
    if not rows:
        click.echo("(none)")
        return
    columns = columns or list(rows[0])
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def say(text: str, data: dict[str, Any]) -> None:
    """A sentence for people, ``data`` as JSON with ``--json``."""
    if as_json():
        show(data)
    else:
        click.echo(text)


def json_option(f):
    """``--json`` on each command too, so it can go at the end of the line."""

    def remember(ctx, _param, value):
        if value:
            ctx.find_object(CliContext).as_json = True
        return value

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=remember, help="Print JSON instead of a table."
    )(f)
