"""The REST API: one blueprint per concern (recipes, batches, messages, operations),
each a thin layer over the engine's services — routes -> engine, never the reverse."""

from __future__ import annotations

from flask import current_app

from engine.runtime import Runtime


def runtime() -> Runtime:
    """The engine this app serves (set by ``create_app``; no module-level state)."""
    return current_app.extensions["batchline"]
