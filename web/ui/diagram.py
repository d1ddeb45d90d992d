"""The batch's BPMN for the bpmn-js viewer: which file to show first, and which elements
are done and current (everything else is pending)."""

from __future__ import annotations

import html
import re
from typing import Any


def _defines_process(xml: str, process_id: str) -> bool:
    pattern = r"<(?:[\w.-]+:)?process\b[^>]*\bid=[\"']" + re.escape(process_id) + r"[\"']"
    return re.search(pattern, xml) is not None


def _has_diagram(xml: str) -> bool:
    return re.search(r"<(?:[\w.-]+:)?BPMNDiagram\b", xml) is not None


_PROCESS = re.compile(r"<(?:[\w.-]+:)?process\b([^>]*)>")
_ATTR = re.compile(r"\b(id|name)=[\"']([^\"']*)[\"']")


def process_label(xml: str, process_id: str, file_name: str) -> str:
    """A file's tab label: the name of the process it defines (the recipe's own process
    first), as authors wrote it in the BPMN — not the file name nor the process id."""
    found = []
    for match in _PROCESS.finditer(xml):
        attrs = dict(_ATTR.findall(match.group(1)))
        found.append((attrs.get("id") != process_id, attrs.get("name") or "", attrs.get("id") or ""))
    for _, name, pid in sorted(found):
        if name.strip():
            return html.unescape(name.strip())
        if pid:
            return pid.replace("_", " ")
    return file_name.rsplit(".", 1)[0].replace("_", " ")


def diagram_view(diagram: dict[str, Any]) -> dict[str, Any]:
    """``batches.diagram`` output -> the viewer's input: files (main process first)."""
    bpmn = diagram.get("bpmn") or {}
    process_id = diagram.get("process_id") or ""
    names = sorted(bpmn, key=lambda n: (not _defines_process(bpmn[n], process_id), n))
    return {
        "process_id": process_id,
        "files": [
            {
                "name": n,
                "label": process_label(bpmn[n], process_id, n),
                "xml": bpmn[n],
                "drawable": _has_diagram(bpmn[n]),
            }
            for n in names
        ],
        "done": list(dict.fromkeys(diagram.get("done") or [])),
        "current": list(dict.fromkeys(diagram.get("current") or [])),
    }
