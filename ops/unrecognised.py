"""Postback events the consumer kept but could not attribute (`OTHER#<origin>#<id>`: an unknown ORIGIN or
CODE, or a message event without its TRACKINGID or MMSID), newest first, as `unrecognised` lists them.

The consumer lists each on gsi1 under UNRECOGNISED, sorted `<event time>#<pk>` (undated ones after every
time): they are rare, so one partition serves them. Events stored before that index existed join it when
`replay` applies their postbacks again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.table_model import UNDATED, UNRECOGNISED_PARTITION
from ops import reports


def events(
    table: StateTable, *, since: datetime | None, until: datetime | None, limit: int
) -> list[dict[str, Any]]:
    items = table.query(
        UNRECOGNISED_PARTITION,
        index="gsi1",
        sk_between=reports.sk_range(since, until),
        forward=False,
        limit=limit,
    )
    return [_event(item) for item in items]


def _event(item: dict[str, Any]) -> dict[str, Any]:
    moment = str(item.get("gsi1sk", "")).partition("#")[0]
    return {
        "time": None if moment in ("", UNDATED) else moment,
        "key": item["pk"],
        "origin": item.get("origin"),
        "code": item.get("code"),
        "kind": item.get("kind"),
        "timestamp_raw": item.get("timestamp_raw"),
        "fields": reports.plain(item.get("fields") or {}),
        "files": reports.plain(item.get("files") or []),
        "raw_key": item.get("raw_key"),
        "sha256": item.get("sha256"),
    }
