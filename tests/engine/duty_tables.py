"""The INTENDED separation of duties, written out as literal tables (never computed from
``engine.permissions`` or ``engine.duties``: a wrong entry there must fail a test here).

The recipe ``tests/recipes/duties.bpmn`` has one user task per (task role, signature
meaning): ``<role>_<meaning>`` (``<role>_noform`` has no form, so no signature), tasks
whose role comes from a lane, tasks naming roles no person may act in, and witnessed
tasks. Its forms are in ``tests/recipes/duties_forms``.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.users import Person
from tests.support import read_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"

#: the roles a person may hold, and the combinations that matter
SINGLE_ROLES = ("operator", "supervisor", "qa", "admin", "service", "trainer")  # a trainer signs no task
COMBINATIONS = (
    ("operator", "supervisor"),
    ("operator", "qa"),
    ("supervisor", "qa"),
    ("operator", "supervisor", "qa", "admin"),
)
EVERY_HOLDING = tuple((r,) for r in SINGLE_ROLES) + COMBINATIONS

#: task id -> (task role, signature meaning or None for no form, the single roles that may
#: complete it and sign it). A person may when one of their roles may.
COMPLETE: dict[str, tuple[str, str | None, frozenset[str]]] = {
    "operator_noform": ("operator", None, frozenset({"operator", "supervisor"})),
    "operator_performed": ("operator", "Performed", frozenset({"operator", "supervisor"})),
    "operator_verified": ("operator", "Verified", frozenset({"operator", "supervisor"})),
    "operator_reviewed": ("operator", "Reviewed", frozenset({"supervisor"})),
    "operator_approved": ("operator", "Approved", frozenset({"supervisor"})),
    "operator_released": ("operator", "Released", frozenset()),
    "supervisor_noform": ("supervisor", None, frozenset({"supervisor"})),
    "supervisor_performed": ("supervisor", "Performed", frozenset({"supervisor"})),
    "supervisor_verified": ("supervisor", "Verified", frozenset({"supervisor"})),
    "supervisor_reviewed": ("supervisor", "Reviewed", frozenset({"supervisor"})),
    "supervisor_approved": ("supervisor", "Approved", frozenset({"supervisor"})),
    "supervisor_released": ("supervisor", "Released", frozenset()),
    "qa_noform": ("qa", None, frozenset({"qa"})),
    "qa_performed": ("qa", "Performed", frozenset({"qa"})),
    "qa_verified": ("qa", "Verified", frozenset({"qa"})),
    "qa_reviewed": ("qa", "Reviewed", frozenset({"qa"})),
    "qa_approved": ("qa", "Approved", frozenset({"qa"})),
    "qa_released": ("qa", "Released", frozenset({"qa"})),
    # the role from the lane; a role property wins over the lane
    "lane_qa_released": ("qa", "Released", frozenset({"qa"})),
    "lane_qa_noform": ("qa", None, frozenset({"qa"})),
    "lane_supervisor_noform": ("supervisor", None, frozenset({"supervisor"})),
    "lane_qa_role_operator": ("operator", None, frozenset({"operator", "supervisor"})),
    # a hostile recipe naming roles that complete nothing
    "admin_noform": ("admin", None, frozenset()),
    "service_noform": ("service", None, frozenset()),
}

#: task role -> the single roles that may complete a task of it (and be assigned it)
COMPLETERS = {
    "operator": frozenset({"operator", "supervisor"}),
    "supervisor": frozenset({"supervisor"}),
    "qa": frozenset({"qa"}),
    "admin": frozenset(),
    "service": frozenset(),
}

#: witnessed task -> (its role = its performer's role, the form's witnessRole, the single
#: roles that may witness it: the form's witness role, if not below the task's role)
WITNESS: dict[str, tuple[str, str | None, frozenset[str]]] = {
    "operator_witness_supervisor": ("operator", "Supervisor", frozenset({"supervisor"})),
    "operator_witness_operator": ("operator", "Operator", frozenset({"operator"})),
    "operator_witness_any": ("operator", None, frozenset({"operator", "supervisor", "qa"})),
    "operator_witness_admin": ("operator", "admin", frozenset()),  # admin signs nothing of the record
    "qa_witness_qa": ("qa", "QA", frozenset({"qa"})),
    "qa_witness_supervisor": ("qa", "Supervisor", frozenset()),  # a supervisor never signs on a QA task
    "qa_witness_any": ("qa", None, frozenset({"qa"})),
    "supervisor_witness_any": ("supervisor", None, frozenset({"supervisor", "qa"})),
    "supervisor_witness_operator": ("supervisor", "Operator", frozenset()),  # nobody below the task's role
}

#: recorded step (by task id) -> the single roles that may correct it: those that may
#: complete its task and give the meaning its performer signed ("Corrected" included)
CORRECT: dict[str, frozenset[str]] = {
    "operator_performed": frozenset({"operator", "supervisor"}),
    "operator_verified": frozenset({"operator", "supervisor"}),
    "operator_reviewed": frozenset({"supervisor"}),
    "operator_approved": frozenset({"supervisor"}),
    "supervisor_performed": frozenset({"supervisor"}),
    "supervisor_verified": frozenset({"supervisor"}),
    "supervisor_reviewed": frozenset({"supervisor"}),
    "supervisor_approved": frozenset({"supervisor"}),
    "qa_performed": frozenset({"qa"}),
    "qa_verified": frozenset({"qa"}),
    "qa_reviewed": frozenset({"qa"}),
    "qa_approved": frozenset({"qa"}),
    "qa_released": frozenset({"qa"}),
    "lane_qa_released": frozenset({"qa"}),
    # the witness's "Verified" does not narrow who corrects the performer's entry
    "operator_witness_supervisor": frozenset({"operator", "supervisor"}),
}


def holder(roles: tuple[str, ...], suffix: str = "") -> Person:
    """An authenticated person holding ``roles`` (user id from the roles)."""
    return Person("-".join(roles) + suffix, " ".join(roles).title(), roles)


def may(roles: tuple[str, ...], allowed: frozenset[str]) -> bool:
    return any(r in allowed for r in roles)


def recipe_files() -> tuple[dict[str, bytes], dict[str, dict]]:
    forms = {p.stem: json.loads(p.read_text()) for p in (RECIPES / "duties_forms").glob("*.json")}
    return read_recipe("duties.bpmn"), forms


def values_for(meaning: str | None, reading: str = "1.0") -> dict[str, str]:
    return {} if meaning is None else {"reading": reading}
