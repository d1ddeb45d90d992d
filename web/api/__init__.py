"""The REST API: one blueprint per concern (recipes, batches, messages, operations),
each a thin layer over the engine's services — routes -> engine, never the reverse.

``runtime`` (the engine this app serves) is ``web.runtime.runtime``, re-exported here
for the API modules' ``from . import runtime``."""

from __future__ import annotations

from ..runtime import runtime

__all__ = ["runtime"]
