"""The rules a subscriber's fields follow, one set for API and CLI (the API's schemas
only document them). Each refusal names the field and what it should be, with a code.

Why so strict on MQTT topics: the prefix becomes the first levels of every topic
Batchline publishes to. A ``+`` or ``#`` there is a wildcard (brokers refuse to publish
to it), a leading ``$`` is the broker's own namespace, an empty level (``a//b``) or a
leading or trailing ``/`` makes topics that no ordinary subscription matches.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput

KINDS = ("webhook", "qms", "mqtt")
MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}
MAX_EVENT_TYPES = 50
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_EVENT_TYPE = re.compile(r"[A-Za-z0-9_.*-]{1,200}")
_TOPIC_LEVEL = r"[A-Za-z0-9_.-]+"
_TOPIC_PREFIX = re.compile(rf"{_TOPIC_LEVEL}(/{_TOPIC_LEVEL}){{0,15}}")
_USERNAME = re.compile(r"[^\x00-\x20\x7f]{1,200}")


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            "the name is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit",
            code="subscriber_name_invalid",
        )
    return name


def _split(url: Any, what: str) -> Any:
    if not isinstance(url, str) or not 1 <= len(url) <= 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"the URL is {what} of at most 2000 characters", code="subscriber_url_invalid")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput(
            "the URL cannot be parsed (is the port a number from 0 to 65535?)", code="subscriber_url_invalid"
        ) from None
    return parts


def check_url(url: Any) -> str:
    """http(s) with a host, no user or password in it (credentials belong in the secret)."""
    parts = _split(url, "an http or https URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("the URL is an http or https URL with a host", code="subscriber_url_invalid")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "the URL must not hold a user or password (the secret signs every request)", code="subscriber_url_invalid"
        )
    return url


def check_broker_url(url: Any) -> str:
    """``mqtt://host[:port]`` or ``mqtts://host[:port]`` (TLS), nothing after the port;
    the account goes in ``username`` and ``password``, never in the URL."""
    parts = _split(url, "a broker URL mqtt://host:port or mqtts://host:port")
    if parts.scheme not in MQTT_SCHEMES or not parts.hostname:
        raise InvalidInput(
            "the broker URL is mqtt://host:port or mqtts://host:port (e.g. mqtt://127.0.0.1:1883)",
            code="subscriber_url_invalid",
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "the broker URL must not hold a user or password: give username and password instead",
            code="subscriber_url_invalid",
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput(
            "the broker URL ends after the port: the topic goes in topic_prefix", code="subscriber_url_invalid"
        )
    if parts.port == 0:
        raise InvalidInput("the broker port is 1 to 65535", code="subscriber_url_invalid")
    return url


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, TLS?) of a checked broker URL."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or MQTT_SCHEMES[parts.scheme], parts.scheme == "mqtts"


def check_topic_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or len(prefix) > 200 or not _TOPIC_PREFIX.fullmatch(prefix):
        raise InvalidInput(
            "topic_prefix is 1 to 16 topic levels separated by '/' (letters, digits, '.', '_', '-'; "
            "no '+', '#', '$', spaces or empty levels), e.g. plant1/batchline",
            code="topic_prefix_invalid",
        )
    return prefix


def check_username(username: Any) -> str:
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise InvalidInput(
            "username is 1 to 200 characters without spaces or control characters", code="mqtt_username_invalid"
        )
    return username


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not 1 <= len(password) <= 500 or any(ord(c) < 32 for c in password):
        raise InvalidInput("password is 1 to 500 characters without control characters", code="mqtt_password_invalid")
    return password


def check_event_types(types: Any) -> list[str]:
    if not isinstance(types, list) or not 1 <= len(types) <= MAX_EVENT_TYPES:
        raise InvalidInput(f"event_types is a list of 1 to {MAX_EVENT_TYPES} types", code="event_types_invalid")
    for t in types:
        if not isinstance(t, str) or not _EVENT_TYPE.fullmatch(t):
            raise InvalidInput(
                "an event type is letters, digits, '.', '_', '-' and '*' (e.g. qms.*)", code="event_types_invalid"
            )
    return list(dict.fromkeys(types))


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise InvalidInput("kind is webhook, qms or mqtt", code="subscriber_kind_invalid")
    return kind


def check_target(kind: str, url: Any, topic_prefix: Any, username: Any, password: Any) -> None:
    """The fields of one kind together: a webhook or QMS has an http(s) URL and no MQTT
    fields; an MQTT subscriber has a broker URL, a topic prefix and, if a password, a
    username."""
    if kind == "mqtt":
        check_broker_url(url)
        if topic_prefix is None:
            raise InvalidInput(
                "an MQTT subscriber needs topic_prefix (e.g. plant1/batchline)", code="topic_prefix_invalid"
            )
        check_topic_prefix(topic_prefix)
        if username is not None:
            check_username(username)
        if password is not None:
            check_password(password)
            if username is None:
                raise InvalidInput("a broker password needs a username", code="mqtt_username_invalid")
        return
    check_url(url)
    for field, value in (("topic_prefix", topic_prefix), ("username", username), ("password", password)):
        if value is not None:
            raise InvalidInput(f"{field} is for MQTT subscribers only (kind mqtt)", code="subscriber_field_invalid")
