"""Fields the API's schemas share for what clients send: bounded integers, a recipe
named by key or id, a batch parameter's scalar value. Each documents its bounds in the
OpenAPI document, so a client (and schemathesis) sees the same limits the server keeps."""

from __future__ import annotations

from marshmallow import fields, validate

from ..input_limits import MAX_ID


class BoundedInt(fields.Integer):
    """An integer a client sends (an id, a version, a sequence number, a page size):
    within ``minimum``..``maximum`` (default ``MAX_ID``, the INTEGER columns' 2^31 - 1) so
    no database query overflows; the bounds are in the OpenAPI document. ``strict`` (the
    default) refuses 1.0 and "1"."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_ID, strict: bool = True, **kwargs):
        validators = [validate.Range(min=minimum, max=maximum)]
        extra = kwargs.pop("validate", None)
        if extra is not None:
            validators.extend(extra if isinstance(extra, list) else [extra])
        super().__init__(strict=strict, validate=validators, **kwargs)


class Scalar(fields.Raw):
    """A batch parameter's value: a string, a finite number, a boolean or null. Documented
    here; checked by the engine (``check_parameters``: 422 ``parameters_invalid``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_none", True)
        kwargs.setdefault(
            "metadata", {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}], "nullable": True}
        )
        super().__init__(**kwargs)


class RecipeRef(fields.Field):
    """A recipe named by its key (newest approved version) or by a recipe version id."""

    default_error_messages = {
        "invalid": "Not a recipe key (string) or recipe version id (integer).",
        "range": f"A recipe version id is between 1 and {MAX_ID}.",
        "length": "A recipe key has 1 to 200 characters.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.make_error("invalid")
        if isinstance(value, int) and not 1 <= value <= MAX_ID:
            raise self.make_error("range")
        if isinstance(value, str) and not 1 <= len(value) <= 200:
            raise self.make_error("length")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value
