"""Conflicting duplicates as the operator sees them: bodies that reused a request's request_id with different
content, never sent (mmsbridge.sending.conflicts)."""

from __future__ import annotations

from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.conflicts import CONFLICTS_SK, KEEP
from ops import render, reports

MAX_WIDTH = 200
SIGHTING_FIELDS = ("at", "sha256", "message_id", "action", "to", "from", "refused")


def for_ledger(table: StateTable, pk: str) -> dict[str, Any] | None:
    """The conflicts recorded beside the ledger `pk` (`REQ#<request_id>`), or None."""
    if not pk.startswith("REQ#"):
        return None
    item = table.get(pk, CONFLICTS_SK)
    if item is None:
        return None
    seen = [
        {name: reports.plain(entry.get(name)) for name in SIGHTING_FIELDS} for entry in item.get("seen") or []
    ]
    count = int(item.get("count") or 0)
    return {
        "count": count,
        "first_seen_at": item.get("first_seen_at"),
        "last_seen_at": item.get("last_seen_at"),
        "last_sha256": item.get("last_sha256"),
        "kept": seen,
        "not_kept": max(0, count - len(seen)),
    }


def lines(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    out = [
        f"conflicting duplicates: {found['count']} (the request_id came again with a different body; "
        "never sent, the request above stands)",
        render.fields(
            [
                ("first seen", found["first_seen_at"]),
                ("last seen", found["last_seen_at"]),
                ("last sha256", found["last_sha256"]),
            ]
        ),
    ]
    rows = [
        [s["at"], s["sha256"], s["action"], s["to"], s["from"], s["message_id"], s["refused"]]
        for s in found["kept"]
    ]
    if rows:
        columns = ["SEEN AT", "SHA256", "ACTION", "TO", "FROM", "SQS MESSAGE ID", "ALSO REFUSED"]
        out.append(render.table(columns, rows, width=MAX_WIDTH))
    if found["not_kept"]:
        out.append(f"  ... and {found['not_kept']} more (the first {KEEP} are kept; the count is the total)")
    return out
