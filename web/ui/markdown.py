"""Instructions in the browser: a small, safe markdown subset rendered to HTML.

Recipe authors write instructions in markdown (form-js ``text`` components, BPMN
``instructionsForEndUser``). The text is ESCAPED FIRST, then a few constructs are turned
into tags we write ourselves, so no HTML typed by an author (or pasted from elsewhere)
ever reaches the page as markup. Supported: ``#``–``###`` headings, paragraphs, ``-``/``*``
and ``1.`` lists, ``**bold**``, ``*italic*``/``_italic_``, ```code```, links
``[text](https://…)`` and images ``![alt](https://…)``. Links and images must be absolute
http(s) URLs; anything else (``javascript:``, ``data:``, relative paths) stays plain text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_SAFE_URL = re.compile(r"^https?://[^\s<>\"'`]+$", re.IGNORECASE)
_CODE = re.compile(r"`([^`\n]+)`")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])[*_](?=\S)(.+?)(?<=\S)[*_](?![\w*])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+(.*)$")
_SLOT = "\x00{}\x00"


def _inline(escaped: str) -> str:
    """Inline markup over text that is already HTML-escaped."""
    slots: list[str] = []

    def keep(html: str) -> str:
        slots.append(html)
        return _SLOT.format(len(slots) - 1)

    text = _CODE.sub(lambda m: keep(f"<code>{m.group(1)}</code>"), escaped)

    def image(m: re.Match) -> str:
        alt, url = m.group(1), m.group(2)
        if not _SAFE_URL.match(url):
            return m.group(0)
        return keep(f'<img src="{url}" alt="{alt}" loading="lazy">')

    def link(m: re.Match) -> str:
        label, url = m.group(1), m.group(2)
        if not _SAFE_URL.match(url):
            return m.group(0)
        return keep(f'<a href="{url}" rel="noopener noreferrer" target="_blank">{label}</a>')

    text = _IMAGE.sub(image, text)
    text = _LINK.sub(link, text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    text = _ITALIC.sub(r"<em>\1</em>", text)
    for _ in range(3):  # slots may sit inside other slots (a link inside bold text)
        text = re.sub("\x00(\\d+)\x00", lambda m: slots[int(m.group(1))], text)
    return text


def render_markdown(source: str | None) -> Markup:
    """Markdown text -> safe HTML (``Markup``) for a Jinja template."""
    if not source:
        return Markup("")
    # Escape everything first; the only tags in the output are the ones added below.
    # NUL is our placeholder marker, so it may not come from the text itself.
    lines = str(escape(str(source).replace("\x00", ""))).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    paragraph: list[str] = []
    list_tag: str | None = None

    def end_paragraph() -> None:
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(p) for p in paragraph) + "</p>")
            paragraph.clear()

    def end_list() -> None:
        nonlocal list_tag
        if list_tag:
            out.append(f"</{list_tag}>")
            list_tag = None

    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            end_paragraph()
            end_list()
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.match(line)
        numbered = _NUMBERED.match(line)
        if heading:
            end_paragraph()
            end_list()
            # h1/h2 belong to the page; instructions start at h3
            level = min(len(heading.group(1)) + 2, 6)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            end_paragraph()
            tag = "ul" if bullet else "ol"
            if list_tag != tag:
                end_list()
                out.append(f"<{tag}>")
                list_tag = tag
            out.append(f"<li>{_inline((bullet or numbered).group(1))}</li>")
        elif list_tag and raw.startswith((" ", "\t")):
            # a continuation line of the last list item
            out[-1] = out[-1][: -len("</li>")] + " " + _inline(line.strip()) + "</li>"
        else:
            end_list()
            paragraph.append(line.strip())
    end_paragraph()
    end_list()
    return Markup("\n".join(out))
