"""The operator's reads of the state table, as plain JSON-ready documents (the text view renders these).

Key design: `mmsbridge.core.table_model` (its docstring lists every pk / sk and the indexes).
"""

from __future__ import annotations

import base64
import heapq
import re
from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.phone_numbers import normalise_number, normalise_sender
from mmsbridge.core.table_model import UNDATED, inbound_day_partitions, inbound_to_partitions
from mmsbridge.core.times import iso
from ops.times import parse_stored

# sk values end in `#<id>`; `~` sorts after `#` and every digit, so `<iso>~` is after every `<iso>#...`.
_AFTER_ALL = "~"
# How far back `inbound` without a number looks when no --since is given.
RECENT_DAYS = 7
SHA256 = re.compile(r"[0-9a-f]{64}")

# A message's own facts, in display order (StateTable.message's view); the sender's record comes after.
MESSAGE_FIELDS = (
    "state",
    "state_code",
    "state_at",
    "sent_at",
    "carrier",
    "sent_as",
    "failure_reason",
    "status_details",
    "conflict",
    "terminal_codes",
    "to",
    "from",
    "mms_id",
    "via_link",
    "handset",
    "aggregator_id",
    "state_raw_key",
)
_KEYS = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "type", "expires_at", "tracking_id"}
INBOUND_FIELDS = (
    "time",
    "origin",
    "code",
    "id",
    "from",
    "to",
    "text",
    "keyword",
    "subject",
    "files",
    "carrier",
    "stop",
    "raw_key",
)
QUARANTINE_FIELDS = ("sha256", "reason", "detail", "first_seen", "raw_key")


