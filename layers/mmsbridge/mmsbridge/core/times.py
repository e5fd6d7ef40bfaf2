"""Times: provider timestamps (docs/provider-protocol.md §3.6) → timezone-aware UTC datetimes, and the
state table's own time format (`iso`).

Forms seen: `2024-03-14T10:02:11-04:00`, `2024-03-14T10:02:11.482913-04:00`, `2024-03-14T10:02:11-04` and the
legacy `2011-05-09 16:40:02.518224-04`; `Z` is accepted too. The offsets are US Eastern local time, so a value
without an offset is never guessed to be UTC: it does not parse (the caller keeps the raw string).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

# The §3.6 forms exactly, ASCII digits only (`\d` would also take other scripts' digits). Anything that
# passes is handed to the C `fromisoformat`, which also rejects impossible dates and offsets.
_PROVIDER_TIMESTAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-5][0-9])?)"
)
_XML_WHITESPACE: Final = " \t\r\n"


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse a provider timestamp to an aware UTC datetime.

    Surrounding whitespace is ignored. Returns None when the value is missing, has no UTC offset, is not one
    of the §3.6 forms (`T` or space; 1-6 fractional digits; offset `Z`, `±hh`, `±hh:mm` or `±hhmm`), or is
    not a real instant (month 13, offset minutes 60, a result outside datetime's range). Never raises.
    """
    if not value:
        return None
    value = value.strip(_XML_WHITESPACE)
    if _PROVIDER_TIMESTAMP.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime for `moment`; a naive value is taken to be UTC already (the Lambda clock)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def isoformat_utc(moment: datetime) -> str:
    """`2024-03-14T14:02:11Z` / `2024-03-14T13:58:03.214870Z`: a sortable string for storage and keys."""
    return to_utc(moment).isoformat().replace("+00:00", "Z")


def iso(moment: datetime) -> str:
    """The state table's time format: UTC, microseconds, `Z` (`2024-03-14T14:02:11.000000Z`), so that times
    sort as strings."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
