"""`python -m ops`: look inside a running mmsbridge and replay archived postbacks.

Exit codes: 0 ok; 1 not found, or a partial failure; 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.phone_numbers import InvalidNumber
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import SendStatus
from mmsbridge.sending.reconcile import Candidate
from mmsbridge.sending.reconcile_store import Reconciler
from ops import (
    conflicts,
    markers,
    pending,
    rejections,
    render,
    reports,
    request_table,
    sends,
    unrecognised,
)
from ops import messages as outbound_messages
from ops import reconcile as reconciliation
from ops import status as stack_status
from ops.replay import ARCHIVE_PREFIX, Replayer, ReplayResult, read_keys_file
from ops.resources import ConfigError, Resources, resolve
from ops.send_dlq import SendDLQ
from ops.times import parse_moment

OK, NOT_FOUND, USAGE = 0, 1, 2
DEFAULT_LIMIT = 50
# AWS answers that mean "wrong place or no permission": configuration, not a result.
_CONFIG_ERROR_CODES = {
    "ResourceNotFoundException",
    "NoSuchBucket",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "AccessDenied",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
}

DESCRIPTION = """\
The operator CLI of mmsbridge: message states and histories, inbound messages, quarantined postbacks,
stale messages, suppressed numbers; and replaying archived postbacks through the postback queue.
The send path: a send request's timeline (request), the worklists of requests that ended unsent or with
an unknown outcome (requests, unknown), the send DLQ (send-dlq: list, re-drive), and a deliberate re-drive
of one request (resend). Outbound messages to a number (messages), and linking outcome-unknown requests to
the messages they became (reconcile). The stack on one screen: queues, account errors, throttling and
worklists (status); postback events kept but not attributed (unrecognised).

Where the resources are (one of):
  --endpoints-file PATH  the local stack's endpoints file (default: .local/endpoints.json in the project,
                         written by `make run` while it runs); moto's endpoint, dummy credentials
  --stack NAME           a deployed stack: its outputs StateTableName, ArchiveBucketName, PostbackQueueUrl,
                         PostbackDLQUrl, SendQueueUrl, SendDLQUrl; credentials, region (or --region) and
                         endpoint from the environment

Every command prints text for people, or one JSON document with --json (stable keys, ISO 8601 UTC times).
Times (--since, --until) are ISO 8601 (UTC unless an offset is given: 2026-11-25, 2026-11-25T10:00:00Z,
2026-11-25T05:00-05:00) or a duration ago (90m, 24h, 7d); --since is inclusive, --until exclusive.

Exit codes: 0 ok; 1 not found, or a partial failure; 2 a usage or configuration error."""


def main(argv: Sequence[str] | None = None, *, session: Any | None = None) -> int:
    """Run one command; returns the exit code. `session` (a boto3 Session) is for tests and embedding."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.check(args)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        return exit_.code if isinstance(exit_.code, int) else USAGE
    try:
        resources = resolve(
            endpoints_file=args.endpoints_file, stack=args.stack, region=args.region, session=session
        )
        return args.run(args, resources)
    except ConfigError as error:
        _error(f"ops: {error}")
        return USAGE
    except InvalidNumber as error:
        _error(f"ops: that number {error}")
        return USAGE
    except EndpointConnectionError as error:
        _error(f"ops: cannot reach AWS: {error} (if this is the local stack, is `make run` still running?)")
        return USAGE
    except ClientError as error:
        details = error.response.get("Error", {})
        _error(f"ops: AWS refused: {details.get('Code')}: {details.get('Message')}")
        return USAGE if details.get("Code") in _CONFIG_ERROR_CODES else NOT_FOUND
    except BotoCoreError as error:
        _error(f"ops: AWS: {error}")
        return USAGE


