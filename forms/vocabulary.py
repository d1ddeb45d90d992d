"""What a form definition may say in Batchline, and how much an operator may enter.

The form-js component types we can enforce on the server, the kinds of scanned or
uploaded field, the signature meanings, the names of the limits, the Batchline
properties each component may carry (see docs/forms.md for the convention), and the
caps on typed text, decimals, attachments and group nesting.
"""

from __future__ import annotations

import re

INPUT_TYPES = ("number", "textfield", "textarea", "select", "radio", "checkbox", "checklist", "datetime")
STATIC_TYPES = ("text", "group", "spacer", "separator")
SUPPORTED_TYPES = INPUT_TYPES + STATIC_TYPES

FIELD_KINDS = ("materialLot", "equipment", "attachment")
SIGNATURE_MEANINGS = ("Performed", "Verified", "Reviewed", "Approved", "Released", "Rejected")
DEFAULT_SIGNATURE_MEANING = "Performed"

LIMIT_NAMES = ("hardMin", "actionLow", "alertLow", "alertHigh", "actionHigh", "hardMax")

# Length caps for typed text. A definition may lower them (validate.maxLength) but not
# raise them: a batch record is not a document store.
TEXTFIELD_MAX_LENGTH = 1_000
TEXTAREA_MAX_LENGTH = 10_000
IDENTIFIER_MAX_LENGTH = 100  # material lot and equipment ids
DEFAULT_ATTACHMENT_MAX_SIZE = 50 * 1024 * 1024
ATTACHMENT_MAX_SIZE_CAP = 2 * 1024 * 1024 * 1024
MAX_DECIMALS = 12
MAX_GROUP_DEPTH = 8

KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
FORM_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
CONTENT_TYPE_PATTERN = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+\-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+\-]*)")

# Which Batchline properties a component may carry.
NUMBER_PROPERTIES = {"unit", "decimals", "calculation", *LIMIT_NAMES}
KIND_PROPERTIES = {
    #: ``quantityField``: the number field (with a unit) holding how much of the lot the
    #: step used; the step path records it as consumed (``engine.lot_movements``)
    "materialLot": {"material", "quantityField"},
    "equipment": {"equipmentClass"},
    "attachment": {"maxSize", "contentTypes"},
}
#: a text field whose value must equal a batch parameter (chain of identity: `coi_id`)
#: ``patternDescription``: the format of ``validate.pattern`` in the operator's words
#: ("the 10-digit SAP order number"), said when a value does not match
TEXT_PROPERTIES = {"matchesParameter", "patternDescription"}
FORM_PROPERTIES = ("signatureMeaning", "witnessRequired", "witnessRole")
COMMON_PROPERTIES = {"critical", *FORM_PROPERTIES}
KNOWN_PROPERTIES = (
    NUMBER_PROPERTIES
    | COMMON_PROPERTIES
    | {"fieldKind"}
    | TEXT_PROPERTIES
    | {name for names in KIND_PROPERTIES.values() for name in names}
)
