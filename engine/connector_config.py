"""Connector instances as configuration: the name a service task uses (``lims`` in
``lims.sample_request``), its type, its endpoint, its timeout, free settings and how it
signs in — added, changed, enabled and disabled by API, CLI or a TOML file
(``engine.connector_file``), never deleted, every change audited.

Why here and not in the recipe: a recipe is approved once and runs in every plant; the
LIMS's address and password differ per plant and change without a new recipe version.

The secret is either given (stored Fernet-encrypted under ``connectors.key``,
``engine.secret_store``) or a reference resolved when the connector is built:
``env:NAME`` (an environment variable of the server) or ``file:/path`` (a file only the
server reads). It is never returned, logged or audited: the trail says ``secret set``.
Error messages name the reference (``env:LIMS_TOKEN``), never what it holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from . import audit
from .connectors import ConnectorConfig, ConnectorError
from .errors import Conflict, InvalidInput, NotFound
from .models import ConnectorInstance, utcnow
from .secret_store import SecretBox

KEY_FILE = "connectors.key"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")
_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,49}")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")
MIN_TIMEOUT, MAX_TIMEOUT = 0.1, 300.0
MAX_SETTINGS_BYTES = 16_384
MAX_SECRET = 4096
#: URL schemes a type's endpoint may have, when its factory does not say (``endpoint_schemes``)
SCHEMES: dict[str, tuple[str, ...]] = {
    "http": ("http", "https"),
    "lims-rest": ("http", "https"),
    "erp-b2mml": ("http", "https"),
    "opcua": ("opc.tcp",),
}
DEFAULT_SCHEMES = ("http", "https", "opc.tcp")
FIELDS = ("type", "endpoint", "settings", "timeout_seconds", "enabled")


def _box(settings) -> SecretBox:
    return SecretBox(settings, file_name=KEY_FILE, purpose=b"batchline connector secrets v1")


# --- checks ---------------------------------------------------------------------------


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            "a connector name is 1 to 100 letters, digits, '_' or '-', starting with a letter "
            "(no '.': a service task calls NAME.operation)",
            code="connector_name_invalid",
        )
    return name


def check_type(rt, type_: Any) -> str:
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        raise InvalidInput("a connector type is lower-case letters, digits, '_' or '-'", code="connector_type_invalid")
    known = rt.connectors.type_names()
    if type_ not in known:
        raise InvalidInput(
            f"connector type {type_!r} is not installed (installed: {', '.join(known) or 'none'})",
            code="connector_type_unknown",
        )
    return type_


def schemes_of(rt, type_: str) -> tuple[str, ...]:
    factory = rt.connectors.type_factory(type_)
    return tuple(getattr(factory, "endpoint_schemes", None) or SCHEMES.get(type_, DEFAULT_SCHEMES))


def check_endpoint(rt, type_: str, endpoint: Any) -> str:
    """A URL of a scheme the type speaks, with a host and without a user or password
    (credentials belong in the secret, which is never shown)."""
    schemes = schemes_of(rt, type_)
    wanted = " or ".join(f"{s}://" for s in schemes)
    if not isinstance(endpoint, str) or not 1 <= len(endpoint) <= 500 or any(c.isspace() for c in endpoint):
        raise InvalidInput(f"the endpoint is a {wanted} URL of at most 500 characters", code="endpoint_invalid")
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput("the endpoint cannot be parsed as a URL", code="endpoint_invalid") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput(f"a {type_} connector's endpoint is a {wanted} URL with a host", code="endpoint_invalid")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "the endpoint must not hold a user or password: give it as the secret", code="endpoint_invalid"
        )
    return endpoint


def check_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput("timeout_seconds is a number", code="timeout_invalid")
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise InvalidInput(f"timeout_seconds is between {MIN_TIMEOUT} and {MAX_TIMEOUT:g}", code="timeout_invalid")
    return float(value)


def check_settings(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("settings is a JSON object", code="settings_invalid")
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidInput("settings holds only JSON values (finite numbers)", code="settings_invalid") from None
    if len(text.encode()) > MAX_SETTINGS_BYTES:
        raise InvalidInput(f"settings is at most {MAX_SETTINGS_BYTES} bytes as JSON", code="settings_invalid")
    return json.loads(text)


def check_secret(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_SECRET or "\x00" in value:
        raise InvalidInput(f"the secret is a text of 1 to {MAX_SECRET} characters", code="secret_invalid")
    return value


def check_secret_ref(value: Any) -> str:
    """``env:NAME`` or ``file:/absolute/path``."""
    if isinstance(value, str) and value.startswith("env:") and _ENV.fullmatch(value[4:]):
        return value
    if isinstance(value, str) and value.startswith("file:") and len(value) <= 300 and Path(value[5:]).is_absolute():
        if "\x00" not in value:
            return value
    raise InvalidInput("secret_ref is env:NAME or file:/absolute/path", code="secret_ref_invalid")


def check_enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("enabled is true or false", code="enabled_invalid")
    return value


# --- secrets --------------------------------------------------------------------------


def resolve_secret(row: ConnectorInstance, settings) -> str | None:
    """The secret in clear, in memory only; raises a non-retried ``ConnectorError`` naming
    the reference (never its content) when it cannot be read."""
    if row.secret_encrypted:
        try:
            return _box(settings).open(row.secret_encrypted)
        except Exception as exc:  # noqa: BLE001 - an unreadable secret is a configuration error
            raise ConnectorError(f"connector {row.name!r}: {exc}", retry=False) from None
    ref = row.secret_ref
    if not ref:
        return None
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise ConnectorError(f"connector {row.name!r}: secret reference {ref} is not set", retry=False)
        return value
    path = ref[5:]
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConnectorError(
            f"connector {row.name!r}: secret reference {ref} cannot be read ({exc.strerror or type(exc).__name__})",
            retry=False,
        ) from None


def config_of(row: ConnectorInstance, settings) -> ConnectorConfig:
    return ConnectorConfig(
        name=row.name,
        type=row.type,
        endpoint=row.endpoint,
        settings=dict(row.settings or {}),
        secret=resolve_secret(row, settings),
        timeout_seconds=float(row.timeout_seconds),
    )


def version_of(row: ConnectorInstance, secret: str | None) -> tuple[Any, ...]:
    """What makes a built connector stale: the row changed, or the secret a reference
    points to changed (a rotated token)."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""
    return (row.type, row.endpoint, json.dumps(row.settings, sort_keys=True), row.timeout_seconds, digest)


