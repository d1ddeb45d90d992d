"""What one ``batchline`` invocation shares: the settings file, whether to answer in
JSON, and the engine — opened only when a command needs it (``--help`` and
``recipe validate`` never touch the database) and closed when the command ends."""

from __future__ import annotations

from typing import Any

import click

from engine.config import load_settings


class CliContext:
    """Settings and, only when needed, the engine of one command invocation."""

    def __init__(self, config_file: str | None = None, as_json: bool = False, runtime=None):
        self.config_file = config_file
        self.as_json = as_json
        self._runtime = runtime  # given by a caller (tests) that also closes it
        self._owned = False

    @property
    def runtime(self):
        if self._runtime is None:
            from engine.runtime import Runtime

            self._runtime = Runtime(load_settings(self.config_file))
            self._owned = True
        return self._runtime

    def acting(self, user: str, action: str) -> Any:
        """The authenticated person allowed to do ``action`` (for plug-in groups, which
        cannot import ``web``: they find this object on the click context)."""
        from .acting import acting

        return acting(user, action)

    def close(self) -> None:
        if self._owned:
            self._runtime.close()


def current() -> CliContext:
    return click.get_current_context().find_object(CliContext)


def runtime():
    """The engine of the running command."""
    return current().runtime


def as_json() -> bool:
    """True when the answer is JSON (``batchline --json CMD`` or ``CMD --json``)."""
    return current().as_json
