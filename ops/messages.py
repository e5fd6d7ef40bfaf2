"""Outbound messages to a number, newest first (gsi2 `OUT#<TO>`): each with its first report, its state, its
sender (FROM) and the request it is linked to, if any.

The index holds one item per MMS_MT/SMS_MT delivery report and the sender's outbound record
(mmsbridge.postbacks.planner, mmsbridge.sending.ledger); a message is read whole (one Query of its MSG#
partition).
Messages stored before the index existed join it when `ops replay` applies their postbacks again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.table_model import UNDATED
from mmsbridge.core.times import iso
from mmsbridge.sending.reconcile import outbound_message
from ops import reports

_AFTER_ALL = "~"


def messages(
    table: StateTable,
    number: str,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    default_country_code: str | None = None,
) -> dict[str, Any]:
    """The `limit` newest outbound messages to `number` (read as the sender reads a request's `to`) whose
    first item (first report, or acceptance) is in [since, until)."""
    to = reports.lookup_number(number, default_country_code=default_country_code)
    low = iso(since) if since else "0"
    high = iso(until) if until else _AFTER_ALL
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in table.query(f"OUT#{to}", index="gsi2", sk_between=(low, high), forward=False):
        moment = str(item.get("gsi2sk", "")).partition("#")[0]
        # Newest first by each message's first time: once `limit` are kept, a message not yet seen can only
        # be newer than the oldest kept if it has an item at or after that one's first time.
        if len(kept) >= limit and moment < _first_time(kept[limit - 1]):
            break
        tracking_id = str(item["pk"]).removeprefix("MSG#")
        if tracking_id in seen:
            continue
        seen.add(tracking_id)
        document = _message(table, tracking_id)
        if document is None:
            continue
        first = _first_time(document)
        if first < low or (until is not None and first >= high):
            continue  # its first item is outside the window; a later one brought it here
        kept.append(document)
        kept.sort(key=lambda d: (_first_time(d), d["tracking_id"]), reverse=True)
    return {
        "to": to,
        "since": iso(since) if since else None,
        "until": iso(until) if until else None,
        "limit": limit,
        "count": len(kept[:limit]),
        "messages": kept[:limit],
    }


def _first_time(document: dict[str, Any]) -> str:
    times = [t for t in (document["first_report_at"], document["accepted_at"]) if t]
    return min(times) if times else UNDATED


def _message(table: StateTable, tracking_id: str) -> dict[str, Any] | None:
    view = table.message(tracking_id)
    if view is None:
        return None
    found = outbound_message(view)
    request = view.get("request") or {}
    return {
        "tracking_id": tracking_id,
        "to": found.to,
        "from": found.from_,
        "first_report_at": iso(found.first_report_at) if found.first_report_at else None,
        "first_report_code": found.first_report_code,
        "codes": list(found.codes),
        "state": view.get("state"),
        "state_code": view.get("state_code"),
        "state_at": view.get("state_at"),
        "accepted_at": request.get("accepted_at"),
        "request_id": request.get("request_id"),
        "linked": bool(request),
        "reconciled_at": request.get("reconciled_at"),
        "reconciled_by": request.get("reconciled_by"),
    }
