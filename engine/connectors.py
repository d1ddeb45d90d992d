"""Connectors: how service tasks reach other systems (ERP, LIMS, QMS, equipment).

The engine defines only this interface and a registry; implementations live in
``integrations``. Connector *types* (``http``, ``lims-rest``, ``opcua``…) register through
the ``batchline.connector_types`` entry point group, so an install can leave one out;
connector *instances* are configuration (``engine.connector_config``). A service task
names an instance and an operation by its ``spiffworkflow:serviceTaskOperator``
(``"lims.sample_request"``); code may still register a connector object by name
(``batchline.connectors`` entry points, tests, the demo).

Connectors never run inside a step's database transaction: the job executor calls them
with no lock held, then completes the task in a short transaction of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol


@dataclass
class ServiceCall:
    batch_id: str
    task_id: str
    bpmn_id: str
    operator: str
    params: dict[str, Any]
    #: a token an asynchronous system echoes back to complete the task later
    callback_token: str

    @property
    def operation(self) -> str:
        """What the task asks of the connector: the operator after its first dot
        (``"BR-101.run_phase"`` -> ``"run_phase"``; ``""`` when there is no dot)."""
        return self.operator.split(".", 1)[1] if "." in self.operator else ""

    @property
    def idempotency_key(self) -> str:
        """The same for every retry of the same task: the other system's duplicate check."""
        return f"{self.batch_id}:{self.task_id}"


@dataclass(frozen=True)
class ConnectorConfig:
    """A configured connector instance as a connector type's factory receives it:
    ``factory(config, runtime) -> Connector``. ``secret`` is decrypted in memory only;
    never log it or put it in an error message."""

    name: str
    type: str
    endpoint: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0


@dataclass
class Completed:
    """The call finished; ``data`` is merged into the task's data (scalars only)."""

    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pending:
    """The call was accepted; the task waits until the other system calls back."""

    reference: str | None = None


class ConnectorError(Exception):
    """A failed call. ``retry`` says whether trying again may help; ``bpmn_error`` names a
    BPMN error code that an error boundary event on the task may catch."""

    def __init__(self, message: str, *, retry: bool = True, bpmn_error: str | None = None):
        super().__init__(message)
        self.retry = retry
        self.bpmn_error = bpmn_error


class Connector(Protocol):
    def call(self, call: ServiceCall) -> Completed | Pending: ...


TYPE_GROUP = "batchline.connector_types"
#: how often a process looks whether another process changed the configured instances
CHECK_SECONDS = 1.0


