"""Sent messages: one message's state and history (`message`), and those with no final state (`stale`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ops import output, render, reports
from ops.commands.arguments import Commands, positive_float
from ops.resources import Resources


def register(commands: Commands) -> None:
    message = commands.add(
        "message",
        run_message,
        "a sent message's current state and its full event history",
        "State, state code and time, sent time, carrier, sent-as, failure reason, the provider's status\n"
        "details, conflict (two different final reports), terminal codes, to/from, MMS id and the sender's\n"
        "fields; then every event in provider-time order with its code, state, failure reason, status\n"
        "details and the S3 key of its raw postback.\n"
        "Exit 1 when the table knows nothing of TRACKINGID.",
    )
    message.add_argument("tracking_id", metavar="TRACKINGID")

    stale = commands.add(
        "stale",
        run_stale,
        "sent messages with no final state, sent (or submitted) more than --hours ago, oldest first",
        "The question the hourly StaleMessages metric asks (the template's StaleMessageHours, default 72).",
    )
    stale.add_argument("--hours", type=positive_float, default=72.0, help="age threshold (default 72)")


def run_message(args: argparse.Namespace, resources: Resources) -> int:
    document = reports.message(resources.table, args.tracking_id)
    if args.json:
        output.document({"found": document is not None, **(document or {"tracking_id": args.tracking_id})})
    elif document is None:
        output.error(f"no message with TRACKINGID {render.cell(args.tracking_id)} (no state, no history)")
    else:
        output.text(message_text(document))
    return output.OK if document is not None else output.NOT_FOUND


def message_text(document: dict[str, Any]) -> str:
    """A message as `message` shows it (`request` shows an accepted request's message so too)."""
    lines = [f"message {render.cell(document['tracking_id'])}"]
    if document["state"] is None:
        state = "none yet (no event that sets one)"
    else:
        state = f"{document['state']} ({document['state_code']}) at {document['state_at']}"
    conflict = document["conflict"] and f"yes: final codes {', '.join(document['terminal_codes'])}"
    pairs: list[tuple[str, Any]] = [
        ("state", state),
        ("sent at", document["sent_at"]),
        ("sent as", document["sent_as"]),
        ("carrier", document["carrier"]),
        ("to", document["to"]),
        ("from", document["from"]),
        ("mms id", document["mms_id"]),
        ("failure reason", document["failure_reason"]),
        ("status details", document["status_details"]),
        ("conflict", conflict or False),
        ("terminal codes", document["terminal_codes"]),
        ("state raw key", document["state_raw_key"]),
    ]
    pairs += [(f"sender {name}", value) for name, value in document["sender"].items()]
    lines.append(render.fields(pairs))
    history = document["history"]
    lines.append(f"history: {len(history)} event{'s' if len(history) != 1 else ''}, in provider-time order")
    rows = [
        [
            event["timestamp"] or "(undated)",
            event["code"],
            event["state"],
            event["failure_reason"],
            event["status_details"],
            event["raw_key"],
        ]
        for event in history
    ]
    if rows:
        lines.append(render.table(["TIME", "CODE", "STATE", "FAILURE", "STATUS DETAILS", "RAW KEY"], rows))
    return "\n".join(lines)


def run_stale(args: argparse.Namespace, resources: Resources) -> int:
    document = reports.stale(resources.table, hours=args.hours, now=datetime.now(UTC))
    if args.json:
        output.document(document)
        return output.OK
    hours = f"{args.hours:g} h"
    header = (
        f"{document['count']} message{'s' if document['count'] != 1 else ''} with no final state, "
        f"sent or submitted more than {hours} ago (before {document['cutoff']}), oldest first"
    )
    rows = [
        [m["tracking_id"], m["state"], m["state_code"], m["state_at"], m["age_hours"], m["raw_key"]]
        for m in document["messages"]
    ]
    columns = ["TRACKINGID", "STATE", "CODE", "SINCE", "AGE (H)", "RAW KEY"]
    output.text(header + ("\n" + render.table(columns, rows) if rows else ""))
    return output.OK
