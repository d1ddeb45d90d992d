"""Errors a Batchline user can meet: each carries a stable `code`, a readable
`message` and machine-readable `details`, so the API and the CLI can show them
without knowing every exception type."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class BatchlineError(Exception):
    """Base of every error meant for a user; `code` never changes once published."""

    code = "batchline_error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe, located so the designer can find it."""

    code: str
    message: str
    element_id: str | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                f"element {self.element_id}" if self.element_id else "",
                f"file {self.file}" if self.file else "",
                f"line {self.line}" if self.line else "",
            )
            if part
        )
        return f"{self.message} ({where})" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecipeInvalid(BatchlineError):
    """The recipe's BPMN cannot be run; `problems` lists every reason found."""

    code = "recipe_invalid"

    def __init__(self, problems: list[Problem], message: str | None = None):
        self.problems = list(problems)
        text = message or "; ".join(str(p) for p in self.problems) or "recipe is invalid"
        super().__init__(text, details={"problems": [p.to_dict() for p in self.problems]})


class XmlRefused(RecipeInvalid):
    """The file is not plain XML we are willing to parse (DTD, entities, too large)."""

    code = "xml_refused"


class ScriptRefused(BatchlineError):
    """A BPMN script or expression uses something the restricted environment forbids."""

    code = "script_refused"


# --- errors of running batches (HTTP status in `status`) -----------------------------


class NotFound(BatchlineError):
    code = "not_found"
    status = 404


class Conflict(BatchlineError):
    """The request is valid but the batch is not in a state that allows it."""

    code = "conflict"
    status = 409


class InvalidInput(BatchlineError):
    code = "invalid_input"
    status = 422


class EngineFault(BatchlineError):
    """The workflow engine failed while running a recipe's own logic (a runaway model,
    a script error): the step is not stored, the batch is unchanged."""

    code = "engine_fault"
    status = 422