class ConnectorRegistry:
    """Which connector serves a service task's operator.

    ``get("lims.sample_request")``: a code registration of exactly that dotted operator
    (the engine's own ``batch.release``…), else the configured instance ``lims``
    (``engine.connector_config``) built through its type's factory and cached until its
    row or its referenced secret changes, else a code registration of ``lims``. A
    disabled instance, or one whose type is not installed, raises a non-retried
    ``ConnectorError`` naming it: the job becomes an incident with that message."""

    def __init__(self, runtime: Any = None) -> None:
        self._connectors: dict[str, Connector] = {}
        self._types: dict[str, Callable[..., Any]] = {}
        self.runtime = runtime
        self._lock = threading.Lock()
        self._checked = -1e9
        self._fingerprint: Any = None
        self._configured: dict[str, bool] = {}  # name -> enabled
        self._built: dict[str, tuple[Any, Connector]] = {}

    def register(self, name: str, connector: Connector | Callable[[ServiceCall], Any]) -> None:
        if callable(connector) and not hasattr(connector, "call"):
            fn = connector

            class _Fn:
                def call(self, call: ServiceCall):
                    return fn(call)

            connector = _Fn()
        self._connectors[name] = connector

    # --- types ------------------------------------------------------------------------

    def register_type(self, type_name: str, factory: Callable[..., Any]) -> None:
        """A connector type: ``factory(config: ConnectorConfig, runtime) -> Connector``."""
        self._types[type_name] = factory
        self._built.clear()

    def type_factory(self, type_name: str) -> Callable[..., Any] | None:
        """The factory of an installed type (registered with ``register_type`` or an entry point)."""
        factory = self._types.get(type_name)
        if factory is not None:
            return factory
        for ep in entry_points(group=TYPE_GROUP):
            if ep.name == type_name:
                try:
                    factory = ep.load()
                except Exception:  # noqa: BLE001 - a broken optional type is "not installed"
                    return None
                break
        else:  # the engine never imports integrations: types come by entry point or register_type
            return None
        self._types[type_name] = factory
        return factory

    def type_names(self) -> list[str]:
        names = set(self._types) | {ep.name for ep in entry_points(group=TYPE_GROUP)}
        return sorted(names)

    # --- configured instances ---------------------------------------------------------

    def invalidate(self) -> None:
        """Look at the configured instances again on the next call (after a change)."""
        self._checked = -1e9

    def _instances(self) -> dict[str, bool]:
        if self.runtime is None:
            return {}
        now = time.monotonic()
        if now - self._checked <= CHECK_SECONDS:
            return self._configured
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from .models import ConnectorInstance

        try:
            with self.runtime.transaction() as s:
                fingerprint = tuple(
                    s.execute(select(func.count(ConnectorInstance.name), func.max(ConnectorInstance.updated_at))).one()
                )
                if fingerprint != self._fingerprint:
                    rows = s.execute(select(ConnectorInstance.name, ConnectorInstance.enabled)).all()
                    self._configured = {name: bool(enabled) for name, enabled in rows}
                    self._fingerprint = fingerprint
        except SQLAlchemyError:  # no schema yet (a fresh database): nothing configured
            return {}
        self._checked = now
        return self._configured

    def _instance(self, name: str) -> Connector:
        from . import connector_config
        from .models import ConnectorInstance

        with self.runtime.transaction() as s:
            row = s.get(ConnectorInstance, name)
            if row is None:
                raise ConnectorError(f"connector {name!r} is not configured", retry=False)
            if not row.enabled:
                raise ConnectorError(f"connector {name!r} is disabled", retry=False)
            config = connector_config.config_of(row, self.runtime.settings)
            version = connector_config.version_of(row, config.secret)
        with self._lock:
            cached = self._built.get(name)
            if cached is not None and cached[0] == version:
                return cached[1]
        factory = self.type_factory(config.type)
        if factory is None:
            raise ConnectorError(
                f"connector {name!r} has type {config.type!r}, which is not installed in this Batchline", retry=False
            )
        try:
            connector = factory(config, self.runtime)
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - the type's own error, without the secret
            message = str(exc).replace(config.secret, "***") if config.secret else str(exc)
            raise ConnectorError(
                f"connector {name!r} ({config.type}) could not be set up: {type(exc).__name__}: {message}", retry=False
            ) from None
        with self._lock:
            self._built[name] = (version, connector)
        return connector

    # --- lookup -----------------------------------------------------------------------

    def get(self, operator: str) -> Connector:
        if "." in operator and operator in self._connectors:  # an exact operation (batch.release)
            return self._connectors[operator]
        prefix = operator.split(".", 1)[0]
        if prefix in self._instances():
            return self._instance(prefix)
        if operator in self._connectors:
            return self._connectors[operator]
        # "lims.sample" falls back to a connector registered as "lims"
        if prefix in self._connectors:
            return self._connectors[prefix]
        raise ConnectorError(f"no connector named {operator!r} is installed or configured", retry=False)

    def names(self) -> list[str]:
        """What a service task may call: code registrations and enabled instances."""
        configured = {name for name, enabled in self._instances().items() if enabled}
        return sorted(set(self._connectors) | configured)

    def load_entry_points(self, settings: Any) -> None:
        for ep in entry_points(group="batchline.connectors"):
            try:
                factory = ep.load()
                self.register(ep.name, factory(settings))
            except Exception:  # a broken optional connector must not stop the plant
                continue
        for ep in entry_points(group=TYPE_GROUP):
            try:
                self._types[ep.name] = ep.load()
            except Exception:  # noqa: BLE001 - a broken optional type is "not installed"
                continue
