"""The batch record as PDF: WeasyPrint over the Jinja template ``record/record.html``.

Rendered with a Jinja environment of its own (the same template folder as the web
pages, the same ``utc`` filter), not Flask's: ``batchline batch export`` prints a record
without a web app or a request. The template shares the signature and exception markup
with the batch page (``record/_parts.html``).

Every page carries the batch id, the record's content hash and "Page N of M"; a batch
still running prints an "IN PROGRESS — not a released record" banner and watermark, so a
printout made for business continuity cannot pass for the released record.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _css_string(value: Any) -> Markup:
    """Text for a CSS string in the page's style sheet: anything but plain characters
    CSS-escaped (no quote, backslash or ``<`` can end the string or the style element)."""
    text = str(value if value is not None else "")
    out = "".join(c if c.isalnum() or c in " -_.:·" else f"\\{ord(c):06x}" for c in text)
    return Markup(out)


def _shown(value: Any) -> str:
    """A recorded value as text (an attachment by its file name and hash)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dict) and "sha256" in value:
        return f"{value.get('filename')} (SHA-256 {str(value.get('sha256'))[:12]}…)"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


@lru_cache(maxsize=1)
def environment() -> Environment:
    from ..ui.pages import _utc

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    env.filters["utc"] = _utc
    env.filters["css_string"] = _css_string
    env.filters["shown"] = _shown
    return env


def render_html(record: dict[str, Any], printed_by: str | None = None) -> str:
    return environment().get_template("record/record.html").render(record=record, printed_by=printed_by)


def render(record: dict[str, Any], printed_by: str | None = None) -> bytes:
    """The PDF of ``record`` (``engine.exports.build``)."""
    from weasyprint import HTML

    html = render_html(record, printed_by)
    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
