"""Times as people on the floor read them: in the site's time zone, with its abbreviation.

Records keep UTC (the database, the API's JSON, the exports and the printed record stay
ISO 8601 UTC: machine formats never change); a page shows "1 Dec 2026, 21:04 CET" in the
zone of the site (``Settings.site_timezone``, an IANA name; empty: the server's own zone).
Why the site's zone and not only the tablet's: an operator compares a time on the page
with the clock on the wall and with what a colleague reads on another screen; all of them
must say the same. Each time is a ``<time datetime="…UTC…">`` whose title keeps the exact
UTC second, so the record's own time is one hover away and a script could re-render it.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

__all__ = ["site_zone", "when", "when_text"]


@functools.lru_cache(maxsize=16)
def site_zone(name: str = "") -> tzinfo:
    """The zone ``name`` (IANA), else the server's local zone, else UTC."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return UTC
    local = _local_zone_name()
    if local:
        try:
            return ZoneInfo(local)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo or UTC  # a fixed offset: no summer time


def _local_zone_name() -> str | None:
    """The server's zone as an IANA name (so summer time is followed): ``TZ``, then
    ``/etc/timezone``, then where ``/etc/localtime`` points."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name and "/" in name or name == "UTC":
        return name
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return None
    marker = "/zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _is_calendar_date(moment: datetime) -> bool:
    """An expiry or due date entered as a date is stored as midnight UTC: it is a day of
    the calendar, not an instant, and must not move to the day before west of Greenwich."""
    utc = moment.astimezone(UTC)
    return (utc.hour, utc.minute, utc.second, utc.microsecond) == (0, 0, 0, 0)


def when_text(value: Any, zone: tzinfo, style: str = "datetime") -> str:
    """``value`` (datetime or ISO text) as "1 Dec 2026, 21:04 CET"; ``style`` ``date``:
    "1 Dec 2026"; ``seconds``: "1 Dec 2026, 21:04:05 CET"."""
    moment = _moment(value)
    if moment is None:
        return str(value)
    if style == "date":
        day = moment.astimezone(UTC) if _is_calendar_date(moment) else moment.astimezone(zone)
        return f"{day.day} {day:%b %Y}"
    local = moment.astimezone(zone)
    clock = "%H:%M:%S" if style == "seconds" else "%H:%M"
    return f"{local.day} {local:%b %Y}, {local.strftime(clock)} {local.tzname() or ''}".rstrip()


def when(value: Any, zone: tzinfo, style: str = "datetime") -> Markup:
    """``when_text`` inside ``<time datetime=ISO-UTC title="… UTC">``; "—" for no time."""
    if value is None or value == "":
        return Markup("—")
    moment = _moment(value)
    if moment is None:
        return Markup(escape(value))
    utc = moment.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
        when_text(moment, zone, style),
    )
