"""Connector instances from a TOML file (``batchline connectors load connectors.toml``,
or at start-up from the ``connectors_file`` setting)::

    [connectors.lims]
    type = "lims-rest"
    endpoint = "https://lims.example.com/api/v1"
    timeout_seconds = 10
    secret_ref = "env:BATCHLINE_LIMS_SECRET"

    [connectors.lims.settings]
    site = "Basel"

Why a file: an integrator keeps a plant's connections under version control and applies
the same file on every server. Loading is idempotent: an instance that already matches
the file is left alone and nothing is audited; a difference is changed (and audited)
field by field. A file never holds a secret in clear (``secret`` is refused): it names a
reference (``env:NAME``, ``file:/path``); a secret set by API or CLI is left as it is when
the file gives no ``secret_ref``. Instances missing from the file are not touched
(disable them by API or CLI). Every entry is checked before anything is changed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from . import connector_config as cc
from .errors import InvalidInput
from .models import ConnectorInstance

MAX_FILE_BYTES = 1_000_000
MAX_INSTANCES = 500
KEYS = frozenset({"type", "endpoint", "timeout_seconds", "settings", "enabled", "secret_ref"})


def parse(rt, text: str, where: str = "the connectors file") -> dict[str, dict[str, Any]]:
    """name -> checked fields, or ``InvalidInput`` naming the entry and what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{where} is not valid TOML: {exc}", code="connectors_file_invalid") from None
    unknown = set(data) - {"connectors"}
    if unknown:
        raise InvalidInput(f"{where}: unknown table(s) {', '.join(sorted(unknown))}", code="connectors_file_invalid")
    entries = data.get("connectors", {})
    if not isinstance(entries, dict) or len(entries) > MAX_INSTANCES:
        raise InvalidInput(
            f"{where}: [connectors.NAME] tables, at most {MAX_INSTANCES}", code="connectors_file_invalid"
        )
    out = {}
    for name, entry in entries.items():
        label = f"{where}, connector {name!r}"
        try:
            cc.check_name(name)
            if not isinstance(entry, dict):
                raise InvalidInput("must be a table", code="connectors_file_invalid")
            if "secret" in entry:
                raise InvalidInput(
                    'a file holds no secret in clear: give secret_ref = "env:NAME" or "file:/path"',
                    code="secret_in_file",
                )
            extra = set(entry) - KEYS
            if extra:
                raise InvalidInput(f"unknown key(s) {', '.join(sorted(extra))}", code="connectors_file_invalid")
            type_ = cc.check_type(rt, entry.get("type"))
            if "endpoint" not in entry:
                raise InvalidInput("endpoint is required", code="endpoint_invalid")
            fields = {
                "type": type_,
                "endpoint": cc.check_endpoint(rt, type_, entry["endpoint"]),
                "timeout_seconds": cc.check_timeout(entry.get("timeout_seconds", 10.0)),
                "settings": cc.check_settings(entry.get("settings", {})),
                "enabled": cc.check_enabled(entry.get("enabled", True)),
            }
            if "secret_ref" in entry:
                fields["secret_ref"] = cc.check_secret_ref(entry["secret_ref"])
        except InvalidInput as exc:
            raise InvalidInput(f"{label}: {exc.message}", code=exc.code) from None
        out[name] = fields
    return out


def load(rt, path: str | Path, *, by: str) -> dict[str, list[str]]:
    """Apply a connectors file; answers the names added, changed and unchanged."""
    file = Path(path)
    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{file} is larger than {MAX_FILE_BYTES} bytes", code="connectors_file_invalid")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}", code="connectors_file_invalid"
        ) from None
    wanted = parse(rt, text, str(file))
    with rt.transaction() as s:
        existing = {name for name in wanted if s.get(ConnectorInstance, name) is not None}
    summary: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": []}
    for name, fields in wanted.items():
        if name not in existing:
            cc.add(rt, name=name, by=by, **fields)
            summary["added"].append(name)
            continue
        before = cc.get(rt, name)
        after = cc.update(rt, name, by=by, **fields)
        summary["changed" if after["updated_at"] != before["updated_at"] else "unchanged"].append(name)
    return summary
