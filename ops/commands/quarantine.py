"""Postbacks the consumer did not apply: quarantined ones (`quarantine`, `--show` prints one's raw bytes),
and events it kept but could not attribute (`unrecognised`)."""

from __future__ import annotations

import argparse
import base64
import sys
from typing import Any

from botocore.exceptions import ClientError

from ops import output, render, reports, unrecognised
from ops.commands.arguments import Commands, limit, time_range
from ops.replay import ARCHIVE_PREFIX
from ops.resources import Resources
from ops.times import iso_or_none

MAX_WIDTH = 200  # of an unrecognised event's lines
FIELDS_SHOWN = 8  # of an unrecognised event's fields


def register(commands: Commands) -> None:
    quarantine = commands.add(
        "quarantine",
        run_quarantine,
        "quarantined postbacks (not understood, not applied), newest first; --show prints one's raw bytes",
        "Lists sha256, reason, detail, first seen and raw S3 key. --show SHA256 prints the archived bytes\n"
        "as text (invalid UTF-8 replaced, control characters shown as \\xNN; never parsed); the details go\n"
        "to stderr, so stdout is the body alone. With --json the exact bytes are in body_b64.",
    )
    quarantine.add_argument("--show", metavar="SHA256", help="print this postback's raw bytes from S3")
    time_range(quarantine)
    limit(quarantine)

    events = commands.add(
        "unrecognised",
        run_unrecognised,
        "postback events kept but not attributed (unknown ORIGIN or CODE, no TRACKINGID), newest first",
        "Each event's time, ORIGIN, CODE, kind, key (OTHER#<origin>#<id>), its fields and the S3 key of its\n"
        "raw postback (`quarantine --show SHA256` prints the bytes). Listed from index gsi1, UNRECOGNISED,\n"
        "by the event's own time; undated events sort after every time (listed only without --since/\n"
        "--until). Events stored before the index existed join it when `replay` applies them again.",
    )
    time_range(events)
    limit(events)


def run_quarantine(args: argparse.Namespace, resources: Resources) -> int:
    if args.show is not None:
        return _show_quarantined(args, resources)
    items = reports.quarantine(resources.table, since=args.since, until=args.until, limit=args.limit)
    if args.json:
        output.document(
            {
                "since": iso_or_none(args.since),
                "until": iso_or_none(args.until),
                "limit": args.limit,
                "count": len(items),
                "postbacks": items,
            }
        )
        return output.OK
    header = f"quarantined postbacks: {len(items)} (newest first, at most {args.limit})"
    rows = [[i["first_seen"], i["sha256"], i["reason"], i["detail"], i["raw_key"]] for i in items]
    output.text(
        header
        + ("\n" + render.table(["FIRST SEEN", "SHA256", "REASON", "DETAIL", "RAW KEY"], rows) if rows else "")
    )
    return output.OK


def _show_quarantined(args: argparse.Namespace, resources: Resources) -> int:
    sha256 = args.show.strip().lower()
    if not reports.SHA256.fullmatch(sha256):
        output.error("--show takes a SHA-256: 64 hexadecimal digits")
        return output.USAGE
    record = reports.quarantined(resources.table, sha256)
    if record is not None and not record["raw_key"]:
        output.error(
            f"{sha256} was quarantined ({record['reason']}: {render.cell(record['detail'])}) but has no raw "
            "bytes in S3: the queue message itself was not a postback envelope"
        )
        return output.NOT_FOUND
    key = record["raw_key"] if record else f"{ARCHIVE_PREFIX}{sha256}.xml"
    try:
        body = resources.client("s3").get_object(Bucket=resources.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        output.error(f"no archived object s3://{resources.bucket}/{key}")
        return output.NOT_FOUND
    if args.json:
        output.document(
            {
                "sha256": sha256,
                "quarantined": record is not None,
                "reason": record["reason"] if record else None,
                "detail": record["detail"] if record else None,
                "first_seen": record["first_seen"] if record else None,
                "raw_key": key,
                "size": len(body),
                "text": body.decode("utf-8", errors="replace"),
                "body_b64": base64.b64encode(body).decode("ascii"),
            }
        )
        return output.OK
    if record:
        output.error(
            f"# quarantined {record['first_seen']}: {record['reason']}: {render.cell(record['detail'])}"
        )
    else:
        output.error(f"# not quarantined; archived postback {sha256}")
    output.error(f"# s3://{resources.bucket}/{key} ({len(body)} bytes)")
    text = render.body_text(body)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return output.OK


def run_unrecognised(args: argparse.Namespace, resources: Resources) -> int:
    found = unrecognised.events(resources.table, since=args.since, until=args.until, limit=args.limit)
    if args.json:
        output.document(
            {
                "since": iso_or_none(args.since),
                "until": iso_or_none(args.until),
                "limit": args.limit,
                "count": len(found),
                "events": found,
            }
        )
        return output.OK
    lines = [f"unrecognised postback events: {len(found)} (newest first, at most {args.limit})"]
    for e in found:
        head = f"{e['time'] or '(undated)'}  {e['origin']} {e['code']} ({e['kind']})  {e['key']}"
        lines.append(render.shortened(render.cell(head), MAX_WIDTH))
        lines.append(render.shortened(f"    fields  {_fields(e['fields'])}", MAX_WIDTH))
        lines.append(f"    raw     {render.cell(e['raw_key'])}")
    output.text("\n".join(lines))
    return output.OK


def _fields(fields: dict[str, Any]) -> str:
    names = [name for name in fields if name not in ("ORIGIN", "CODE")]
    shown = "; ".join(f"{name}={render.cell(fields[name])}" for name in names[:FIELDS_SHOWN])
    return shown + ("; ..." if len(names) > FIELDS_SHOWN else "")
