"""The send requests' ledger: one request's timeline (`request`), and the worklists of requests that ended
unsent or with an unknown outcome, or are still under way (`requests`, `unknown`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import SendStatus
from ops import conflicts, output, pending, rejections, render, reports, request_table, sends
from ops import reconcile as reconciliation
from ops.commands.arguments import Commands, limit, scan_limit, time_range
from ops.commands.messages import message_text
from ops.resources import Resources
from ops.times import iso_or_none

LISTED = (*sends.LISTED, *pending.PENDING)  # the statuses `requests --status` takes


def register(commands: Commands) -> None:
    request = commands.add(
        "request",
        run_request,
        "a send request's timeline: its status, every attempt, the provider's answer, the message it became",
        "The sender's ledger of REQUEST_ID: status and what it means, the request (action, to, from), when\n"
        "it was received and last changed, the counts of claims, provider calls, throttled calls and\n"
        "failures; every attempt (time, outcome, code, detail), oldest first; the provider's answer\n"
        "(TRACKINGID, or error code, class and info; for REJECTED, each field's reason); and, once\n"
        "ACCEPTED, the message's state and history as `message TRACKINGID` shows them (sent, delivered, or\n"
        "why not). --sha256 finds a refused body that had no usable request_id (`requests --status\n"
        "REJECTED` lists it). With --json the stored request body is in `body`. Exit 1 when unknown.",
    )
    request.add_argument("request_id", nargs="?", metavar="REQUEST_ID")
    request.add_argument(
        "--sha256", metavar="HEX", help="a refused body without a request_id, by its SHA-256"
    )
    request.set_defaults(check=lambda args: _check_request(request, args))

    requests = commands.add(
        "requests",
        run_requests,
        "send requests that ended unsent or with an unknown outcome, or are still under way, by status",
        "Final statuses other than ACCEPTED, each a worklist (index gsi1, SEND#<status>): "
        f"{', '.join(s.value for s in sends.LISTED)}.\n"
        "RETRY (waiting for the next delivery) and SENDING (held by an attempt) are on no index: a Scan\n"
        "of the table with a filter finds them, reading at most --scan-limit items (it says when it\n"
        "stopped before the end). --since/--until select by the time the request got its status; newest\n"
        "first. `unknown` is `requests --status OUTCOME_UNKNOWN`.",
    )
    requests.add_argument(
        "--status",
        required=True,
        type=_listed_status,
        metavar="STATUS",
        help=f"one of {', '.join(s.value for s in LISTED)}",
    )
    time_range(requests)
    limit(requests)
    scan_limit(requests)

    unknown = commands.add(
        "unknown",
        run_unknown,
        "send requests whose outcome is unknown (requests --status OUTCOME_UNKNOWN): the worklist",
        "The call may or may not have reached the provider (a timeout after sending, a lost answer, an\n"
        "attempt that stopped mid-call): the sender never calls again on its own. Each request's likely\n"
        "message is shown: the one unlinked message to its TO from its FROM whose first report fell in its\n"
        "attempt window (`reconcile` links it once the window has settled). Check the others with the\n"
        "provider (by number and time: `messages --to NUMBER`); if one was not sent, `resend REQUEST_ID\n"
        "--yes` re-drives it.",
    )
    time_range(unknown)
    limit(unknown)


def _listed_status(text: str) -> SendStatus:
    value = text.strip().upper().replace("-", "_")
    if value not in {s.value for s in LISTED}:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(s.value for s in LISTED)}, not {text!r} "
            "(ACCEPTED requests are messages: `message TRACKINGID`)"
        )
    return SendStatus(value)


def _check_request(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.request_id is None) == (args.sha256 is None):
        parser.error("give REQUEST_ID or --sha256 HEX (one of them)")


# -- request -----------------------------------------------------------------------------------------------
def run_request(args: argparse.Namespace, resources: Resources) -> int:
    sha256 = None
    if args.sha256 is not None:
        sha256 = args.sha256.strip().lower()
        if not reports.SHA256.fullmatch(sha256):
            output.error("--sha256 takes a SHA-256: 64 hexadecimal digits")
            return output.USAGE
    document = sends.request(resources.table, args.request_id, sha256=sha256)
    if document is None and sha256 is None:  # refused, stored by its hash: found by the id it carried
        document = rejections.find_carried(resources.table, args.request_id)
    if document is not None:  # an OUTCOME_UNKNOWN request's likely message, or a reconciled one's record
        document["reconciliation"] = reconciliation.for_request(resources.table, document["key"])
    if args.json:
        missing = {"request_id": args.request_id, "payload_sha256": sha256}
        output.document({"found": document is not None, **(document or missing)})
    elif document is None:
        if sha256 is None:
            where = rejections.not_found_hint(render.cell(args.request_id))
            output.error(
                f"no send request with request_id {render.cell(args.request_id)} in the ledger: {where}"
            )
        else:
            output.error(
                f"no refused body with SHA-256 {sha256} in the ledger (only a body without a usable "
                "request_id is kept by its hash; one with a request_id is found by it: `request ID`)"
            )
    else:
        output.text(_request_text(document))
    return output.OK if document is not None else output.NOT_FOUND


def _request_text(document: dict[str, Any]) -> str:
    who = document["request_id"] if document["request_id"] is not None else f"(none; {document['key']})"
    lines = [f"send request {render.cell(who)}: {document['status']}"]
    if document["meaning"]:
        lines.append(f"  {document['meaning']}")
    lines += rejections.carried_lines(document)
    counts = document["counts"]
    pairs: list[tuple[str, Any]] = [
        (name.replace("_", " "), document[name])
        for name in sends.REQUEST_FIELDS
        if document[name] is not None or name in ("action", "to", "from")
    ]
    pairs += [
        ("received at", document["received_at"]),
        ("updated at", document["updated_at"]),
        (
            "counts",
            ", ".join(f"{name.replace('_', ' ')} {counts[name]}" for name in sends.COUNTERS),
        ),
        ("payload sha256", document["payload_sha256"]),
    ]
    if document["status"] == SendStatus.SENDING:
        lease = document["lease_until"]
        if lease and lease < iso(datetime.now(UTC)):
            lease += " (ran out: the attempt may have stopped; the next delivery of the request decides)"
        pairs += [("attempt started", document["attempt_started"]), ("lease until", lease)]
    lines.append(render.fields(pairs))

    attempts = document["attempts"]
    lines.append(f"attempts: {len(attempts)} logged, oldest first")
    if attempts:
        rows = [[a["at"], a["outcome"], a["code"], a["detail"]] for a in attempts]
        lines.append(render.table(["TIME", "OUTCOME", "CODE", "DETAIL"], rows))
    lines += conflicts.lines(document.get("conflicting_duplicates"))

    provider = document["provider"]
    status = document["status"]
    if status == SendStatus.ACCEPTED:
        names = ("tracking_id", "provider_mms_id", "provider_to", "provider_from", "status_details")
        lines.append(f"provider's answer: accepted at {document['provider']['accepted_at']}")
        lines.append(render.fields([(name.replace("_", " "), provider[name]) for name in names]))
    elif status == SendStatus.REJECTED:
        lines.append(f"refused: {len(document['reasons'])} reason(s)")
        if document["reasons"]:
            rows = [[r["field"], r["reason"]] for r in document["reasons"]]
            lines.append(render.table(["FIELD", "REASON"], rows))
    elif status in (SendStatus.RETRY, SendStatus.SENDING):
        if provider["last_code"] or provider["last_detail"]:
            lines.append("last attempt:")
            lines.append(
                render.fields([("code", provider["last_code"]), ("detail", provider["last_detail"])])
            )
    else:
        names = ("error_code", "error_class", "error_info", "transport_error", "http_status")
        if status == SendStatus.OUTCOME_UNKNOWN:
            names += ("outcome_unknown_reason",)
        if provider["provider_tracking_id"]:
            names += ("provider_tracking_id",)
        if provider["error_code"] or provider["http_status"]:
            lines.append("provider's answer:")
        elif provider["transport_error"]:
            lines.append("no usable answer from the provider:")
        else:
            lines.append("why:")
        lines.append(render.fields([(name.replace("_", " "), provider[name]) for name in names]))

    lines += _reconciliation_lines(document.get("reconciliation"))
    tracking_id = provider["tracking_id"]
    if status == SendStatus.ACCEPTED and tracking_id:
        lines.append("")
        if document["message"] is None:
            lines.append(
                f"message {render.cell(tracking_id)}: nothing under this TRACKINGID yet (no outbound record, "
                "no report; a redelivery of the request writes the outbound record)"
            )
        else:
            lines.append(message_text(document["message"]))
    return "\n".join(lines)


def _reconciliation_lines(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    if found.get("reconciled"):
        return reconciliation.reconciled_lines(found["reconciled"])
    if found.get("plan"):
        return reconciliation.plan_lines(found["plan"])
    return [f"likely message: {found.get('reason')}"]


# -- the worklists -----------------------------------------------------------------------------------------
def run_requests(args: argparse.Namespace, resources: Resources) -> int:
    if args.status in pending.PENDING:  # on no index: a bounded scan
        return _pending(args, resources, args.status)
    return _worklist(args, resources, args.status)


def run_unknown(args: argparse.Namespace, resources: Resources) -> int:
    return _worklist(args, resources, SendStatus.OUTCOME_UNKNOWN)


def _worklist(args: argparse.Namespace, resources: Resources, status: SendStatus) -> int:
    items = sends.requests(resources.table, status, since=args.since, until=args.until, limit=args.limit)
    plans = {}
    if status == SendStatus.OUTCOME_UNKNOWN:  # each request's likely message (ops/reconcile.py)
        plans = reconciliation.for_unknown(resources.table, items)
        for item in items:
            item["reconciliation"] = plans.get(item["key"])
    if args.json:
        output.document(
            {
                "status": status.value,
                "since": iso_or_none(args.since),
                "until": iso_or_none(args.until),
                "limit": args.limit,
                "count": len(items),
                "requests": items,
            }
        )
        return output.OK
    lines = [f"{status.value} send requests: {len(items)} (newest first, at most {args.limit})"]
    rows = request_table.table(items)  # ids abbreviated, lines cut at request_table.MAX_WIDTH
    lines += rows
    if status == SendStatus.OUTCOME_UNKNOWN and rows:
        lines += reconciliation.unknown_lines(items, plans)
    output.text("\n".join(lines))
    return output.OK


def _pending(args: argparse.Namespace, resources: Resources, status: SendStatus) -> int:
    items, scanned = pending.requests(
        resources.table,
        status,
        since=args.since,
        until=args.until,
        limit=args.limit,
        budget=args.scan_limit,
    )
    if args.json:
        output.document(
            {
                "status": status.value,
                "since": iso_or_none(args.since),
                "until": iso_or_none(args.until),
                "limit": args.limit,
                "count": len(items),
                "requests": items,
                "scan": scanned.to_json(),
            }
        )
        return output.OK
    meaning = "waiting for their next delivery" if status == SendStatus.RETRY else "held by an attempt now"
    lines = [
        f"{status.value} send requests ({meaning}): {len(items)} (newest first, at most {args.limit}; "
        f"{scanned.note()})",
        *request_table.table(items),
    ]
    output.text("\n".join(lines))
    return output.OK
