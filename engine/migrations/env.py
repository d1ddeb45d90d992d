"""Alembic environment: runs migrations on the engine handed over by engine.migrate."""

from alembic import context
from sqlalchemy import create_engine

from engine.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:  # run by the alembic command line rather than engine.migrate
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no database to migrate: run `batchline db upgrade` or set sqlalchemy.url")
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite"
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
