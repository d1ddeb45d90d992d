"""Form definitions: load a form-js JSON schema and check it is one Batchline can enforce.

Kept so that ``forms.definition.X`` keeps working; the code lives in one module per job:

- `forms.form`: what a checked form is (`FormDefinition`, `FieldDefinition`, `Option`,
  `Instructions`, `GroupHeading`, `FormDefinitionError`) and the JSON it is stored as
  (`parse_source`, `definition_hash`);
- `forms.loading`: `load_form`, walking the form-js components and form-wide checks;
- `forms.field_settings`: reading one input field's Batchline settings;
- `forms.limits`: what hard, action and alert limits mean;
- `forms.vocabulary`: component types, field kinds, properties, signature meanings, caps.
"""

from __future__ import annotations

from forms.form import (
    FieldDefinition,
    FormDefinition,
    FormDefinitionError,
    GroupHeading,
    Instructions,
    JsonSource,
    Option,
    definition_hash,
    parse_source,
)
from forms.loading import load_form
from forms.vocabulary import (
    ATTACHMENT_MAX_SIZE_CAP,
    CONTENT_TYPE_PATTERN,
    DEFAULT_ATTACHMENT_MAX_SIZE,
    DEFAULT_SIGNATURE_MEANING,
    FIELD_KINDS,
    FORM_ID_PATTERN,
    IDENTIFIER_MAX_LENGTH,
    INPUT_TYPES,
    KEY_PATTERN,
    KNOWN_PROPERTIES,
    LIMIT_NAMES,
    MAX_DECIMALS,
    MAX_GROUP_DEPTH,
    SIGNATURE_MEANINGS,
    STATIC_TYPES,
    SUPPORTED_TYPES,
    TEXTAREA_MAX_LENGTH,
    TEXTFIELD_MAX_LENGTH,
)

__all__ = [
    "ATTACHMENT_MAX_SIZE_CAP",
    "CONTENT_TYPE_PATTERN",
    "DEFAULT_ATTACHMENT_MAX_SIZE",
    "DEFAULT_SIGNATURE_MEANING",
    "FIELD_KINDS",
    "FORM_ID_PATTERN",
    "IDENTIFIER_MAX_LENGTH",
    "INPUT_TYPES",
    "KEY_PATTERN",
    "KNOWN_PROPERTIES",
    "LIMIT_NAMES",
    "MAX_DECIMALS",
    "MAX_GROUP_DEPTH",
    "SIGNATURE_MEANINGS",
    "STATIC_TYPES",
    "SUPPORTED_TYPES",
    "TEXTAREA_MAX_LENGTH",
    "TEXTFIELD_MAX_LENGTH",
    "FieldDefinition",
    "FormDefinition",
    "FormDefinitionError",
    "GroupHeading",
    "Instructions",
    "JsonSource",
    "Option",
    "definition_hash",
    "load_form",
    "parse_source",
]
