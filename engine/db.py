"""Database connection for Batchline: SQLite (embedded default) or PostgreSQL.

Why the SQLite settings: WAL lets readers run beside the single writer, and
``synchronous=FULL`` makes a committed step survive power loss (an acknowledged step
is never lost). Every SQLite transaction starts with ``BEGIN IMMEDIATE`` (except a change of
a batch, which runs its engine steps and scripts first; see ``transaction``) so the write
lock is taken up front: two writers queue on ``busy_timeout`` instead of one failing
with "database is locked" at commit time. PostgreSQL uses row locks (``FOR UPDATE``)
taken by the services.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Settings


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        busy = settings.sqlite_busy_timeout_seconds
        engine = create_engine(url, connect_args={"timeout": busy, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # pragma: no cover
            # a deferred transaction (engine steps before the first write) takes the
            # write lock at its first write, and fails there if another writer committed
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("deferred") else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, deferred: bool = False) -> Iterator[Session]:
    """One business operation = one transaction: commit on success, roll back on error.

    ``deferred``: on SQLite, begin without the write lock (a read snapshot); the lock is
    taken at the first write, which fails with "database is locked" if another writer
    committed since the snapshot (`engine.batches.unit_of_work` retries then)."""
    session = factory()
    try:
        with session.begin():
            if deferred:
                session.connection(execution_options={"deferred": True})
            yield session
    finally:
        session.info.clear()
        session.close()


def row_locks(session: Session) -> bool:
    """True when the database takes ``SELECT … FOR UPDATE`` row locks (PostgreSQL); on
    SQLite the transaction's ``BEGIN IMMEDIATE`` already serialises writers."""
    return session.get_bind().dialect.name == "postgresql"


def insert_once(session: Session, model: Any, values: dict[str, Any], key: list[str]) -> int | None:
    """Insert one row unless a row with the same ``key`` (a unique index) exists: the new
    row's id, or None when the database already held it. ``INSERT … ON CONFLICT DO
    NOTHING`` on both databases, so two transactions racing to write the same fact never
    fail or write it twice: the database, not a read before the write, decides."""
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any
    if session.get_bind().dialect.name == "postgresql":
        stmt = postgresql.insert(model).values(**values).on_conflict_do_nothing(index_elements=key)
    else:
        stmt = sqlite.insert(model).values(**values).on_conflict_do_nothing(index_elements=key)
    stmt = stmt.returning(model.id)
    return session.execute(stmt).scalar_one_or_none()
