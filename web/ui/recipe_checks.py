"""What the recipe editor checks when QA saves, answered element by element.

The engine's own validation (``engine.bpmn.validate_recipe``: safe XML, Spiff's parser,
scripts, ``due``) comes first; then what only matters for a recipe people will run:
every user task has a form that the forms package accepts, and every service task names
a connector this installation has. Each problem carries the BPMN element id, so the
modeler can mark the element and list the problem next to it — a QA author fixes a
diagram, not a stack trace.
"""

from __future__ import annotations

from typing import Any

from engine.bpmn import parse_recipe, validate_recipe
from engine.errors import Problem, RecipeInvalid

#: most BPMN files one recipe may have (the main process and the unit procedures it calls)
MAX_FILES = 40
#: most forms one recipe may carry
MAX_FORMS = 500


def shape_problems(body: Any) -> tuple[dict[str, bytes], dict[str, Any], list[Problem]]:
    """The editor's save body -> (BPMN files, forms, problems with its shape)."""
    if not isinstance(body, dict):
        return {}, {}, [Problem("body_invalid", "the recipe must be sent as one JSON object")]
    files, forms = body.get("files"), body.get("forms", {})
    problems = []
    if not isinstance(files, dict) or not files or len(files) > MAX_FILES:
        problems.append(Problem("bpmn_missing", f"send between 1 and {MAX_FILES} BPMN files"))
    elif not all(isinstance(k, str) and k and isinstance(v, str) for k, v in files.items()):
        problems.append(Problem("bpmn_invalid", "every BPMN file is a name and its XML text"))
    if not isinstance(forms, dict) or len(forms) > MAX_FORMS:
        problems.append(Problem("forms_invalid", f"forms must map a form id to a form-js object (at most {MAX_FORMS})"))
    elif not all(isinstance(v, dict) for v in forms.values()):
        problems.append(Problem("forms_invalid", "every form must be a form-js JSON object"))
    if problems:
        return {}, {}, problems
    return {name: text.encode("utf-8") for name, text in files.items()}, forms, []


def connector_known(operator: str, names: list[str]) -> bool:
    """The registry's own rule: "lims.sample" is served by "lims.sample" or by "lims"."""
    return operator in names or operator.split(".", 1)[0] in names


def recipe_problems(files: dict[str, bytes], forms: dict[str, Any], connectors: list[str]) -> list[Problem]:
    """Every problem found, [] if the recipe can be saved as a draft."""
    problems = validate_recipe(files)
    if problems:
        return problems
    try:
        parsed = parse_recipe(files)
    except RecipeInvalid as exc:  # validate_recipe said yes; kept for safety
        return exc.problems
    file_of = {}
    for name, data in files.items():
        text = data.decode("utf-8", "replace")
        for task in [*parsed.user_tasks, *parsed.service_tasks]:
            if f'id="{task.element_id}"' in text:
                file_of.setdefault(task.element_id, name)
    users_of: dict[str, list[str]] = {}
    for task in parsed.user_tasks:
        where = file_of.get(task.element_id)
        label = task.name or task.element_id
        if not task.form_key:
            problems.append(
                Problem("form_missing", f"user task {label!r} has no form: give it one", task.element_id, where)
            )
        elif task.form_key not in forms:
            problems.append(
                Problem(
                    "form_missing",
                    f"user task {label!r} names form {task.form_key!r}, which the recipe does not have",
                    task.element_id,
                    where,
                )
            )
        else:
            users_of.setdefault(task.form_key, []).append(task.element_id)
    for task in parsed.service_tasks:
        if not connector_known(task.operator, connectors):
            known = ", ".join(connectors) or "none installed"
            problems.append(
                Problem(
                    "connector_unknown",
                    f"service task {task.name or task.element_id!r} calls {task.operator!r}, "
                    f"which this installation does not have (known: {known})",
                    task.element_id,
                    file_of.get(task.element_id),
                )
            )
    problems.extend(_form_problems(forms, users_of, file_of))
    return problems


def _form_problems(forms: dict[str, Any], users_of: dict[str, list[str]], file_of: dict[str, str]) -> list[Problem]:
    from forms import load_form

    out = []
    for form_id, element_ids in users_of.items():
        try:
            load_form(forms[form_id])
        except Exception as exc:  # the forms package says what is wrong, located in the form
            for element_id in element_ids:
                out.append(Problem("form_invalid", f"form {form_id!r}: {exc}", element_id, file_of.get(element_id)))
    return out
