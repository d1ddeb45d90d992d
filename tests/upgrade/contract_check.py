"""Which operations of a migration's ``upgrade()`` an older release cannot live with
(the expand-then-contract policy, docs/operations.md "Upgrades").

Expand: new tables, new nullable columns or columns with a server default, new indexes,
data fixes. Contract: dropping or renaming a table or column, dropping a constraint,
changing a column's type, or making it NOT NULL without a server default — the previous
release's code would read or write what is gone. A migration may contract only when it
says so (``contract = True``) and names the release that shipped the expansion it
completes (``expanded_in = "x.y.z"``), a release already out: by then no node of the
release before it is left.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

CONTRACT_CALLS = {"drop_table", "drop_column", "rename_table", "drop_constraint"}
CONTRACT_SQL = re.compile(
    r"\b(DROP\s+TABLE|DROP\s+COLUMN|RENAME\s+(TO|COLUMN)|ALTER\s+COLUMN\s+\S+\s+(TYPE|SET\s+NOT\s+NULL)|"
    r"SET\s+DATA\s+TYPE)\b",
    re.IGNORECASE,
)


def _upgrade(tree: ast.Module) -> ast.FunctionDef | None:
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)


def _helpers(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name not in ("upgrade", "downgrade")}


def _reached(tree: ast.Module) -> list[ast.AST]:
    """``upgrade()`` and the module's helper functions it calls (transitively)."""
    helpers, start = _helpers(tree), _upgrade(tree)
    if start is None:
        return []
    seen, todo, out = set(), [start], []
    while todo:
        fn = todo.pop()
        out.append(fn)
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
                if node.func.id not in seen:
                    seen.add(node.func.id)
                    todo.append(helpers[node.func.id])
    return out


def _alter_problem(call: ast.Call) -> str | None:
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    if "type_" in kw:
        return "alter_column changes a column's type"
    if "new_column_name" in kw:
        return "alter_column renames a column"
    nullable = kw.get("nullable")
    if isinstance(nullable, ast.Constant) and nullable.value is False and "server_default" not in kw:
        return "alter_column makes a column NOT NULL without a server default"
    return None


def contract_operations(source: str) -> list[str]:
    """The contract operations in a migration's ``upgrade()`` (with line numbers)."""
    tree = ast.parse(source)
    found: list[str] = []
    for fn in _reached(tree):
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if name in CONTRACT_CALLS:
                    found.append(f"line {node.lineno}: {name}")
                elif name == "alter_column" and (problem := _alter_problem(node)):
                    found.append(f"line {node.lineno}: {problem}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and CONTRACT_SQL.search(node.value):
                found.append(f"line {node.lineno}: SQL {CONTRACT_SQL.search(node.value).group(0)!r}")
    return found


def declared(source: str) -> tuple[bool, str | None]:
    """The migration's ``contract`` and ``expanded_in`` module constants."""
    contract, expanded_in = False, None
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "contract" and isinstance(node.value, ast.Constant):
                contract = node.value.value is True
            elif name == "expanded_in" and isinstance(node.value, ast.Constant):
                expanded_in = str(node.value.value)
    return contract, expanded_in


def released_versions(changelog: Path) -> list[str]:
    """The versions CHANGELOG.md lists as released (``## [x.y.z] — date``)."""
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog.read_text(encoding="utf-8"), re.MULTILINE)


def problems(source: str, released: list[str]) -> list[str]:
    """Why this migration breaks the policy (empty: it does not)."""
    found = contract_operations(source)
    if not found:
        return []
    contract, expanded_in = declared(source)
    if not contract:
        return [f"{op} (a contract operation: declare contract = True and expanded_in = the release)" for op in found]
    if expanded_in not in released:
        return [f"contract = True but expanded_in = {expanded_in!r} is not a released version ({', '.join(released)})"]
    return []
