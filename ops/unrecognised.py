"""`ops unrecognised`: postback events the consumer kept but could not attribute (`OTHER#<origin>#<id>`: an
unknown ORIGIN or CODE, or a message event without its TRACKINGID or MMSID), newest first.

The consumer lists each on gsi1 under UNRECOGNISED, sorted `<event time>#<pk>` (undated ones after every
time): they are rare, so one partition serves them. Events stored before that index existed join it when
`replay` applies their postbacks again.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.table_model import UNDATED, UNRECOGNISED_PARTITION
from mmsbridge.core.times import iso
from ops import output, render, reports
from ops.resources import Resources

MAX_WIDTH = 200
FIELDS_SHOWN = 8


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


def register(
    command: Callable[..., argparse.ArgumentParser],
    time_range: Callable[[argparse.ArgumentParser], None],
    limit: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = command(
        "unrecognised",
        run,
        "postback events kept but not attributed (unknown ORIGIN or CODE, no TRACKINGID), newest first",
        "Each event's time, ORIGIN, CODE, kind, key (OTHER#<origin>#<id>), its fields and the S3 key of its\n"
        "raw postback (`quarantine --show SHA256` prints the bytes). Listed from index gsi1, UNRECOGNISED,\n"
        "by the event's own time; undated events sort after every time (listed only without --since/\n"
        "--until). Events stored before the index existed join it when `replay` applies them again.",
    )
    time_range(parser)
    limit(parser)


def run(args: argparse.Namespace, resources: Resources) -> int:
    found = events(resources.table, since=args.since, until=args.until, limit=args.limit)
    if args.json:
        output.document(
            {
                "since": iso(args.since) if args.since else None,
                "until": iso(args.until) if args.until else None,
                "limit": args.limit,
                "count": len(found),
                "events": found,
            }
        )
        return 0
    lines = [f"unrecognised postback events: {len(found)} (newest first, at most {args.limit})"]
    for e in found:
        head = f"{e['time'] or '(undated)'}  {e['origin']} {e['code']} ({e['kind']})  {e['key']}"
        lines.append(render.shortened(render.cell(head), MAX_WIDTH))
        lines.append(render.shortened(f"    fields  {_fields(e['fields'])}", MAX_WIDTH))
        lines.append(f"    raw     {render.cell(e['raw_key'])}")
    output.text("\n".join(lines))
    return 0


def _fields(fields: dict[str, Any]) -> str:
    names = [name for name in fields if name not in ("ORIGIN", "CODE")]
    shown = "; ".join(f"{name}={render.cell(fields[name])}" for name in names[:FIELDS_SHOWN])
    return shown + ("; ..." if len(names) > FIELDS_SHOWN else "")
