"""The running Batchline engine: settings, database, workflow store and cache,
connectors and event sinks — everything a CLI command, an API request or a worker
needs, built once per process (no module-level globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import audit
from .bpmn import make_serializer
from .config import Settings, load_settings
from .connectors import ConnectorRegistry
from .db import make_engine, make_session_factory, transaction
from .scripting import ScriptLimits, make_script_engine
from .workflow_store import WorkflowCache, WorkflowStore


@dataclass(frozen=True)
class RecipeContent:
    """The immutable part of a recipe version the step path reads (forms, task list)."""

    id: int
    forms: dict[str, Any]
    tasks: list[Any]


class Runtime:
    def __init__(self, settings: Settings | None = None, *, load_connectors: bool = True):
        self.settings = settings or load_settings()
        self.db = make_engine(self.settings)
        self.sessions = make_session_factory(self.db)
        audit.install(self)  # the audit key on every session; anchors after commit
        limits = ScriptLimits.from_settings(self.settings)
        self.store = WorkflowStore(make_serializer(), lambda: make_script_engine(limits=limits))
        self.cache = WorkflowCache(self.settings.workflow_cache_size)
        #: recipe version id -> its immutable forms and task list (engine.batches)
        self.recipe_content: dict[int, RecipeContent] = {}
        self.connectors = ConnectorRegistry(self)
        #: background work other packages add (e.g. analytics' ``score_step``): job kind ->
        #: handler(runtime, batch_id, task_id, payload). A step schedules a ``score_step``
        #: job in its own transaction when a handler for it is registered here.
        self.job_handlers: dict[str, Callable] = {}
        #: subscriber kind -> the publisher that delivers its events (engine.delivery): the
        #: engine delivers webhooks itself; ``integrations.mqtt`` registers ``mqtt``
        self.publishers: dict[str, Any] = {}
        if load_connectors:
            self.connectors.load_entry_points(self.settings)
            from .delivery import load_publishers

            load_publishers(self.publishers, self.settings)
        # the engine's own operations for quality processes (batch.release, ...): registered
        # last, so an installed connector can never take their names
        from .quality.operations import register as register_quality_operations

        register_quality_operations(self)
        from . import archive

        archive.install(self)  # nothing is added to an archived batch; the daily archive job

    def transaction(self, *, deferred: bool = False):
        return transaction(self.sessions, deferred=deferred)

    def create_schema(self) -> None:
        """Bring the database to the newest schema through Alembic migrations."""
        from .migrate import upgrade

        upgrade(self.db)

    def close(self) -> None:
        for publisher in list(self.publishers.values()):
            publisher.close()  # their broker connections and threads end with the runtime
        self.db.dispose()
