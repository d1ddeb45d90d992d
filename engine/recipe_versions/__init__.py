"""Working across recipe versions: what changed between two versions (``diff``), which
recipes call an operation template (``where_used``), putting another template version
into every recipe that calls it as new drafts (``replace``), and moving a running batch
to a newer version of its recipe (``position``: the Spiff-level mapping of where the
batch stands; ``migration``: the supervisor's request and QA's e-signed approval).

Versions themselves stay immutable (``engine.recipes``): everything here reads them or
makes new drafts through ``recipes.import_recipe``.
"""

from __future__ import annotations

from .diff import diff_versions
from .migration import approve_migration, list_migrations, request_migration
from .replace import replace_template
from .where_used import where_used

__all__ = [
    "approve_migration",
    "diff_versions",
    "list_migrations",
    "replace_template",
    "request_migration",
    "where_used",
]
