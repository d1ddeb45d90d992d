"""Reading recipe XML safely: recipe files come from designers' browsers and from other
sites, so DTDs and entities are refused (no external entities, no entity bombs), the
network is never used and the size is capped — before Spiff sees anything."""

from __future__ import annotations

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from lxml import etree

from engine.errors import Problem, XmlRefused

MAX_BPMN_BYTES = 5 * 1024 * 1024
BPMN_NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}


def parse_xml(filename: str, data: bytes | str, *, max_bytes: int = MAX_BPMN_BYTES) -> etree._Element:
    """Plain XML only: no DOCTYPE (so no external entities, no entity bombs), no network, size-capped
    (``max_bytes``: a BatchML export embedding several BPMN files may be larger than one file)."""
    if isinstance(data, str):
        data = data.encode("utf-8")

    def refused(code: str, message: str) -> XmlRefused:
        return XmlRefused([Problem(code, message, file=filename)])

    if len(data) > max_bytes:
        raise refused("xml_too_large", f"file is larger than {max_bytes // (1024 * 1024)} MB")
    try:  # expat via defusedxml stops at the DOCTYPE, before any entity is expanded
        DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise refused(
            "xml_doctype",
            "DOCTYPE declarations are not allowed in recipe files "
            "(they enable external-entity and entity-expansion attacks)",
        ) from None
    except (EntitiesForbidden, ExternalReferenceForbidden, DefusedXmlException) as exc:
        raise refused("xml_entities", f"XML entities are not allowed in recipe files ({exc})") from None
    except DefusedET.ParseError as exc:
        raise refused("xml_malformed", f"not well-formed XML: {exc}") from None
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise refused("xml_malformed", f"not well-formed XML: {exc}") from None
