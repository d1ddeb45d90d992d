"""``batchline connectors``: connector instances (the ERP, the LIMS, OPC UA servers a
service task calls by name), configured without code, by administrators.

A secret is never an argument (arguments show in ``ps``): it is read from
``$BATCHLINE_CONNECTOR_SECRET`` when ``--secret-from-env`` is given, or referenced with
``--secret-ref env:NAME`` / ``file:/path`` (resolved by the server when it calls). It is
never printed."""

from __future__ import annotations

import json
import os

import click

from engine.errors import BatchlineError

from .acting import acting, by_option
from .context import runtime
from .output import json_option, say, show
from .root import main

SECRET_ENV = "BATCHLINE_CONNECTOR_SECRET"
FIELDS = ["name", "type", "endpoint", "timeout_seconds", "enabled", "secret_set", "secret_ref", "updated_by"]


def _admin(by: str | None) -> str:
    if not by:
        raise BatchlineError("say which administrator is acting: --by USER (or $BATCHLINE_USER)", code="auth_required")
    return acting(by, "connector.manage").username


def _fields(endpoint, timeout, settings, secret_ref, secret_from_env) -> dict:
    out: dict = {}
    if endpoint is not None:
        out["endpoint"] = endpoint
    if timeout is not None:
        out["timeout_seconds"] = timeout
    if settings is not None:
        try:
            out["settings"] = json.loads(settings)
        except ValueError:
            raise BatchlineError(
                '--settings is a JSON object, e.g. \'{"site": "Basel"}\'', code="settings_invalid"
            ) from None
    if secret_ref is not None:
        out["secret_ref"] = secret_ref
    if secret_from_env:
        secret = os.environ.get(SECRET_ENV)
        if not secret:
            raise BatchlineError(f"--secret-from-env: ${SECRET_ENV} is not set", code="secret_invalid")
        out["secret"] = secret
    return out


endpoint_option = click.option("--endpoint", help="The other system's base URL (http(s):// or opc.tcp://).")
timeout_option = click.option("--timeout", type=float, help="Seconds each call may take (0.1 to 300).")
settings_option = click.option("--settings", help="Type-specific settings as a JSON object.")
secret_ref_option = click.option("--secret-ref", help="env:NAME or file:/path, read by the server when it calls.")
secret_env_option = click.option(
    "--secret-from-env", is_flag=True, help=f"Store ${SECRET_ENV} as the secret (encrypted; never shown)."
)


@main.group()
def connectors():
    """Connector instances: ERP, LIMS, equipment (name, type, endpoint, secret)."""


@connectors.command("list")
@by_option
@json_option
def connectors_list(by):
    """Every connector instance, enabled or not (never a secret)."""
    from engine import connector_config

    _admin(by)
    show(connector_config.list_instances(runtime()), FIELDS)


@connectors.command("add")
@click.argument("name")
@click.option("--type", "type_", required=True, help="The connector type (http, lims-rest, opcua, erp-b2mml…).")
@click.option("--endpoint", required=True, help="The other system's base URL.")
@timeout_option
@settings_option
@secret_ref_option
@secret_env_option
@by_option
@json_option
def connectors_add(name, type_, endpoint, timeout, settings, secret_ref, secret_from_env, by):
    """Add NAME (what service tasks call as NAME.operation)."""
    from engine import connector_config

    actor = _admin(by)
    fields = _fields(endpoint, timeout, settings, secret_ref, secret_from_env)
    show(connector_config.add(runtime(), name=name, type=type_, by=actor, **fields), FIELDS)


@connectors.command("update")
@click.argument("name")
@click.option("--type", "type_", help="A new connector type.")
@endpoint_option
@timeout_option
@settings_option
@secret_ref_option
@secret_env_option
@click.option("--clear-secret", is_flag=True, help="Remove the secret or its reference.")
@by_option
@json_option
def connectors_update(name, type_, endpoint, timeout, settings, secret_ref, secret_from_env, clear_secret, by):
    """Change NAME (each changed field audited)."""
    from engine import connector_config

    actor = _admin(by)
    fields = _fields(endpoint, timeout, settings, secret_ref, secret_from_env)
    if type_ is not None:
        fields["type"] = type_
    show(connector_config.update(runtime(), name, by=actor, clear_secret=clear_secret, **fields), FIELDS)


@connectors.command("disable")
@click.argument("name")
@by_option
@json_option
def connectors_disable(name, by):
    """Disable NAME (never deleted; a task calling it raises an incident naming it)."""
    from engine import connector_config

    show(connector_config.disable(runtime(), name, by=_admin(by)), FIELDS)


@connectors.command("enable")
@click.argument("name")
@by_option
@json_option
def connectors_enable(name, by):
    """Enable NAME again."""
    from engine import connector_config

    show(connector_config.enable(runtime(), name, by=_admin(by)), FIELDS)


@connectors.command("test")
@click.argument("name")
@by_option
@json_option
def connectors_test(name, by):
    """A dry connection check of NAME, when its type offers one."""
    from engine import connector_config

    _admin(by)
    show(connector_config.check_connection(runtime(), name))


@connectors.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@by_option
@json_option
def connectors_load(file, by):
    """Apply a TOML file of connector instances (idempotent: docs/connectors.md)."""
    from engine import connector_file

    summary = connector_file.load(runtime(), file, by=_admin(by))
    say(
        f"added {len(summary['added'])}, changed {len(summary['changed'])}, unchanged {len(summary['unchanged'])}",
        summary,
    )