# -- the parser --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--endpoints-file", type=Path, metavar="PATH", help="the local stack's endpoints file")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack's name")
    parser.add_argument("--region", metavar="R", help="the deployed stack's region (with --stack)")
    # --json is accepted after the command too.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[[argparse.Namespace, Resources], int], summary: str, details: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=summary,
            description=f"{summary}\n\n{details}".strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run, check=lambda args: None)
        return sub

    message = command(
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

    inbound = command(
        "inbound",
        run_inbound,
        "recent inbound SMS/MMS, to or from a number or all of them, newest first",
        "With --to or --from, one number's (index gsi1, TO#<number>, or gsi2, FROM#<number>); a number is\n"
        "read as the sender reads it (+1 (415) 555-0178 is 14155550178; national format only with the\n"
        "stack's DefaultCountryCode; a number invalid for its country is an error, exit 2). Without,\n"
        "every number's (index gsi3, one partition per UTC day), by default from"
        f" {reports.RECENT_DAYS} days ago.",
    )
    who = inbound.add_mutually_exclusive_group()
    who.add_argument("--to", metavar="NUMBER", help="the receiving number (shortcode or longcode)")
    who.add_argument("--from", dest="sender", metavar="NUMBER", help="the sender's number")
    _time_range(inbound)
    _limit(inbound)

    _outbound_commands(command)

    quarantine = command(
        "quarantine",
        run_quarantine,
        "quarantined postbacks (not understood, not applied), newest first; --show prints one's raw bytes",
        "Lists sha256, reason, detail, first seen and raw S3 key. --show SHA256 prints the archived bytes\n"
        "as text (invalid UTF-8 replaced, control characters shown as \\xNN; never parsed); the details go\n"
        "to stderr, so stdout is the body alone. With --json the exact bytes are in body_b64.",
    )
    quarantine.add_argument("--show", metavar="SHA256", help="print this postback's raw bytes from S3")
    _time_range(quarantine)
    _limit(quarantine)

    stale = command(
        "stale",
        run_stale,
        "sent messages with no final state, sent (or submitted) more than --hours ago, oldest first",
        "The question the hourly StaleMessages metric asks (the template's StaleMessageHours, default 72).",
    )
    stale.add_argument("--hours", type=_positive_float, default=72.0, help="age threshold (default 72)")

    suppression = command(
        "suppression",
        run_suppression,
        "whether a mobile number is suppressed (opted out), since when and why",
        "An opt-out (SUB N302, or an inbound STOP) suppresses the number; a later opt-in (N301) lifts it.\n"
        "Also lists the number's campaign subscriptions. MOBILE is read exactly as the sender reads a\n"
        "request's `to` (the stack's DefaultCountryCode applies), so this answers what the sender checks;\n"
        "a number the sender would refuse is an error (exit 2), never 'not suppressed'.",
    )
    suppression.add_argument("mobile", metavar="MOBILE")

    replay = command(
        "replay",
        run_replay,
        "re-send archived postbacks from S3 through the postback queue (a parser fix applies to past data)",
        f"Each object's exact bytes go on the postback queue as the ingest sent them (same key, SHA-256 of\n"
        f"the bytes, the original received-at and source-ip metadata, request id prefixed `replay:`), in\n"
        f"batches of 10; entries SQS reports failed are retried, and any still failing are reported\n"
        f"(exit 1).\n"
        f"\n"
        f"--since/--until select by the objects' received-at metadata (LastModified when it is missing).\n"
        f"Listing reads the whole {ARCHIVE_PREFIX} prefix (one LIST request per 1000 objects), then one\n"
        f"HEAD request per object modified since --since (minus an hour's margin for clock skew).\n"
        f"--key and --keys-file replay exactly the keys named (a keys file: one per line, # comments,\n"
        f"- for stdin; the output of --dry-run reads back).\n"
        f"\n"
        f"Replaying is safe, and safe to repeat: the consumer's writes are idempotent (each item it writes\n"
        f"is keyed by the postback itself, so writing it again changes nothing, and a message's state is\n"
        f"its highest-ranked report whatever the order), so a postback applied twice changes nothing.\n"
        f"Progress goes to stderr. Exit 1 when any object was skipped or failed.",
    )
    selection = replay.add_mutually_exclusive_group(required=True)
    selection.add_argument("--since", type=_moment, metavar="ISO", help="received at or after this time")
    selection.add_argument(
        "--key",
        action="append",
        dest="keys",
        metavar="KEY",
        help="an S3 key, or a bare SHA-256 for raw/<sha256>.xml (repeatable)",
    )
    selection.add_argument(
        "--keys-file", metavar="FILE", help="a file of S3 keys, one per line (- for stdin)"
    )
    replay.add_argument(
        "--until", type=_moment, metavar="ISO", help="received before this time (with --since)"
    )
    replay.add_argument("--dry-run", action="store_true", help="list what would be sent; send nothing")
    replay.set_defaults(check=lambda args: _check_replay(replay, args))

    prune_markers = command(
        "prune-markers",
        run_prune_markers,
        "remove message state markers that no stored event stands behind (after a replay re-read them)",
        "A message's state is its highest-ranked marker, and markers are only ever added. When the parser\n"
        "reads a code differently (an N102 whose STATUS is `Message Sent/Expired` is UNDELIVERED, not\n"
        "DELIVERED), `replay` rewrites the event with today's state and adds the right marker, but the old\n"
        "one still ranks higher. This deletes every state marker whose code and state no event of its\n"
        "message carries (the sender's SUBMITTED marker is never touched), and prints each message's state\n"
        "afterwards.\n"
        "\n"
        "Repair, in order: replay the postbacks (e.g. `replay --since ...`), wait until the postback queue\n"
        "is empty, then `prune-markers`. Without --tracking-id it scans the table once for messages with a\n"
        "postback's marker. Safe to repeat.",
    )
    prune_markers.add_argument(
        "--tracking-id", action="append", dest="tracking_ids", metavar="TRACKINGID", help="only this message"
    )
    prune_markers.add_argument("--dry-run", action="store_true", help="list what would be removed")

    request = command(
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

    listed = ", ".join(s.value for s in (*sends.LISTED, *pending.PENDING))
    requests = command(
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
        help=f"one of {listed}",
    )
    _time_range(requests)
    _limit(requests)
    pending.add_scan_limit(requests)

    unknown = command(
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
    _time_range(unknown)
    _limit(unknown)

    send_dlq = command(
        "send-dlq",
        run_send_dlq,
        "the send DLQ: list its messages (default), or --redrive them to the send queue",
        "--list shows each message's reason (the mmsbridge-* attributes the sender sets: reason, outcome,\n"
        "code, request id, source message id; none when SQS moved it after too many receives), when it was\n"
        "sent, and its request (request_id, action, to, from), oldest first. Listing takes nothing off the\n"
        "queue: each message is hidden a few seconds at most, and made visible again at once.\n"
        "\n"
        "--redrive moves messages to the send queue one at a time: the same body (and the producer's own\n"
        "attributes) sent to the send queue, then deleted from the DLQ only after the send succeeded. A\n"
        "failed send leaves the message in the DLQ; a failed delete leaves it in both queues (reported:\n"
        "the sender will not send a request twice, but delete the DLQ copy). Exit 1 if any failed.\n"
        "A re-driven request the ledger already closed (FAILED, OUTCOME_UNKNOWN, ...) is acknowledged by\n"
        "the sender as a duplicate: re-drive such a request with `resend`.\n"
        "\n"
        "--request-id ID (repeatable, or several after one flag) keeps to those requests' messages.\n"
        f"--limit N: at most N messages (default: {DEFAULT_LIMIT} listed; every message re-driven).",
    )
    mode = send_dlq.add_mutually_exclusive_group()
    mode.add_argument(
        "--list", action="store_true", help="list the messages, leaving them in place (default)"
    )
    mode.add_argument("--redrive", action="store_true", help="move the messages to the send queue")
    send_dlq.add_argument(
        "--request-id",
        dest="request_ids",
        action="extend",
        nargs="+",
        metavar="ID",
        help="only these requests' messages (repeatable)",
    )
    send_dlq.add_argument("--limit", type=_positive_int, metavar="N", help="at most N messages")

    resend = command(
        "resend",
        run_resend,
        "re-drive ONE send request whose status is OUTCOME_UNKNOWN or FAILED (with --yes)",
        "The ledger goes from its status to RETRY (only if it still has that status; it leaves its\n"
        "worklist; the attempt log records operator_resend; the transient-failure count starts afresh),\n"
        "then its stored body goes on the send queue, and the sender calls the provider again.\n"
        "OUTCOME_UNKNOWN means the provider may already have sent it: resending may send it twice.\n"
        "Refused (exit 2, nothing changed) without --yes, and for any other status: ACCEPTED (sent),\n"
        "SENDING and RETRY (under way), REJECTED (invalid: send a corrected request), SUPPRESSED\n"
        "(opted out). If the send queue refuses the body, the ledger goes back as it was (exit 1).\n"
        "A FAILED request whose error class is PERMANENT (the provider refused it for good: the same\n"
        "request fails the same way unless what it refers to changed) is resent only with --yes\n"
        "--even-if-permanent (exit 2 and nothing changed without), and with a warning. An OUTCOME_UNKNOWN\n"
        "request that has a likely message (a report to its number from its sender inside its attempt\n"
        "window: see `request`) is resent only with --yes --even-if-likely-sent.",
    )
    resend.add_argument("request_id", metavar="REQUEST_ID")
    resend.add_argument(
        "--yes",
        action="store_true",
        help="really re-drive it (it may be a duplicate if the outcome is unknown)",
    )
    resend.add_argument(
        "--even-if-likely-sent",
        action="store_true",
        help="with --yes: re-drive an OUTCOME_UNKNOWN request that has a likely message (see request)",
    )
    resend.add_argument(
        "--even-if-permanent",
        action="store_true",
        help="with --yes: re-drive a FAILED request the provider refused for good (error class PERMANENT)",
    )
    stack_status.register(command)
    unrecognised.register(command, _time_range, _limit)
    return parser


def _time_range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_moment, metavar="ISO", help="at or after this time")
    parser.add_argument("--until", type=_moment, metavar="ISO", help="before this time")


def _limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N (default {DEFAULT_LIMIT})",
    )


def _moment(text: str) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
    return value


def _listed_status(text: str) -> SendStatus:
    value = text.strip().upper().replace("-", "_")
    if value not in {s.value for s in (*sends.LISTED, *pending.PENDING)}:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(s.value for s in (*sends.LISTED, *pending.PENDING))}, not {text!r} "
            "(ACCEPTED requests are messages: `message TRACKINGID`)"
        )
    return SendStatus(value)


