"""Outbound messages to a number (`messages`), and linking OUTCOME_UNKNOWN requests to the messages they
became (`reconcile`)."""

from __future__ import annotations

import argparse
from typing import Any

from ops import messages as outbound_messages
from ops import output, render
from ops import reconcile as reconciliation
from ops.commands.arguments import Commands, limit, time_range
from ops.resources import Resources


def register(commands: Commands) -> None:
    messages = commands.add(
        "messages",
        run_messages,
        "outbound messages to a number, newest first: first report, state, FROM, the request linked",
        "Every message whose delivery reports (MMS_MT/SMS_MT) or outbound record went to NUMBER (index\n"
        "gsi2, OUT#<number>), newest first by its first report (or acceptance): tracking id, first report\n"
        "time and code, current state, FROM, and the request it is linked to (none: a message no request\n"
        "knows, e.g. one whose send ended OUTCOME_UNKNOWN; `unknown` shows which request it likely is).\n"
        "NUMBER is read exactly as the sender reads a request's `to` (the stack's DefaultCountryCode\n"
        "applies); a number the sender would refuse is an error (exit 2). --since/--until select by the\n"
        "message's first time. Messages stored before this index existed join it when `replay` applies\n"
        "their postbacks again.",
    )
    messages.add_argument("--to", required=True, metavar="NUMBER", help="the number the messages went to")
    time_range(messages)
    limit(messages)

    reconcile = commands.add(
        "reconcile",
        run_reconcile,
        "link OUTCOME_UNKNOWN requests to the message each one became, where the evidence is unambiguous",
        "For each OUTCOME_UNKNOWN request (--since/--until: by when it got that status): its candidates\n"
        "are the messages no request is linked to, to its TO from its FROM, whose first delivery report\n"
        "came between 1 minute before its first claim and 15 minutes after the attempt that ended\n"
        "unknown. It is linked (ACCEPTED, with a `reconciled` record; the message gets its outbound\n"
        "record) only when there is exactly one candidate, no other OUTCOME_UNKNOWN or accepted request\n"
        "to that TO/FROM has an overlapping window, and the window closed 30 minutes ago (the provider\n"
        "may still be retrying reports until then). Anything else is listed with the reason and left\n"
        "alone. The write is conditional (still OUTCOME_UNKNOWN, the message still unlinked), so it is\n"
        "safe beside the hourly run in the stale function. --dry-run shows what would be linked.",
    )
    time_range(reconcile)
    reconcile.add_argument("--dry-run", action="store_true", help="show what would be linked; change nothing")


def run_messages(args: argparse.Namespace, resources: Resources) -> int:
    document = outbound_messages.messages(
        resources.table,
        args.to,
        since=args.since,
        until=args.until,
        limit=args.limit,
        default_country_code=resources.default_country_code,
    )
    if args.json:
        output.document(document)
        return output.OK
    found = document["messages"]
    lines = [f"outbound messages to {document['to']}: {len(found)} (newest first, at most {args.limit})"]
    rows = [
        [
            m["first_report_at"] or m["accepted_at"],
            m["first_report_code"],
            m["tracking_id"],
            f"{m['state']} ({m['state_code']})" if m["state"] else None,
            m["from"],
            _linked_request(m),
        ]
        for m in found
    ]
    if rows:
        lines.append(render.table(["FIRST REPORT", "CODE", "TRACKINGID", "STATE", "FROM", "REQUEST"], rows))
    output.text("\n".join(lines))
    return output.OK


def _linked_request(message: dict[str, Any]) -> str:
    if not message["linked"]:
        return "(none)"
    return f"{message['request_id']}{' (reconciled)' if message['reconciled_at'] else ''}"


def run_reconcile(args: argparse.Namespace, resources: Resources) -> int:
    document = reconciliation.run(resources.table, dry_run=args.dry_run, since=args.since, until=args.until)
    if args.json:
        output.document(document)
    else:
        output.text(reconciliation.run_text(document))
    return output.OK