def plain(value: Any) -> Any:
    """DynamoDB's Decimals and sets as JSON's numbers and (sorted) lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def lookup_number(raw: str, *, default_country_code: str | None, sender: bool = False) -> str:
    """A number typed to the CLI, read exactly as the sender reads send requests (`+1 (415) 555-0178` ->
    `14155550178`; national format only with the stack's DefaultCountryCode), so a look-up finds what the
    sender checks. `sender` also takes a 5-6 digit shortcode. Raises InvalidNumber with the reason."""
    if sender:
        return normalise_sender(raw, default_country_code=default_country_code)
    return normalise_number(raw, default_country_code=default_country_code)


def sk_range(since: datetime | None, until: datetime | None) -> tuple[str, str] | None:
    """Sort-key bounds for `<utc iso>#<id>` keys: since inclusive, until exclusive."""
    if since is None and until is None:
        return None
    low = iso(since) if since else "0"
    high = iso(until) if until else _AFTER_ALL  # `<until>` sorts before every `<until>#<id>`
    return low, high


# -- message -------------------------------------------------------------------------------------------
def message(table: StateTable, tracking_id: str) -> dict[str, Any] | None:
    """The message's current state, facts, the sender's fields and its history; None when unknown."""
    view = table.message(tracking_id)
    if view is None:
        return None
    document: dict[str, Any] = {"tracking_id": tracking_id}
    for name in MESSAGE_FIELDS:
        document[name] = plain(view.get(name))
    document["conflict"] = bool(view.get("conflict"))
    document["via_link"] = bool(view.get("via_link"))
    document["terminal_codes"] = sorted(plain(view.get("final_codes") or view.get("terminal_codes") or []))
    request = view.get("request") or {}
    document["sender"] = {name: plain(value) for name, value in sorted(request.items()) if name not in _KEYS}
    history = view["history"] if "history" in view else table.history(f"MSG#{tracking_id}")
    document["history"] = [_event(event) for event in history]
    return document


def _event(item: dict[str, Any]) -> dict[str, Any]:
    fields = item.get("fields") or {}
    return {
        "timestamp": item.get("timestamp_utc"),
        "timestamp_raw": item.get("timestamp_raw"),
        "origin": item.get("origin"),
        "code": item.get("code"),
        "state": item.get("state"),
        "failure_reason": item.get("failure_reason"),
        "status": fields.get("STATUS"),
        "status_details": fields.get("STATUSDETAILS"),
        "raw_key": item.get("raw_key"),
        "sha256": item.get("sha256"),
    }


# -- inbound -------------------------------------------------------------------------------------------
def inbound(
    table: StateTable,
    *,
    to: str | None,
    sender: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    default_country_code: str | None = None,
) -> list[dict[str, Any]]:
    """Inbound SMS/MMS to a number (gsi1, its shards and its unsharded partition) or from one (gsi2
    `FROM#`), newest first."""
    typed = to if to is not None else sender
    assert typed is not None
    number = lookup_number(typed, default_country_code=default_country_code, sender=True)
    index, partitions = (
        ("gsi1", inbound_to_partitions(number)) if to is not None else ("gsi2", (f"FROM#{number}",))
    )
    items = _newest(table, partitions, index=index, bounds=sk_range(since, until), limit=limit)
    return [_inbound(item, item[f"{index}sk"]) for item in items]


def recent_inbound(
    table: StateTable, *, since: datetime | None, until: datetime | None, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """Inbound SMS/MMS to and from every number (gsi3: per UTC day, its shards and its unsharded partition),
    newest first; `since` defaults to RECENT_DAYS before `until` (or now)."""
    low = since or (until or now) - timedelta(days=RECENT_DAYS)
    found: list[dict[str, Any]] = []
    day = (until or now).astimezone(UTC).date()
    while day >= low.astimezone(UTC).date() and len(found) < limit:
        partitions = inbound_day_partitions(iso(datetime.combine(day, time(), UTC)))
        found += _newest(
            table, partitions, index="gsi3", bounds=sk_range(low, until), limit=limit - len(found)
        )
        day -= timedelta(days=1)
    return [_inbound(item, item["gsi3sk"]) for item in found]


def _newest(
    table: StateTable, partitions: Iterable[str], *, index: str, bounds: tuple[str, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The `limit` newest items of the index partitions together, by sort key: each partition is read
    newest first, a page at a time as the merge needs it."""
    readings = [
        table.query(partition, index=index, sk_between=bounds, forward=False, limit=limit)
        for partition in partitions
    ]
    merged = heapq.merge(*readings, key=lambda item: str(item[f"{index}sk"]), reverse=True)
    return list(islice(merged, limit))


def _inbound(item: dict[str, Any], sort_key: str) -> dict[str, Any]:
    document = {name: plain(item.get(name)) for name in INBOUND_FIELDS}
    document["time"] = item.get("time") or item.get("received_time") or sort_key.partition("#")[0]
    if document["time"] == UNDATED:
        document["time"] = None
    document["files"] = document["files"] or []
    document["stop"] = bool(document["stop"])
    return document


# -- quarantine ----------------------------------------------------------------------------------------
def quarantine(
    table: StateTable, *, since: datetime | None, until: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Quarantined postbacks (gsi1 `QUARANTINE`, sorted by first sighting), newest first."""
    items = table.query(
        "QUARANTINE", index="gsi1", sk_between=sk_range(since, until), forward=False, limit=limit
    )
    return [{name: plain(item.get(name)) for name in QUARANTINE_FIELDS} for item in items]


def quarantined(table: StateTable, sha256: str) -> dict[str, Any] | None:
    item = table.get(f"QUARANTINE#{sha256}", "Q")
    return {name: plain(item.get(name)) for name in QUARANTINE_FIELDS} if item else None


# -- stale ---------------------------------------------------------------------------------------------
def stale(table: StateTable, *, hours: float, now: datetime) -> dict[str, Any]:
    """Messages with no final state sent (or submitted) more than `hours` ago, oldest first."""
    cutoff = iso(now - timedelta(hours=hours))
    oldest = {
        marker.get("tracking_id") or marker["pk"].partition("#")[2]: marker
        for marker in table.open_messages(older_than=cutoff)  # one per message, its oldest marker
    }
    messages = []
    for tracking_id, marker in sorted(oldest.items(), key=lambda pair: (pair[1].get("at") or "", pair[0])):
        at = parse_stored(marker.get("at"))
        messages.append(
            {
                "tracking_id": tracking_id,
                "state": marker.get("state"),
                "state_code": marker.get("code"),
                "state_at": marker.get("at"),
                "age_hours": round((now - at).total_seconds() / 3600, 1) if at else None,
                "raw_key": marker.get("raw_key"),
            }
        )
    return {"hours": hours, "cutoff": cutoff, "count": len(messages), "messages": messages}


# -- suppression ---------------------------------------------------------------------------------------
def suppression(table: StateTable, mobile: str, *, default_country_code: str | None = None) -> dict[str, Any]:
    """Whether the number is suppressed (its latest opt-out/opt-in), since when and why; its subscriptions.
    The number is read as the sender reads a request's `to`: the sender's check and this one agree."""
    number = lookup_number(mobile, default_country_code=default_country_code)
    latest = table.suppression(number)
    subscriptions: dict[str, dict[str, Any]] = {}
    for item in table.query(f"SUB#{number}", sk_prefix="CAMPAIGN#"):  # every change, oldest first
        subscriptions[str(item.get("campaign_id"))] = item
    return {
        "mobile": number,
        "suppressed": bool(latest and latest.get("suppressed")),
        "on_record": latest is not None,
        "since": latest.get("at") if latest else None,
        "code": latest.get("code") if latest else None,
        "source": latest.get("source") if latest else None,
        "raw_key": latest.get("raw_key") if latest else None,
        "subscriptions": [
            {
                "campaign_id": item.get("campaign_id"),
                "campaign_title": item.get("campaign_title"),
                "shortcode": item.get("shortcode"),
                "subscribed": item.get("subscribed"),
                "since": item.get("at"),
                "code": item.get("code"),
                "source": item.get("source"),
            }
            for _, item in sorted(subscriptions.items())
        ],
    }
