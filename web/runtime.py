"""The engine a request is served by: ``runtime()`` answers the Batchline ``Runtime``
that ``create_app`` put into the app (``app.extensions["batchline"]``).

One accessor for the API, the browser UI, the trend pages and authentication, so there
is no module-level engine and a test's app serves the test's own runtime.
"""

from __future__ import annotations

from flask import Flask, current_app

from engine.runtime import Runtime

#: the key of the runtime in ``app.extensions``
EXTENSION = "batchline"


def install(app: Flask, runtime: Runtime) -> None:
    """Make ``runtime`` the engine this app serves (called by ``create_app``)."""
    app.extensions[EXTENSION] = runtime


def runtime() -> Runtime:
    """The engine this app serves (set by ``create_app``; no module-level state)."""
    return current_app.extensions[EXTENSION]
