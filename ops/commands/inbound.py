"""What came in: inbound SMS/MMS (`inbound`), and whether a number opted out (`suppression`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from mmsbridge.core.table_model import INBOUND_SHARDS
from ops import output, render, reports
from ops.commands.arguments import Commands, limit, time_range
from ops.resources import Resources
from ops.times import iso_or_none


def register(commands: Commands) -> None:
    inbound = commands.add(
        "inbound",
        run_inbound,
        "recent inbound SMS/MMS, to or from a number or all of them, newest first",
        "With --to or --from, one number's (index gsi1: TO#<number>#<shard> for every shard,"
        f" 0..{INBOUND_SHARDS - 1},\n"
        "and the unsharded TO#<number> of tables written before the sharding, merged; or gsi2,\n"
        "FROM#<number>); a number is read as the sender reads it (+1 (415) 555-0178 is 14155550178;\n"
        "national format only with the stack's DefaultCountryCode; a number invalid for its country\n"
        "is an error, exit 2). Without, every number's (index gsi3: per UTC day, INDAY#<date>#<shard>\n"
        f"for every shard and the unsharded INDAY#<date>, merged), by default from {reports.RECENT_DAYS}"
        " days ago.",
    )
    who = inbound.add_mutually_exclusive_group()
    who.add_argument("--to", metavar="NUMBER", help="the receiving number (shortcode or longcode)")
    who.add_argument("--from", dest="sender", metavar="NUMBER", help="the sender's number")
    time_range(inbound)
    limit(inbound)

    suppression = commands.add(
        "suppression",
        run_suppression,
        "whether a mobile number is suppressed (opted out), since when and why",
        "An opt-out (SUB N302, or an inbound STOP) suppresses the number; a later opt-in (N301) lifts it.\n"
        "Also lists the number's campaign subscriptions. MOBILE is read exactly as the sender reads a\n"
        "request's `to` (the stack's DefaultCountryCode applies), so this answers what the sender checks;\n"
        "a number the sender would refuse is an error (exit 2), never 'not suppressed'.",
    )
    suppression.add_argument("mobile", metavar="MOBILE")


def run_inbound(args: argparse.Namespace, resources: Resources) -> int:
    since = args.since
    if args.to is None and args.sender is None:
        now = datetime.now(UTC)
        since = since or (args.until or now) - timedelta(days=reports.RECENT_DAYS)  # the window looked at
        messages = reports.recent_inbound(
            resources.table, since=since, until=args.until, limit=args.limit, now=now
        )
    else:
        messages = reports.inbound(
            resources.table,
            to=args.to,
            sender=args.sender,
            since=args.since,
            until=args.until,
            limit=args.limit,
            default_country_code=resources.default_country_code,
        )
    if args.json:
        output.document(
            {
                "to": args.to,
                "from": args.sender,
                "since": iso_or_none(since),
                "until": iso_or_none(args.until),
                "limit": args.limit,
                "count": len(messages),
                "messages": messages,
            }
        )
        return output.OK
    if args.to is not None:
        who = f"to {args.to}"
    elif args.sender is not None:
        who = f"from {args.sender}"
    else:
        until = f"until {iso_or_none(args.until)}" if args.until else "until now"
        who = f"to any number from {iso_or_none(since)} {until}"
    lines = [f"inbound messages {render.cell(who)}: {len(messages)} (newest first, at most {args.limit})"]
    for item in messages:
        when = item["time"] or "(undated)"
        head = f"{when}  {item['origin']} {item['code']}  from {item['from']}  to {item['to']}"
        lines.append(render.cell(head) + ("  STOP" if item["stop"] else ""))
        for label in ("text", "keyword", "subject", "files"):
            if item[label]:
                lines.append(f"    {label:<8} {render.cell(item[label])}")
        lines.append(f"    {'id':<8} {render.cell(item['id'])}   raw {render.cell(item['raw_key'])}")
    output.text("\n".join(lines))
    return output.OK


def run_suppression(args: argparse.Namespace, resources: Resources) -> int:
    document = reports.suppression(
        resources.table, args.mobile, default_country_code=resources.default_country_code
    )
    if args.json:
        output.document(document)
        return output.OK
    number = render.cell(document["mobile"])
    source = render.cell(document["source"])
    if document["code"] and document["code"] not in source:
        source += f" {document['code']}"
    why = f"{source}; {render.cell(document['raw_key'])}"
    if document["suppressed"]:
        lines = [f"{number}: SUPPRESSED since {document['since']} ({why})"]
    elif document["on_record"]:
        lines = [f"{number}: not suppressed: opted back in at {document['since']} ({why})"]
    else:
        lines = [f"{number}: not suppressed (no opt-out on record)"]
    if document["subscriptions"]:
        rows = [
            [s["campaign_id"], s["campaign_title"], s["subscribed"], s["since"], s["code"], s["source"]]
            for s in document["subscriptions"]
        ]
        lines.append("subscriptions:")
        lines.append(render.table(["CAMPAIGN", "TITLE", "SUBSCRIBED", "SINCE", "CODE", "SOURCE"], rows))
    output.text("\n".join(lines))
    return output.OK
