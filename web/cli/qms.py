"""``batchline subscribers`` (event subscribers: webhooks and QMS, configured without
code) and ``batchline qms-demo`` (the demo QMS in its own process).

A subscriber's secret is never an argument (arguments show in ``ps``): it is read from
``$BATCHLINE_SUBSCRIBER_SECRET`` when set, else generated, and printed once. An MQTT
subscriber's broker password likewise comes from ``$BATCHLINE_MQTT_PASSWORD`` only, and
is never printed."""

from __future__ import annotations

import os

import click

from .acting import acting, by_option
from .context import runtime
from .output import json_option, show
from .root import main

SECRET_ENV = "BATCHLINE_SUBSCRIBER_SECRET"
PASSWORD_ENV = "BATCHLINE_MQTT_PASSWORD"
FIELDS = ["id", "name", "kind", "enabled", "url", "topic_prefix", "event_types", "created_by", "created_at"]


def _admin(by: str | None) -> str:
    from engine.errors import BatchlineError

    if not by:
        raise BatchlineError("say which administrator is acting: --by USER (or $BATCHLINE_USER)", code="auth_required")
    return acting(by, "subscriber.manage").username


@main.group()
def subscribers():
    """Event subscribers (webhooks, QMS, MQTT): URL, secret or broker account, event types."""


@subscribers.command("add")
@click.argument("name")
@click.option("--url", required=True, help="Where events go: http(s) URL, or mqtt://host:port / mqtts://host:port.")
@click.option("--events", required=True, help="Comma-separated event types, globs allowed (e.g. qms.*).")
@click.option("--kind", type=click.Choice(["webhook", "qms", "mqtt"]), default="webhook", show_default=True)
@click.option("--topic-prefix", default=None, help="mqtt: topic levels events go under (e.g. plant1/batchline).")
@click.option("--username", default=None, help=f"mqtt: broker account (its password: ${PASSWORD_ENV}).")
@by_option
@json_option
def subscribers_add(name, url, events, kind, topic_prefix, username, by):
    """Add NAME. A webhook's secret is $BATCHLINE_SUBSCRIBER_SECRET or generated, printed
    once; an MQTT broker password is read from $BATCHLINE_MQTT_PASSWORD, never printed."""
    from engine.qms import subscribers as subs

    actor = _admin(by)
    mqtt = kind == "mqtt"
    out, _ = subs.add(
        runtime(),
        name=name,
        url=url,
        event_types=[e.strip() for e in events.split(",") if e.strip()],
        kind=kind,
        secret=None if mqtt else os.environ.get(SECRET_ENV) or None,
        topic_prefix=topic_prefix,
        username=username,
        password=os.environ.get(PASSWORD_ENV) or None if mqtt else None,
        by=actor,
    )
    if mqtt:
        show(out, [*FIELDS, "username", "password_set"])
    else:
        show(out, [*FIELDS, "secret"])
        click.echo("the secret is shown this once; give it to the receiver now", err=True)


@subscribers.command("change")
@click.argument("name")
@click.option("--url", default=None, help="A new URL (same kind: http(s), or mqtt:// / mqtts://).")
@click.option("--events", default=None, help="New comma-separated event types.")
@click.option("--topic-prefix", default=None, help="mqtt: a new topic prefix.")
@click.option("--username", default=None, help=f"mqtt: a new broker account (password: ${PASSWORD_ENV}).")
@click.option("--enable", "enabled", flag_value=True, default=None, help="Enable it again.")
@by_option
@json_option
def subscribers_change(name, url, events, topic_prefix, username, enabled, by):
    """Change NAME (each change audited). For mqtt, a set $BATCHLINE_MQTT_PASSWORD
    becomes the new broker password."""
    from engine.qms import subscribers as subs

    actor = _admin(by)
    out = subs.change(
        runtime(),
        name,
        by=actor,
        url=url,
        event_types=[e.strip() for e in events.split(",") if e.strip()] if events is not None else None,
        topic_prefix=topic_prefix,
        username=username,
        enabled=enabled,
        password=os.environ.get(PASSWORD_ENV) or None,
    )
    show(out, [*FIELDS, "username", "password_set"])


@subscribers.command("list")
@by_option
@json_option
def subscribers_list(by):
    """Every subscriber, enabled or not (never a secret)."""
    from engine.qms import subscribers as subs

    _admin(by)
    show(subs.list_subscribers(runtime()), FIELDS)


@subscribers.command("disable")
@click.argument("name")
@by_option
@json_option
def subscribers_disable(name, by):
    """Disable NAME (never deleted; nothing more is sent to it)."""
    from engine.qms import subscribers as subs

    show(subs.disable(runtime(), name, by=_admin(by)), FIELDS)


@main.command("qms-demo")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option(
    "--batchline",
    "batchline_url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="Batchline's base URL, for the callbacks.",
)
@click.option(
    "--secret",
    envvar="BATCHLINE_QMS_SECRET",
    required=True,
    help="The QMS subscriber's secret (env: BATCHLINE_QMS_SECRET).",
)
@click.option("--state", default="qms-demo.sqlite", show_default=True, help="State file (numbers, callbacks owed).")
@click.option(
    "--auto-close-after",
    type=click.FloatRange(0),
    default=None,
    help="Close each deviation this many seconds after it opened, with a CAPA reference.",
)
@json_option
def qms_demo(port, batchline_url, secret, state, auto_close_after):
    """Run the demo QMS (its own HTTP server; Ctrl-C stops it)."""
    from integrations import qms_demo as demo

    demo.run(port=port, batchline=batchline_url, secret=secret, state=state, auto_close_after=auto_close_after)
