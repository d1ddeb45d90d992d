"""The ``batchline`` command: run the database, recipes, batches, the job worker and the
web server from a shell.

Output is a readable table by default and JSON with ``--json`` (for scripts), on every
command. A user error prints ``error [code]: message`` on stderr and exits 2, never a
traceback; checks that find something wrong (``recipe validate``, ``audit verify``)
exit 1. Extra command groups (analytics…) come from the ``batchline.cli`` entry point
group, loaded only when used, so a broken or missing optional module never breaks the
rest.

One module per command group: ``root`` (the command, its errors, plug-ins),
``context`` (what an invocation shares), ``output`` (tables, JSON, errors), ``acting``
(who acts and their password), then ``db``, ``recipes``, ``batches``, ``incidents``,
``audit``, ``users``, ``qualifications`` (``qual``), ``serve`` (worker and web server), ``demo`` and ``equipment-sim``
(the OPC UA equipment simulator of ``integrations.equipment_sim``).
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers the commands)
    archive,
    audit,
    backup,
    batches,
    connectors,
    db,
    demo,
    equipment_sim,
    incidents,
    master_data,
    qms,
    qualifications,
    quality,
    recipe_exchange,
    recipe_versions,
    recipes,
    serve,
    users,
)
from .batches import parse_value
from .context import CliContext
from .output import json_option, show
from .root import PLUGIN_GROUP, BatchlineGroup, main

__all__ = ["PLUGIN_GROUP", "BatchlineGroup", "CliContext", "json_option", "main", "parse_value", "show"]
