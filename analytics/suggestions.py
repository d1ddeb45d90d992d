"""Suggesting library components while QA drafts an operation: "this looks like the
template you already have" — so a site reuses its qualified operation templates instead
of drawing a near-copy that then has to be reviewed, validated and maintained twice.

How similarity is measured: each component becomes a bag of tokens — its structure
(BPMN element types and which type follows which along the sequence flows), the words
of its element names, its service operations, and its form fields (keys, labels, types,
units). scikit-learn's TF-IDF weighs them (a start event says little, ``viable cell
density`` says a lot) and the cosine similarity of the draft to each template ranks
them. A score is between 0 and 1; at or above ``THRESHOLD`` a template is suggested.

The library is read once per process (``workflows.library()``, templates only) and the
vectorizer fitted on it; drafts are parsed with the same refusal of DTDs and entities as
recipes (``engine.bpmn.safe_xml``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.bpmn.safe_xml import parse_xml

BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
#: a template this similar (cosine of TF-IDF vectors) or more is suggested
THRESHOLD = 0.4
MAX_RESULTS = 5
_WORD = re.compile(r"[a-z][a-z0-9]+")
_SKIP = {"definitions", "process", "documentation", "extensionElements", "incoming", "outgoing", "sequenceFlow"}
_STOP = {"the", "and", "for", "of", "to", "in", "on", "a", "an", "or", "with", "from", "by", "at", "is", "be"}


@dataclass(frozen=True)
class Suggestion:
    key: str
    title: str
    score: float
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.key,
            "title": self.title,
            "score": round(self.score, 4),
            "description": self.description,
        }


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _words(text: str | None) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text or "").replace("_", " ").lower()
    return [w for w in _WORD.findall(spaced) if w not in _STOP]


def bpmn_tokens(files: dict[str, bytes | str]) -> list[str]:
    """Structure and name tokens of BPMN files (parsed safely; hostile XML is refused)."""
    tokens: list[str] = []
    for name, data in sorted(files.items()):
        root = parse_xml(name, data)
        for proc in root.iter(f"{BPMN}process"):
            types: dict[str, str] = {}
            for node in proc.iter():
                kind = _local(node.tag)
                if not kind or node.getparent() is None or kind in _SKIP or node.tag.startswith(SPIFF):
                    continue
                if not node.tag.startswith(BPMN):
                    continue
                types[node.get("id") or ""] = kind
                tokens.append(f"type:{kind}")
                tokens += [f"name:{w}" for w in _words(node.get("name"))]
            for op in proc.iter(f"{SPIFF}serviceTaskOperator"):
                tokens.append(f"operation:{op.get('id')}")
                tokens += [f"name:{w}" for w in _words(op.get("id"))]
            for flow in proc.iter(f"{BPMN}sequenceFlow"):
                a, b = types.get(flow.get("sourceRef") or ""), types.get(flow.get("targetRef") or "")
                if a and b:
                    tokens.append(f"flow:{a}>{b}")
    return tokens


def _components(items: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out.append(item)
            out += _components(item.get("components"))
    return out


def form_tokens(forms: dict[str, Any]) -> list[str]:
    """Field tokens of form-js forms: keys, labels, types and units."""
    tokens: list[str] = []
    for form in forms.values() if isinstance(forms, dict) else []:
        for field in _components(form.get("components") if isinstance(form, dict) else None):
            if not field.get("key"):
                continue
            tokens.append(f"fieldtype:{field.get('type')}")
            tokens += [f"field:{w}" for w in _words(str(field.get("key")))]
            tokens += [f"label:{w}" for w in _words(str(field.get("label") or ""))]
            props = field.get("properties") if isinstance(field.get("properties"), dict) else {}
            for prop in ("unit", "fieldKind", "equipmentClass", "material"):
                if props.get(prop):
                    tokens.append(f"{prop}:{str(props[prop]).lower()}")
    return tokens


def tokens_of(files: dict[str, bytes | str], forms: dict[str, Any]) -> list[str]:
    return bpmn_tokens(files) + form_tokens(forms)


@lru_cache(maxsize=1)
def _index():
    """(templates, fitted vectorizer, template matrix) of the library, built once."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    import workflows

    templates = [e for e in workflows.library() if e.kind == "template"]
    vectorizer = TfidfVectorizer(analyzer=lambda tokens: tokens, sublinear_tf=True)
    matrix = vectorizer.fit_transform([tokens_of(dict(e.files), dict(e.forms)) for e in templates])
    return templates, vectorizer, matrix


def rank(files: dict[str, bytes | str], forms: dict[str, Any] | None = None) -> list[Suggestion]:
    """Every library template, most similar to the draft first."""
    from sklearn.metrics.pairwise import cosine_similarity

    templates, vectorizer, matrix = _index()
    if not templates:
        return []
    draft = vectorizer.transform([tokens_of(files, forms or {})])
    scores = cosine_similarity(draft, matrix)[0]
    ranked = sorted(zip(templates, scores, strict=True), key=lambda pair: (-pair[1], pair[0].key))
    return [Suggestion(e.key, e.title, float(score), e.description) for e, score in ranked]


def suggest(
    files: dict[str, bytes | str], forms: dict[str, Any] | None = None, *, limit: int = MAX_RESULTS
) -> list[Suggestion]:
    """The templates similar enough to suggest (score ≥ ``THRESHOLD``), best first."""
    return [s for s in rank(files, forms) if s.score >= THRESHOLD][:limit]
