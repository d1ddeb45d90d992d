"""Parsing and validating recipe BPMN on SpiffWorkflow 3.2.0.

Spiff's unreadable failures (parser recursion, a TypeError for an undefined message,
non-executable processes) become problems naming the element and file, and every
problem found is reported at once.
"""

from __future__ import annotations

from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.spiff.parser import VALIDATOR

from engine.errors import Problem, RecipeInvalid, XmlRefused

from .contents import ParsedRecipe, describe
from .properties import property_problems
from .safe_xml import BPMN_NS, parse_xml
from .scripts import script_problems
from .service_task import BatchlineParser

TOO_LONG = "process too long: use a call activity or a loop"


def _from_validation(exc: ValidationException, filename: str | None = None) -> Problem:
    text = str(exc.args[0]) if exc.args else str(exc)
    element = getattr(exc, "id", None) or None
    file = getattr(exc, "file_name", None) or filename
    line = getattr(exc, "line_number", None) or None
    if "RecursionError" in text or "maximum recursion depth" in text:
        return Problem(
            "process_too_long",
            f"{TOO_LONG} (SpiffWorkflow's parser gave up here, after roughly 490 elements in a row)",
            element,
            file,
        )
    if "unexpected keyword argument 'node'" in text:
        return Problem(
            "undefined_reference",
            "refers to a message, signal, error or escalation that no recipe file defines",
            element,
            file,
        )
    return Problem("bpmn_invalid", text.strip().rstrip("."), element, file, line if isinstance(line, int) else None)


def _processes(trees: dict[str, etree._Element]) -> dict[str, dict[str, Any]]:
    """Top-level bpmn:process elements: file, executable flag, call activities inside."""
    found: dict[str, dict[str, Any]] = {}
    for filename, root in trees.items():
        for proc in root.iterfind("bpmn:process", BPMN_NS):
            calls = [(ca.get("id"), ca.get("calledElement")) for ca in proc.iterfind(".//bpmn:callActivity", BPMN_NS)]
            found[proc.get("id")] = {
                "file": filename,
                "executable": proc.get("isExecutable", "true") == "true",
                "calls": calls,
            }
    return found


def _reference_problems(trees: dict[str, etree._Element]) -> list[Problem]:
    """Undefined messageRef/signalRef/...: Spiff 3.2.0 turns these into a TypeError."""
    kinds = {"messageRef": "message", "signalRef": "signal", "errorRef": "error", "escalationRef": "escalation"}
    defined: dict[str, set[str | None]] = {kind: set() for kind in kinds.values()}
    for root in trees.values():
        for kind in kinds.values():
            defined[kind].update(el.get("id") for el in root.iterfind(f".//bpmn:{kind}", BPMN_NS))
    problems = []
    for filename, root in trees.items():
        for attr, kind in kinds.items():
            for el in root.iterfind(f".//bpmn:process//*[@{attr}]", BPMN_NS):
                if el.get(attr) not in defined[kind]:
                    owner = el if el.tag.endswith(("Task", "task")) else el.getparent()
                    problems.append(
                        Problem(
                            "undefined_reference",
                            f"{kind} {el.get(attr)!r} is not defined in any recipe file",
                            owner.get("id"),
                            filename,
                            el.sourceline,
                        )
                    )
    return problems


def _choose_top(processes: dict[str, dict[str, Any]], process_id: str | None) -> tuple[str | None, list[Problem]]:
    if process_id is not None:
        info = processes.get(process_id)
        if info is None:
            return None, [
                Problem(
                    "process_not_found",
                    f"no process {process_id!r} in the recipe files; found: {', '.join(sorted(processes)) or 'none'}",
                )
            ]
        if not info["executable"]:
            return None, [
                Problem(
                    "not_executable", f'process {process_id!r} is marked isExecutable="false"', process_id, info["file"]
                )
            ]
        return process_id, []
    called = {target for info in processes.values() for _, target in info["calls"]}
    executable = [pid for pid, info in processes.items() if info["executable"]]
    if not executable:
        return None, [
            Problem(
                "not_executable",
                "no executable process: every process in the recipe files is marked "
                'isExecutable="false" (mark the recipe\'s process executable in the modeler)',
            )
        ]
    tops = [pid for pid in executable if pid not in called]
    if len(tops) == 1:
        return tops[0], []
    if not tops:
        return None, [
            Problem(
                "no_top_process",
                "every executable process is called by another one; there is no process to start the recipe with",
            )
        ]
    return None, [
        Problem(
            "several_top_processes",
            f"several processes could start the recipe ({', '.join(sorted(tops))}); say which one",
        )
    ]


