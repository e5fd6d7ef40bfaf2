"""The stack on one screen (`status`): what ops.status reads, as text."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ops import output, render
from ops.commands.arguments import Commands, scan_limit
from ops.resources import Resources
from ops.status import collect


def register(commands: Commands) -> None:
    parser = commands.add(
        "status",
        run,
        "the stack on one screen: queues, account errors, throttling, worklists",
        "Each queue and DLQ: messages visible, in flight and delayed, and the oldest message's age\n"
        "(deployed: CloudWatch ApproximateAgeOfOldestMessage; local stack: a peek at the oldest visible\n"
        "message's SentTimestamp, which counts as a receive of that message). The last 24 hours of the\n"
        "send path from the ledger: calls refused for the account (AUTH_CONFIG), throttled calls,\n"
        "requests waiting (RETRY) and in flight (SENDING). Counts of the OUTCOME_UNKNOWN worklist, of\n"
        "FAILED, REJECTED, SUPPRESSED requests and conflicting duplicates, quarantined and unrecognised\n"
        "postbacks. Whether the own-number check is on (OwnNumbers; a warning when it is empty).\n"
        "Bounded reads: the ledger part is one Scan that stops after --scan-limit items\n"
        "(a count ending in + stopped early too).",
    )
    scan_limit(parser)


def run(args: argparse.Namespace, resources: Resources) -> int:
    document = collect(resources, now=datetime.now(UTC), budget=args.scan_limit)
    if args.json:
        output.document(document)
    else:
        output.text(text(document))
    return output.OK


def text(document: dict[str, Any]) -> str:
    lines = [f"mmsbridge status at {document['at']} ({render.cell(document['where'])})"]
    lines.append(_own_number_line(document["own_numbers"]))
    rows = [
        [
            q["queue"],
            q["visible"],
            q["in_flight"],
            q["delayed"],
            _age(q["oldest_age_s"]) if q["url"] else "(not configured)",
        ]
        for q in document["queues"]
    ]
    lines.append(render.table(["QUEUE", "VISIBLE", "IN FLIGHT", "DELAYED", "OLDEST"], rows))
    source = {q["age_source"] for q in document["queues"]}
    lines.append(
        "  (oldest: CloudWatch ApproximateAgeOfOldestMessage, last 15 minutes)"
        if source == {"cloudwatch"}
        else "  (oldest: the oldest visible message's SentTimestamp, from a peek; local stack)"
    )

    path = document["send_path"]
    account, throttled, pending = path["account_errors"], path["throttled"], path["pending"]
    lines.append(f"send path since {path['since']} (ledger)")
    pairs: list[tuple[str, Any]] = [
        (
            "account errors",
            f"{account['calls']} call(s), {account['requests']} request(s)"
            + (" (AUTH_CONFIG: sending pauses until fixed)" if account["calls"] else ""),
        ),
    ]
    pairs += [
        (f"  {s['at']}", f"{s['request_id']} {s['code'] or ''} {s['detail'] or ''}".strip())
        for s in account["latest"]
    ]
    pairs.append(
        (
            "throttled calls",
            f"{throttled['calls']} call(s), {throttled['requests']} request(s)"
            + (f", latest {throttled['latest_at']} {throttled['latest_code']}" if throttled["calls"] else ""),
        )
    )
    ran_out = f" ({pending['lease_ran_out']} whose lease ran out)" if pending["lease_ran_out"] else ""
    oldest = f", oldest since {pending['oldest_at']}" if pending["oldest_at"] else ""
    pairs.append(("waiting (RETRY)", f"{pending['retry']}{oldest}"))
    pairs.append(("in flight (SENDING)", f"{pending['sending']}{ran_out}"))
    scan = path["scan"]
    coverage = "whole table" if scan["complete"] else f"stopped at --scan-limit {scan['budget']}: partial"
    pairs.append(("ledger scan", f"{scan['scanned']} items read ({coverage})"))
    lines.append(render.fields(pairs))

    lists = document["worklists"]
    unknown = lists["outcome_unknown"]
    lines.append("worklists")
    lines.append(
        render.fields(
            [
                (
                    "outcome unknown",
                    f"{_n(unknown['outstanding'])} outstanding, {_n(unknown['last_24h'])} in the last 24 h"
                    + (" (`unknown` lists them)" if unknown["outstanding"]["count"] else ""),
                ),
                ("failed, 24 h", _n(lists["failed_24h"])),
                ("rejected, 24 h", _n(lists["rejected_24h"])),
                ("suppressed, 24 h", _n(lists["suppressed_24h"])),
                ("conflicting duplicates, 24 h", _n(lists["conflicting_duplicates_24h"])),
                (
                    "quarantined",
                    f"{_n(lists['quarantined']['total'])} in all, {_n(lists['quarantined']['last_24h'])} "
                    "in the last 24 h",
                ),
                ("unrecognised, 24 h", _n(lists["unrecognised_24h"])),
            ]
        )
    )
    return "\n".join(lines)


OWN_NUMBER_LINES = {
    "on": "own-number check: on, {numbers} number(s) in OwnNumbers; postbacks for others are quarantined",
    "off": (
        "WARNING own-number check: OFF. OwnNumbers is empty, so postbacks are applied whatever number they "
        "speak for (docs/security.md)"
    ),
    "invalid": "WARNING own-number check: OwnNumbers is malformed; the consumer cannot start with it",
    "unknown": "own-number check: unknown (the endpoints file lists no parameters)",
}


def _own_number_line(own_numbers: dict[str, Any]) -> str:
    return OWN_NUMBER_LINES[own_numbers["check"]].format(numbers=own_numbers["numbers"])


def _n(counted: dict[str, Any]) -> str:
    return f"{counted['count']}{'' if counted['complete'] else '+'}"


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
