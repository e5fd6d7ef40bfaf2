"""Time arguments: an ISO 8601 instant (UTC unless it names an offset) or a duration ago (`90m`, `24h`); and
times as the answers write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from mmsbridge.core.times import iso

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(text: str, *, now: datetime | None = None) -> datetime:
    """`2026-11-25`, `2026-11-25T10:00`, `2026-11-25T10:00:00-05:00`, `...Z`, or `24h` (24 hours ago)."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        ago = timedelta(**{_UNITS[duration[2]]: float(duration[1])})
        return (now or datetime.now(UTC)) - ago
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 time nor a duration like 24h: {text!r} (e.g. 2026-11-25T10:00:00Z, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_stored(value: object) -> datetime | None:
    """A timestamp as stored (object metadata, table attributes), or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_or_none(moment: datetime | None) -> str | None:
    """A time as the answers write it (ISO 8601 UTC), or None."""
    return iso(moment) if moment is not None else None