def _check_request(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.request_id is None) == (args.sha256 is None):
        parser.error("give REQUEST_ID or --sha256 HEX (one of them)")


def _check_replay(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.until is not None and args.since is None:
        parser.error("--until goes with --since")
    if args.since is not None and args.until is not None and args.until <= args.since:
        parser.error("--until must be after --since")


# -- the commands ------------------------------------------------------------------------------------------
def run_message(args: argparse.Namespace, resources: Resources) -> int:
    document = reports.message(resources.table, args.tracking_id)
    if args.json:
        _print_json({"found": document is not None, **(document or {"tracking_id": args.tracking_id})})
    elif document is None:
        _error(f"no message with TRACKINGID {render.cell(args.tracking_id)} (no state, no history)")
    else:
        _print(_message_text(document))
    return OK if document is not None else NOT_FOUND


def _message_text(document: dict[str, Any]) -> str:
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
        _print_json(
            {
                "to": args.to,
                "from": args.sender,
                "since": _iso(since),
                "until": _iso(args.until),
                "limit": args.limit,
                "count": len(messages),
                "messages": messages,
            }
        )
        return OK
    if args.to is not None:
        who = f"to {args.to}"
    elif args.sender is not None:
        who = f"from {args.sender}"
    else:
        until = f"until {_iso(args.until)}" if args.until else "until now"
        who = f"to any number from {_iso(since)} {until}"
    lines = [f"inbound messages {render.cell(who)}: {len(messages)} (newest first, at most {args.limit})"]
    for item in messages:
        when = item["time"] or "(undated)"
        head = f"{when}  {item['origin']} {item['code']}  from {item['from']}  to {item['to']}"
        lines.append(render.cell(head) + ("  STOP" if item["stop"] else ""))
        for label in ("text", "keyword", "subject", "files"):
            if item[label]:
                lines.append(f"    {label:<8} {render.cell(item[label])}")
        lines.append(f"    {'id':<8} {render.cell(item['id'])}   raw {render.cell(item['raw_key'])}")
    _print("\n".join(lines))
    return OK


def run_quarantine(args: argparse.Namespace, resources: Resources) -> int:
    if args.show is not None:
        return _show_quarantined(args, resources)
    items = reports.quarantine(resources.table, since=args.since, until=args.until, limit=args.limit)
    if args.json:
        _print_json(
            {
                "since": _iso(args.since),
                "until": _iso(args.until),
                "limit": args.limit,
                "count": len(items),
                "postbacks": items,
            }
        )
        return OK
    header = f"quarantined postbacks: {len(items)} (newest first, at most {args.limit})"
    rows = [[i["first_seen"], i["sha256"], i["reason"], i["detail"], i["raw_key"]] for i in items]
    _print(
        header
        + ("\n" + render.table(["FIRST SEEN", "SHA256", "REASON", "DETAIL", "RAW KEY"], rows) if rows else "")
    )
    return OK


def _show_quarantined(args: argparse.Namespace, resources: Resources) -> int:
    sha256 = args.show.strip().lower()
    if not reports.SHA256.fullmatch(sha256):
        _error("--show takes a SHA-256: 64 hexadecimal digits")
        return USAGE
    record = reports.quarantined(resources.table, sha256)
    if record is not None and not record["raw_key"]:
        _error(
            f"{sha256} was quarantined ({record['reason']}: {render.cell(record['detail'])}) but has no raw "
            "bytes in S3: the queue message itself was not a postback envelope"
        )
        return NOT_FOUND
    key = record["raw_key"] if record else f"{ARCHIVE_PREFIX}{sha256}.xml"
    try:
        body = resources.client("s3").get_object(Bucket=resources.bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        _error(f"no archived object s3://{resources.bucket}/{key}")
        return NOT_FOUND
    if args.json:
        _print_json(
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
        return OK
    if record:
        _error(f"# quarantined {record['first_seen']}: {record['reason']}: {render.cell(record['detail'])}")
    else:
        _error(f"# not quarantined; archived postback {sha256}")
    _error(f"# s3://{resources.bucket}/{key} ({len(body)} bytes)")
    text = render.body_text(body)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return OK


def run_stale(args: argparse.Namespace, resources: Resources) -> int:
    document = reports.stale(resources.table, hours=args.hours, now=datetime.now(UTC))
    if args.json:
        _print_json(document)
        return OK
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
    _print(header + ("\n" + render.table(columns, rows) if rows else ""))
    return OK


def run_suppression(args: argparse.Namespace, resources: Resources) -> int:
    document = reports.suppression(
        resources.table, args.mobile, default_country_code=resources.default_country_code
    )
    if args.json:
        _print_json(document)
        return OK
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
    _print("\n".join(lines))
    return OK


def run_replay(args: argparse.Namespace, resources: Resources) -> int:
    replayer = Replayer(
        s3=resources.client("s3"),
        sqs=resources.client("sqs"),
        bucket=resources.bucket,
        queue_url="" if args.dry_run else resources.queue_url,
    )
    if args.since is not None:
        result = replayer.by_time(args.since, args.until, dry_run=args.dry_run)
    else:
        keys = args.keys or []
        if args.keys_file:
            keys = read_keys_file(_read_lines(args.keys_file))
        result = replayer.by_keys(keys, dry_run=args.dry_run)
    if args.json:
        _print_json(result.to_json())
    else:
        _print(_replay_text(result))
    return result.exit_code


def run_prune_markers(args: argparse.Namespace, resources: Resources) -> int:
    result = markers.prune(resources.table, args.tracking_ids, dry_run=args.dry_run)
    if args.json:
        _print_json(result.to_json())
        return OK
    verb = "would remove" if result.dry_run else "removed"
    lines = [f"prune-markers: {len(result.removed)} marker(s) {verb}, {result.messages} message(s) examined"]
    rows = [[r["tracking_id"], r["marker"], r["marker_state"], r["state_after"]] for r in result.removed]
    if rows:
        lines.append(render.table(["TRACKINGID", "MARKER", "MARKER STATE", "STATE AFTER"], rows))
    _print("\n".join(lines))
    return OK


def _read_lines(path: str) -> list[str]:
    if path == "-":
        return sys.stdin.read().splitlines()
    try:
        return Path(path).read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"keys file {path}: {error.strerror or error}") from None


def _replay_text(result: ReplayResult) -> str:
    where = f" (listed {result.listed} under {ARCHIVE_PREFIX})" if result.listed is not None else ""
    lines = []
    if result.dry_run:
        skipped = {s["key"] for s in result.skipped}
        lines += [render.cell(key) for key in result.keys if key not in skipped]
        lines.append(
            f"# dry run: found {len(result.keys)}{where}, would send {len(result.keys) - len(skipped)}, "
            f"skipped {len(skipped)}; nothing sent"
        )
        lines += [f"# skipped {render.cell(s['key'])}: {render.cell(s['reason'])}" for s in result.skipped]
        return "\n".join(lines)
    lines.append(
        f"replay: found {len(result.keys)}{where}, sent {result.sent}, failed {len(result.failures)}, "
        f"skipped {len(result.skipped)}"
    )
    lines += [
        f"  failed   {render.cell(f['key'])}: {render.cell(f['code'])}: {render.cell(f['message'])}"
        for f in result.failures
    ]
    lines += [f"  skipped  {render.cell(s['key'])}: {render.cell(s['reason'])}" for s in result.skipped]
    return "\n".join(lines)


# -- the send path -----------------------------------------------------------------------------------------
def run_request(args: argparse.Namespace, resources: Resources) -> int:
    sha256 = None
    if args.sha256 is not None:
        sha256 = args.sha256.strip().lower()
        if not reports.SHA256.fullmatch(sha256):
            _error("--sha256 takes a SHA-256: 64 hexadecimal digits")
            return USAGE
    document = sends.request(resources.table, args.request_id, sha256=sha256)
    if document is None and sha256 is None:  # refused, stored by its hash: found by the id it carried
        document = rejections.find_carried(resources.table, args.request_id)
    if document is not None:  # an OUTCOME_UNKNOWN request's likely message, or a reconciled one's record
        document["reconciliation"] = reconciliation.for_request(resources.table, document["key"])
    if args.json:
        missing = {"request_id": args.request_id, "payload_sha256": sha256}
        _print_json({"found": document is not None, **(document or missing)})
    elif document is None:
        if sha256 is None:
            where = rejections.not_found_hint(render.cell(args.request_id))
            _error(f"no send request with request_id {render.cell(args.request_id)} in the ledger: {where}")
        else:
            _error(
                f"no refused body with SHA-256 {sha256} in the ledger (only a body without a usable "
                "request_id is kept by its hash; one with a request_id is found by it: `request ID`)"
            )
    else:
        _print(_request_text(document))
    return OK if document is not None else NOT_FOUND


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
            lines.append(_message_text(document["message"]))
    return "\n".join(lines)


def run_requests(args: argparse.Namespace, resources: Resources) -> int:
    return _requests(args, resources, args.status)


def run_unknown(args: argparse.Namespace, resources: Resources) -> int:
    return _requests(args, resources, SendStatus.OUTCOME_UNKNOWN)


def _requests(args: argparse.Namespace, resources: Resources, status: SendStatus) -> int:
    if status in pending.PENDING:  # on no index: a bounded scan
        return pending.run(args, resources, status)
    items = sends.requests(resources.table, status, since=args.since, until=args.until, limit=args.limit)
    plans = {}
    if status == SendStatus.OUTCOME_UNKNOWN:  # each request's likely message (ops/reconcile.py)
        plans = reconciliation.for_unknown(resources.table, items)
        for item in items:
            item["reconciliation"] = plans.get(item["key"])
    if args.json:
        _print_json(
            {
                "status": status.value,
                "since": _iso(args.since),
                "until": _iso(args.until),
                "limit": args.limit,
                "count": len(items),
                "requests": items,
            }
        )
        return OK
    lines = [f"{status.value} send requests: {len(items)} (newest first, at most {args.limit})"]
    rows = request_table.table(items)  # ids abbreviated, lines cut at request_table.MAX_WIDTH
    lines += rows
    if status == SendStatus.OUTCOME_UNKNOWN and rows:
        lines += reconciliation.unknown_lines(items, plans)
    _print("\n".join(lines))
    return OK


def run_send_dlq(args: argparse.Namespace, resources: Resources) -> int:
    request_ids = set(args.request_ids) if args.request_ids else None
    if not args.redrive:
        limit = args.limit or DEFAULT_LIMIT
        messages = SendDLQ(resources.client("sqs"), dlq_url=resources.send_dlq_url).list(
            limit=limit, request_ids=request_ids
        )
        if args.json:
            _print_json(
                {
                    "queue_url": resources.send_dlq_url,
                    "request_ids": sorted(request_ids) if request_ids else None,
                    "limit": limit,
                    "count": len(messages),
                    "messages": messages,
                }
            )
            return OK
        lines = [
            f"send DLQ: {len(messages)} message{'s' if len(messages) != 1 else ''} "
            f"(oldest first, at most {limit}; listing leaves them in the queue)"
        ]
        rows = [
            [
                m["sent_at"],
                m["message_id"],
                m["request_id"],
                m["action"],
                m["to"],
                m["outcome"],
                m["code"],
                m["reason"] or ("(none: moved by SQS)" if m["outcome"] is None else None),
            ]
            for m in messages
        ]
        if rows:
            columns = ["SENT AT", "MESSAGE ID", "REQUEST ID", "ACTION", "TO", "OUTCOME", "CODE", "REASON"]
            lines.append(render.table(columns, rows))
        _print("\n".join(lines))
        return OK
    dlq = SendDLQ(resources.client("sqs"), dlq_url=resources.send_dlq_url, queue_url=resources.send_queue_url)
    result = dlq.redrive(limit=args.limit, request_ids=request_ids)
    if args.json:
        _print_json(
            {
                "queue_url": resources.send_queue_url,
                "dlq_url": resources.send_dlq_url,
                "request_ids": sorted(request_ids) if request_ids else None,
                "limit": args.limit,
                **result.to_json(),
            }
        )
        return result.exit_code
    lines = [
        f"send DLQ redrive: found {result.found}, moved {len(result.moved)}, failed {len(result.failures)}, "
        f"skipped {result.skipped}"
    ]
    lines += [
        f"  moved   {render.cell(m['message_id'])} (request {render.cell(m['request_id'])}) "
        f"-> send queue {render.cell(m['new_message_id'])}"
        for m in result.moved
    ]
    for failure in result.failures:
        where = (
            "still in the DLQ"
            if failure["stage"] == "send"
            else f"sent as {failure['new_message_id']} but still in the DLQ too: delete it there by hand"
        )
        lines.append(
            f"  failed  {render.cell(failure['message_id'])} (request {render.cell(failure['request_id'])}): "
            f"{failure['stage']}: {render.cell(failure['error'])}; {where}"
        )
    _print("\n".join(lines))
    return result.exit_code


def run_resend(args: argparse.Namespace, resources: Resources) -> int:
    table, queue_url = resources.table, resources.send_queue_url  # both named before anything changes
    ledger = table.get(f"REQ#{args.request_id}", "REQUEST")
    if ledger is None:
        if args.json:
            _print_json(_resend_refusal(args.request_id, None, "no such request"))
        _error(f"no send request with request_id {render.cell(args.request_id)} in the ledger")
        return NOT_FOUND
    try:
        sends.resendable(ledger)
        permanent = sends.permanent_warning(ledger)
        if permanent is not None:
            if not (args.yes and args.even_if_permanent):
                raise sends.ResendRefused(
                    f"not resending {args.request_id} (FAILED, PERMANENT) without --yes --even-if-permanent; "
                    f"nothing changed. {permanent}",
                    ledger,
                )
            _error(render.cell(permanent))  # resending anyway, as asked
        likely = _likely_message(table, ledger)
        if likely is not None and not (args.yes and args.even_if_likely_sent):
            raise sends.ResendRefused(
                f"not resending {args.request_id} (OUTCOME_UNKNOWN) without --yes --even-if-likely-sent: "
                f"message {likely.tracking_id} to the same number from the same sender reported "
                f"{likely.first_report_code} at {iso(likely.first_report_at)}, inside its attempt window, so "
                f"the provider probably sent it; a resend would deliver it twice. See `python -m ops request "
                f"{args.request_id}`; nothing changed.",
                ledger,
            )
        if not args.yes:
            warning = (
                " The provider may already have sent it: resending may deliver it twice."
                if ledger["status"] == SendStatus.OUTCOME_UNKNOWN
                else ""
            )
            raise sends.ResendRefused(
                f"not resending {args.request_id} ({ledger['status']}) without --yes: it would go back to "
                f"RETRY and its stored body onto the send queue.{warning}",
                ledger,
            )
        result = sends.resend(table, resources.client("sqs"), queue_url, ledger, now=datetime.now(UTC))
    except sends.ResendRefused as refusal:
        if args.json:
            _print_json(_resend_refusal(args.request_id, refusal.ledger, str(refusal)))
        _error(render.cell(str(refusal)))
        return USAGE
    if args.json:
        _print_json(result.to_json(queue_url))
    elif result.queued:
        _print(
            f"resent {render.cell(result.request_id)}: {result.previous_status} -> RETRY; its body is on the "
            f"send queue (message {result.message_id}). Follow it with "
            f"`python -m ops request {render.cell(result.request_id)}`."
        )
    elif result.restored:
        _error(
            f"resend of {render.cell(result.request_id)} failed: the send queue refused its body "
            f"({render.cell(result.error)}); its ledger is back at {result.previous_status}, nothing changed"
        )
    else:
        _error(
            f"resend of {render.cell(result.request_id)} failed: the send queue refused its body "
            f"({render.cell(result.error)}), and its ledger could not be put back: it says RETRY with "
            f"nothing on the queue. Put its body (field body of `python -m ops --json request "
            f"{render.cell(result.request_id)}`) on the send queue {queue_url}"
        )
    return OK if result.queued else NOT_FOUND


def _likely_message(table: StateTable, ledger: dict[str, Any]) -> Candidate | None:
    """An OUTCOME_UNKNOWN request's likely message (reconciliation's evidence), else None."""
    if ledger.get("status") != SendStatus.OUTCOME_UNKNOWN:
        return None
    plan = Reconciler(table).plan(ledger, now=datetime.now(UTC))
    return plan.likely if plan is not None else None


def _resend_refusal(request_id: str, ledger: dict[str, Any] | None, why: str) -> dict[str, Any]:
    status = ledger.get("status") if ledger else None
    return {
        "request_id": request_id,
        "found": ledger is not None,
        "previous_status": status,
        "status": status,
        "resent": False,
        "refusal": why,
        "queue_url": None,
        "message_id": None,
        "error": None,
        "restored": None,
    }


# -- outbound messages and reconciliation ------------------------------------------------------------------
def _outbound_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    messages = command(
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
    _time_range(messages)
    _limit(messages)

    reconcile = command(
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
    _time_range(reconcile)
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
        _print_json(document)
        return OK
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
    _print("\n".join(lines))
    return OK


def _linked_request(message: dict[str, Any]) -> str:
    if not message["linked"]:
        return "(none)"
    return f"{message['request_id']}{' (reconciled)' if message['reconciled_at'] else ''}"


def run_reconcile(args: argparse.Namespace, resources: Resources) -> int:
    document = reconciliation.run(resources.table, dry_run=args.dry_run, since=args.since, until=args.until)
    if args.json:
        _print_json(document)
    else:
        _print(reconciliation.run_text(document))
    return OK


def _reconciliation_lines(found: dict[str, Any] | None) -> list[str]:
    if not found:
        return []
    if found.get("reconciled"):
        return reconciliation.reconciled_lines(found["reconciled"])
    if found.get("plan"):
        return reconciliation.plan_lines(found["plan"])
    return [f"likely message: {found.get('reason')}"]


# -- output ------------------------------------------------------------------------------------------------
def _iso(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reports.plain(document), indent=2, ensure_ascii=False) + "\n")


def _error(text: str) -> None:
    sys.stderr.write(f"{text}\n")