def _reachable(top: str, processes: dict[str, dict[str, Any]]) -> list[str]:
    seen, todo = [], [top]
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in processes:
            continue
        seen.append(pid)
        todo.extend(target for _, target in processes[pid]["calls"])
    return seen


def parse_recipe(files: dict[str, bytes], process_id: str | None = None) -> ParsedRecipe:
    """Parse and validate recipe files; raise RecipeInvalid (XmlRefused for unsafe XML) listing every problem."""
    if not files:
        raise RecipeInvalid([Problem("no_files", "no BPMN files given")])
    problems: list[Problem] = []
    trees: dict[str, etree._Element] = {}
    for filename, data in files.items():
        try:
            trees[filename] = parse_xml(filename, data)
        except XmlRefused as exc:
            problems.extend(exc.problems)
    if problems:
        raise XmlRefused(problems)

    parser = BatchlineParser(validator=VALIDATOR)
    for filename, root in trees.items():
        try:
            parser.add_bpmn_xml(root, filename=filename)
        except ValidationException as exc:
            problems.append(_from_validation(exc, filename))
    if problems:
        raise RecipeInvalid(problems)

    processes = _processes(trees)
    problems.extend(_reference_problems(trees))
    for info in processes.values():
        for call_id, target in info["calls"]:
            if not target:
                problems.append(
                    Problem(
                        "call_without_process", "call activity names no process (calledElement)", call_id, info["file"]
                    )
                )
            elif target not in processes:
                problems.append(
                    Problem(
                        "called_process_missing",
                        f"call activity calls process {target!r}, which no recipe file defines",
                        call_id,
                        info["file"],
                    )
                )
    top, choice_problems = _choose_top(processes, process_id)
    problems.extend(choice_problems)
    if top is not None:
        for pid in _reachable(top, processes)[1:]:
            if not processes[pid]["executable"]:
                problems.append(
                    Problem(
                        "not_executable",
                        f'called process {pid!r} is marked isExecutable="false"',
                        pid,
                        processes[pid]["file"],
                    )
                )
    if problems or top is None:  # no top process comes with a problem saying why
        raise RecipeInvalid(problems)

    try:
        spec = parser.get_spec(top)
        subprocess_specs = parser.get_subprocess_specs(top)
    except ValidationException as exc:
        raise RecipeInvalid([_from_validation(exc)]) from None
    except RecursionError:
        raise RecipeInvalid([Problem("process_too_long", TOO_LONG, top, processes[top]["file"])]) from None
    except TypeError as exc:  # bad `node=` keyword in Spiff's event parsers, if it ever escapes unwrapped
        raise RecipeInvalid(
            [
                Problem(
                    "undefined_reference",
                    f"the BPMN refers to something undefined ({exc})",
                    top,
                    processes[top]["file"],
                )
            ]
        ) from None

    problems = script_problems(spec, subprocess_specs) + property_problems(spec, subprocess_specs)
    if problems:
        raise RecipeInvalid(problems)
    return describe(spec, subprocess_specs)


def validate_recipe(files: dict[str, bytes], process_id: str | None = None) -> list[Problem]:
    """Every problem found, [] if the recipe can run. Never raises for bad input (CLI `recipe validate`)."""
    try:
        parse_recipe(files, process_id)
    except RecipeInvalid as exc:
        return exc.problems
    except Exception as exc:  # a Spiff failure we have not mapped yet: still an answer, not a trace
        return [Problem("bpmn_invalid", f"could not parse the recipe: {exc.__class__.__name__}: {exc}")]
    return []
