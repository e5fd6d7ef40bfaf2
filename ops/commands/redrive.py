"""Sending again: the send DLQ (`send-dlq`: list its messages, or re-drive them to the send queue), and a
deliberate re-drive of one request (`resend`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import SendStatus
from mmsbridge.sending.reconcile import Candidate
from mmsbridge.sending.reconcile_store import Reconciler
from ops import output, render, sends
from ops.commands.arguments import DEFAULT_LIMIT, Commands, positive_int
from ops.resources import Resources
from ops.send_dlq import SendDLQ


def register(commands: Commands) -> None:
    send_dlq = commands.add(
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
    send_dlq.add_argument("--limit", type=positive_int, metavar="N", help="at most N messages")

    resend = commands.add(
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


# -- send-dlq ----------------------------------------------------------------------------------------------
def run_send_dlq(args: argparse.Namespace, resources: Resources) -> int:
    request_ids = set(args.request_ids) if args.request_ids else None
    if not args.redrive:
        return _list_send_dlq(args, resources, request_ids)
    dlq = SendDLQ(resources.client("sqs"), dlq_url=resources.send_dlq_url, queue_url=resources.send_queue_url)
    result = dlq.redrive(limit=args.limit, request_ids=request_ids)
    if args.json:
        output.document(
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
    output.text("\n".join(lines))
    return result.exit_code


def _list_send_dlq(args: argparse.Namespace, resources: Resources, request_ids: set[str] | None) -> int:
    limit = args.limit or DEFAULT_LIMIT
    messages = SendDLQ(resources.client("sqs"), dlq_url=resources.send_dlq_url).list(
        limit=limit, request_ids=request_ids
    )
    if args.json:
        output.document(
            {
                "queue_url": resources.send_dlq_url,
                "request_ids": sorted(request_ids) if request_ids else None,
                "limit": limit,
                "count": len(messages),
                "messages": messages,
            }
        )
        return output.OK
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
    output.text("\n".join(lines))
    return output.OK


# -- resend ------------------------------------------------------------------------------------------------
def run_resend(args: argparse.Namespace, resources: Resources) -> int:
    table, queue_url = resources.table, resources.send_queue_url  # both named before anything changes
    ledger = table.get(f"REQ#{args.request_id}", "REQUEST")
    if ledger is None:
        if args.json:
            output.document(_resend_refusal(args.request_id, None, "no such request"))
        output.error(f"no send request with request_id {render.cell(args.request_id)} in the ledger")
        return output.NOT_FOUND
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
            output.error(render.cell(permanent))  # resending anyway, as asked
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
            output.document(_resend_refusal(args.request_id, refusal.ledger, str(refusal)))
        output.error(render.cell(str(refusal)))
        return output.USAGE
    if args.json:
        output.document(result.to_json(queue_url))
    elif result.queued:
        output.text(
            f"resent {render.cell(result.request_id)}: {result.previous_status} -> RETRY; its body is on the "
            f"send queue (message {result.message_id}). Follow it with "
            f"`python -m ops request {render.cell(result.request_id)}`."
        )
    elif result.restored:
        output.error(
            f"resend of {render.cell(result.request_id)} failed: the send queue refused its body "
            f"({render.cell(result.error)}); its ledger is back at {result.previous_status}, nothing changed"
        )
    else:
        output.error(
            f"resend of {render.cell(result.request_id)} failed: the send queue refused its body "
            f"({render.cell(result.error)}), and its ledger could not be put back: it says RETRY with "
            f"nothing on the queue. Put its body (field body of `python -m ops --json request "
            f"{render.cell(result.request_id)}`) on the send queue {queue_url}"
        )
    return output.OK if result.queued else output.NOT_FOUND


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
