"""Connectors: how service tasks reach other systems (ERP, LIMS, QMS, equipment).

The engine defines only this interface and a registry; implementations live in
``integrations`` and register through the ``batchline.connectors`` entry point group,
so an install can leave a connector out. A service task names its connector by its
``spiffworkflow:serviceTaskOperator`` (``"http"``, ``"lims.sample"``…).

Connectors never run inside a step's database transaction: the job executor calls them
with no lock held, then completes the task in a short transaction of its own.
"""

from __future__ import annotations

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


class ConnectorRegistry:
    def __init__(self) -> None:
        self._connectors: dict[str, Connector] = {}

    def register(self, name: str, connector: Connector | Callable[[ServiceCall], Any]) -> None:
        if callable(connector) and not hasattr(connector, "call"):
            fn = connector

            class _Fn:
                def call(self, call: ServiceCall):
                    return fn(call)

            connector = _Fn()
        self._connectors[name] = connector

    def get(self, operator: str) -> Connector:
        if operator in self._connectors:
            return self._connectors[operator]
        # "lims.sample" falls back to a connector registered as "lims"
        prefix = operator.split(".", 1)[0]
        if prefix in self._connectors:
            return self._connectors[prefix]
        raise ConnectorError(f"no connector named {operator!r} is installed", retry=False)

    def names(self) -> list[str]:
        return sorted(self._connectors)

    def load_entry_points(self, settings: Any) -> None:
        for ep in entry_points(group="batchline.connectors"):
            try:
                factory = ep.load()
                self.register(ep.name, factory(settings))
            except Exception:  # a broken optional connector must not stop the plant
                continue
