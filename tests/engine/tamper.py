"""Tampering as someone with the database owner's rights would: the append-only triggers
are dropped, the rows changed, and the triggers put back in the same transaction (so
nothing looks different afterwards, and the next test still has them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from engine.append_only import APPEND_ONLY


def _trigger_definitions(s: Session) -> list[tuple[str, str, str]]:
    """(name, table, CREATE statement) of every append-only trigger."""
    if s.get_bind().dialect.name == "sqlite":
        rows = s.execute(text("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
    else:
        rows = s.execute(
            text(
                "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        ).all()
    return [(n, t, sql) for n, t, sql in rows if t in APPEND_ONLY]


@contextmanager
def as_owner(rt) -> Iterator[Session]:
    with rt.transaction() as s:
        triggers = _trigger_definitions(s)
        assert len(triggers) >= 2 * len(APPEND_ONLY), triggers  # the triggers are there to drop
        sqlite = s.get_bind().dialect.name == "sqlite"
        for name, table, _sql in triggers:
            s.execute(text(f"DROP TRIGGER {name}" if sqlite else f"DROP TRIGGER {name} ON {table}"))
        yield s
        for _name, _table, sql in triggers:
            s.execute(text(sql))