# --- reading and changing -------------------------------------------------------------


def describe(row: ConnectorInstance) -> dict[str, Any]:
    """The public view: never the secret, only whether one is set (or which reference)."""
    return {
        "name": row.name,
        "type": row.type,
        "endpoint": row.endpoint,
        "settings": dict(row.settings or {}),
        "timeout_seconds": row.timeout_seconds,
        "enabled": row.enabled,
        "secret_set": bool(row.secret_encrypted or row.secret_ref),
        "secret_ref": row.secret_ref,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "updated_by": row.updated_by,
    }


def _find(s, name: str) -> ConnectorInstance:
    row = s.get(ConnectorInstance, name) if isinstance(name, str) and len(name) <= 100 else None
    if row is None:
        raise NotFound(f"connector {str(name)[:100]!r} not found", code="connector_not_found")
    return row


def list_instances(rt) -> list[dict[str, Any]]:
    with rt.transaction() as s:
        return [describe(r) for r in s.scalars(select(ConnectorInstance).order_by(ConnectorInstance.name))]


def get(rt, name: str) -> dict[str, Any]:
    with rt.transaction() as s:
        return describe(_find(s, name))


def _checked(rt, fields: dict[str, Any], type_: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "endpoint" in fields:
        out["endpoint"] = check_endpoint(rt, type_, fields["endpoint"])
    if "settings" in fields:
        out["settings"] = check_settings(fields["settings"])
    if "timeout_seconds" in fields:
        out["timeout_seconds"] = check_timeout(fields["timeout_seconds"])
    if "enabled" in fields:
        out["enabled"] = check_enabled(fields["enabled"])
    if fields.get("secret") is not None and fields.get("secret_ref") is not None:
        raise InvalidInput("give the secret or a secret_ref, not both", code="secret_invalid")
    if fields.get("secret") is not None:
        out["secret"] = check_secret(fields["secret"])
    if fields.get("secret_ref") is not None:
        out["secret_ref"] = check_secret_ref(fields["secret_ref"])
    return out


def add(rt, *, name: str, type: str, by: str, **fields: Any) -> dict[str, Any]:
    """Add an instance (``endpoint`` required; ``settings``, ``timeout_seconds``,
    ``enabled``, ``secret`` or ``secret_ref`` optional). Audited, the secret as ``secret set``."""
    check_name(name)
    check_type(rt, type)
    if "endpoint" not in fields:
        raise InvalidInput("the endpoint is required", code="endpoint_invalid")
    values = _checked(rt, fields, type)
    with rt.transaction() as s:
        if s.get(ConnectorInstance, name) is not None:
            raise Conflict(f"a connector named {name} exists", code="connector_exists")
        now = utcnow()
        row = ConnectorInstance(
            name=name,
            type=type,
            endpoint=values["endpoint"],
            settings=values.get("settings", {}),
            timeout_seconds=values.get("timeout_seconds", 10.0),
            enabled=values.get("enabled", True),
            secret_encrypted=_box(rt.settings).seal(values["secret"]) if "secret" in values else None,
            secret_ref=values.get("secret_ref"),
            created_at=now,
            updated_at=now,
            updated_by=by,
        )
        s.add(row)
        s.flush()
        shown = {k: v for k, v in describe(row).items() if k in FIELDS}
        if row.secret_encrypted:
            shown["secret"] = "secret set"
        if row.secret_ref:
            shown["secret_ref"] = row.secret_ref
        audit.record(s, user=by, action="connector.added", object_type="connector", object_id=name, new=shown)
        out = describe(row)
    rt.connectors.invalidate()
    return out


def update(rt, name: str, *, by: str, clear_secret: bool = False, **fields: Any) -> dict[str, Any]:
    """Change what is given (audited field by field; unchanged fields audit nothing).
    ``type`` may change too (the endpoint is then checked against the new type)."""
    with rt.transaction() as s:
        row = _find(s, name)
        type_ = check_type(rt, fields["type"]) if fields.get("type") is not None else row.type
        values = _checked(rt, {k: v for k, v in fields.items() if v is not None}, type_)
        if type_ != row.type and "endpoint" not in values:
            check_endpoint(rt, type_, row.endpoint)
        changed = False

        def note(field: str, old: Any, new: Any) -> None:
            nonlocal changed
            changed = True
            audit.record(
                s,
                user=by,
                action="connector.changed",
                object_type="connector",
                object_id=row.name,
                field=field,
                old=old,
                new=new,
            )

        if type_ != row.type:
            note("type", row.type, type_)
            row.type = type_
        for field in ("endpoint", "settings", "timeout_seconds", "enabled"):
            if field in values and getattr(row, field) != values[field]:
                note(field, getattr(row, field), values[field])
                setattr(row, field, values[field])
        if "secret" in values:
            note("secret", "secret set" if row.secret_encrypted else None, "secret set")
            row.secret_encrypted, row.secret_ref = _box(rt.settings).seal(values["secret"]), None
        elif "secret_ref" in values and (values["secret_ref"] != row.secret_ref or row.secret_encrypted):
            note("secret_ref", row.secret_ref, values["secret_ref"])
            row.secret_encrypted, row.secret_ref = None, values["secret_ref"]
        elif clear_secret and (row.secret_encrypted or row.secret_ref):
            note("secret", "secret set", "secret cleared")
            row.secret_encrypted, row.secret_ref = None, None
        if changed:
            row.updated_at = utcnow()
            row.updated_by = by
        s.flush()
        out = describe(row)
    if changed:
        rt.connectors.invalidate()
    return out


def disable(rt, name: str, *, by: str) -> dict[str, Any]:
    """Disable, never delete: a service task calling it raises an incident naming it."""
    return update(rt, name, by=by, enabled=False)


def enable(rt, name: str, *, by: str) -> dict[str, Any]:
    return update(rt, name, by=by, enabled=True)


def check_connection(rt, name: str) -> dict[str, Any]:
    """A dry connection check, when the type offers one (``check()``): ``{ok, message}``.
    Nothing is sent that acts in the other system."""
    with rt.transaction() as s:
        row = _find(s, name)
        if not row.enabled:
            return {"name": name, "ok": False, "message": f"connector {name!r} is disabled"}
    try:
        connector = rt.connectors.get(name + ".check")
        check = getattr(connector, "check", None)
        if check is None:
            return {"name": name, "ok": None, "message": "this connector type offers no connection check"}
        message = check()
    except ConnectorError as exc:
        return {"name": name, "ok": False, "message": str(exc)}
    return {"name": name, "ok": True, "message": str(message or "reachable")}
