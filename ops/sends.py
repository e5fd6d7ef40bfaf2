"""The sender's ledger as the operator sees it: one request's timeline, the worklists of final, not-accepted
requests (gsi1 `SEND#<status>`), and a deliberate re-drive of one request.

Key design and statuses: `mmsbridge.sending.ledger` (its docstring lists the sender's keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mmsbridge.aws.state_table import StateTable, to_dynamo
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import LEDGER_SK, SendStatus, ledger_key
from ops import conflicts, rejections, reports

# The worklists: final statuses other than ACCEPTED, each listed on gsi1 under SEND#<status>.
LISTED = (SendStatus.OUTCOME_UNKNOWN, SendStatus.FAILED, SendStatus.REJECTED, SendStatus.SUPPRESSED)
# What an operator may re-drive: the provider may not have sent it (OUTCOME_UNKNOWN), or refused it (FAILED).
RESENDABLE = (SendStatus.OUTCOME_UNKNOWN, SendStatus.FAILED)
RESEND_OUTCOME = "operator_resend"
RESEND_UNDONE_OUTCOME = "operator_resend_undone"

# The request as the producer sent it (send_ledger.request_summary), in display order.
REQUEST_FIELDS = ("action", "to", "from", "campaign_ref", "mms_id", "name")
COUNTERS = ("claims", "calls", "throttled", "transient_failures", "account_errors")
# What the provider answered: ACCEPTED keeps the first six; a failure the rest.
PROVIDER_FIELDS = (
    "tracking_id",
    "provider_mms_id",
    "provider_to",
    "provider_from",
    "status_details",
    "accepted_at",
    "error_code",
    "error_class",
    "error_info",
    "transport_error",
    "http_status",
    "provider_tracking_id",
    "outcome_unknown_reason",
    "last_code",
    "last_detail",
)
ATTEMPT_FIELDS = ("at", "outcome", "code", "detail")

_WHAT_IT_MEANS: dict[str, str] = {
    SendStatus.SENDING: "an attempt holds it and may be calling the provider",
    SendStatus.RETRY: "no attempt holds it; the next delivery from the send queue may call the provider",
    SendStatus.ACCEPTED: "the provider accepted it",
    SendStatus.REJECTED: "refused before any call to the provider; not sent",
    SendStatus.SUPPRESSED: "not sent: the number is on the suppression list (opted out)",
    SendStatus.FAILED: "the provider refused it, or it failed too often; not sent",
    SendStatus.OUTCOME_UNKNOWN: (
        "the call may or may not have reached the provider: check with the provider whether it was sent; "
        "`resend REQUEST_ID --yes` re-drives it if it was not"
    ),
}


# -- reading -------------------------------------------------------------------------------------------
def request(
    table: StateTable, request_id: str | None = None, *, sha256: str | None = None
) -> dict[str, Any] | None:
    """One ledger (by request_id, or a refused body without one by its SHA-256) as a timeline: the request,
    its status, every attempt, the provider's answer and, once accepted, the message it became."""
    pk = ledger_key(request_id)["pk"] if request_id is not None else f"REJECTED#{sha256}"
    item = table.get(pk, LEDGER_SK)
    if item is None:
        return None
    status = item.get("status")
    document: dict[str, Any] = {
        "key": pk,
        "request_id": item.get("request_id"),
        "status": status,
        "meaning": _WHAT_IT_MEANS.get(str(status)),
        **{name: reports.plain(item.get(name)) for name in REQUEST_FIELDS},
        "payload_sha256": item.get("payload_sha256"),
        "received_at": item.get("received_at"),
        "updated_at": item.get("updated_at"),
        "attempt_started": item.get("attempt_started"),
        "lease_until": _epoch_iso(item.get("lease_until")),
        "counts": {name: int(item.get(name) or 0) for name in COUNTERS},
        "provider": {name: reports.plain(item.get(name)) for name in PROVIDER_FIELDS},
        "reasons": [
            {"field": reason.get("field"), "reason": reason.get("reason")}
            for reason in item.get("reasons") or []
        ],
        "attempts": [
            {name: reports.plain(entry.get(name)) for name in ATTEMPT_FIELDS}
            for entry in item.get("attempt_log") or []
        ],
        "body": item.get("body"),
        "message": None,
        "conflicting_duplicates": conflicts.for_ledger(table, pk),
        "request_id_given": item.get("request_id_given"),  # a refused body's unusable request_id
    }
    document.update({name: reports.plain(value) for name, value in rejections.addressing(item).items()})
    tracking_id = item.get("tracking_id")
    if status == SendStatus.ACCEPTED and tracking_id:
        document["message"] = reports.message(table, tracking_id)
    return document


def requests(
    table: StateTable,
    status: SendStatus,
    *,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Final, not-accepted requests with this status (gsi1 `SEND#<status>`, by the time they got it), newest
    first."""
    items = table.query(
        f"SEND#{status.value}",
        index="gsi1",
        sk_between=reports.sk_range(since, until),
        forward=False,
        limit=limit,
    )
    return [_listed(item) for item in items]


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": str(item.get("gsi1sk", "")).partition("#")[0] or item.get("updated_at"),
        "request_id": item.get("request_id"),
        "key": item["pk"],
        "payload_sha256": item.get("payload_sha256"),
        "status": item.get("status"),
        **{name: reports.plain(value) for name, value in rejections.addressing(item).items()},
        "code": item.get("error_code") or item.get("transport_error"),
        "error_class": item.get("error_class"),
        "detail": why(item),
    }


def why(item: dict[str, Any]) -> str | None:
    """In one line, why a request ended where it did."""
    if item.get("status") == SendStatus.REJECTED:
        reasons = item.get("reasons") or []
        return "; ".join(f"{r.get('field')}: {r.get('reason')}" for r in reasons) or None
    if item.get("status") == SendStatus.OUTCOME_UNKNOWN:
        return item.get("outcome_unknown_reason") or item.get("error_info")
    return item.get("error_info")


def _epoch_iso(value: Any) -> str | None:
    if not isinstance(value, Decimal | int | float):
        return None
    return iso(datetime.fromtimestamp(float(value), UTC))


# -- re-driving one request ------------------------------------------------------------------------
class ResendRefused(Exception):
    """The request may not be re-driven (its status, or nothing to send); nothing was changed."""

    def __init__(self, message: str, ledger: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.ledger = ledger


@dataclass
class ResendResult:
    request_id: str
    previous_status: str
    status: str  # the ledger's status now: RETRY when the body is on the queue
    queued: bool
    message_id: str | None = None
    error: str | None = None  # why the body is not on the queue
    restored: bool | None = None  # after a failed send: the ledger is back at previous_status

    def to_json(self, queue_url: str) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "found": True,
            "previous_status": self.previous_status,
            "status": self.status,
            "resent": self.queued,
            "refusal": None,
            "queue_url": queue_url,
            "message_id": self.message_id,
            "error": self.error,
            "restored": self.restored,
        }


def resendable(ledger: dict[str, Any]) -> None:
    """Raise ResendRefused, saying why, unless the operator may re-drive this ledger."""
    status = ledger.get("status")
    request_id = ledger.get("request_id")
    if status not in RESENDABLE:
        reasons: dict[str, str] = {
            SendStatus.ACCEPTED: f"the provider accepted it (TRACKINGID {ledger.get('tracking_id')}): "
            "re-driving it would send the message twice",
            SendStatus.SENDING: "an attempt holds it now and may be calling the provider; "
            "wait for its outcome",
            SendStatus.RETRY: "it is already waiting for its next delivery from the send queue",
            SendStatus.REJECTED: "it was refused as invalid (see its reasons), and the same body would be "
            "refused again: send a corrected request with a new request_id",
            SendStatus.SUPPRESSED: "the number is on the suppression list (opted out); it must not be sent",
        }
        why_not = reasons.get(str(status), f"its status {status!r} is not one that can be re-driven")
        allowed = " or ".join(s.value for s in RESENDABLE)
        raise ResendRefused(
            f"refusing to resend {request_id}: its status is {status}: {why_not} (resend takes {allowed})",
            ledger,
        )
    if not isinstance(ledger.get("body"), str) or not ledger["body"]:
        raise ResendRefused(f"refusing to resend {request_id}: its ledger keeps no request body", ledger)


def permanent_warning(ledger: dict[str, Any]) -> str | None:
    """For a FAILED request the provider refused for good (error class PERMANENT), why resending it is
    unlikely to help; None otherwise."""
    if ledger.get("status") != SendStatus.FAILED or ledger.get("error_class") != "PERMANENT":
        return None
    code = ledger.get("error_code") or "its code"
    info = f": {ledger['error_info']}" if ledger.get("error_info") else ""
    return (
        f"warning: the provider refused {ledger.get('request_id')} for good ({code}, PERMANENT{info}); "
        "sending the same request again will fail the same way unless what it refers to changed (the "
        "number, the template, the account's settings)"
    )


def resend(
    table: StateTable, sqs: Any, queue_url: str, ledger: dict[str, Any], *, now: datetime
) -> ResendResult:
    """Move the ledger from its final status to RETRY (conditional on that status; it leaves its worklist),
    then put its stored body on the send queue, where the sender claims it like any RETRY. Should the send
    fail, the ledger goes back to its final status and worklist, so nothing is left waiting for a message
    that is not on the queue.

    The transient-failure budget starts afresh: a request FAILED after too many transient failures gets
    the sender's usual attempts again (the attempt log keeps what happened before)."""
    resendable(ledger)
    request_id, previous = ledger["request_id"], ledger["status"]
    stamp = iso(now)
    earlier_failures = int(ledger.get("transient_failures") or 0)
    detail = f"re-driven by an operator from {previous}"
    if earlier_failures:
        detail += f"; transient failure count reset (was {earlier_failures})"
    try:
        table.client.update_item(
            TableName=table.name,
            Key=to_dynamo(ledger_key(request_id)),
            UpdateExpression=(
                "SET #status = :retry, updated_at = :now, transient_failures = :zero, "
                "attempt_log = list_append(if_not_exists(attempt_log, :empty), :log) "
                "REMOVE gsi1pk, gsi1sk"
            ),
            ConditionExpression="#status = :previous",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_dynamo(
                {
                    ":retry": SendStatus.RETRY.value,
                    ":previous": previous,
                    ":now": stamp,
                    ":zero": 0,
                    ":empty": [],
                    ":log": [{"at": stamp, "outcome": RESEND_OUTCOME, "detail": detail}],
                }
            ),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        key = ledger_key(request_id)
        current = table.get(key["pk"], key["sk"])
        status = current.get("status") if current else None
        raise ResendRefused(
            f"refusing to resend {request_id}: its status changed from {previous} to {status} meanwhile; "
            "nothing was changed",
            current,
        ) from None
    try:
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody=ledger["body"])
    except (ClientError, BotoCoreError) as error:
        reason = _error_text(error)
        restored = _undo(table, ledger, stamp, now=datetime.now(UTC), reason=reason)
        return ResendResult(
            request_id,
            previous,
            previous if restored else SendStatus.RETRY.value,
            queued=False,
            error=reason,
            restored=restored,
        )
    return ResendResult(
        request_id, previous, SendStatus.RETRY.value, queued=True, message_id=sent["MessageId"]
    )


def _undo(table: StateTable, ledger: dict[str, Any], stamp: str, *, now: datetime, reason: str) -> bool:
    """Put the ledger back as it was (status, worklist, failure count), unless a delivery claimed it since."""
    values: dict[str, Any] = {
        ":previous": ledger["status"],
        ":retry": SendStatus.RETRY.value,
        ":stamp": stamp,
        ":now": iso(now),
        ":failures": int(ledger.get("transient_failures") or 0),
        ":empty": [],
        ":log": [{"at": iso(now), "outcome": RESEND_UNDONE_OUTCOME, "detail": f"not queued: {reason}"}],
    }
    sets = [
        "#status = :previous",
        "updated_at = :now",
        "transient_failures = :failures",
        "attempt_log = list_append(if_not_exists(attempt_log, :empty), :log)",
    ]
    if ledger.get("gsi1pk") and ledger.get("gsi1sk"):
        sets += ["gsi1pk = :gsi1pk", "gsi1sk = :gsi1sk"]
        values[":gsi1pk"], values[":gsi1sk"] = ledger["gsi1pk"], ledger["gsi1sk"]
    try:
        table.client.update_item(
            TableName=table.name,
            Key=to_dynamo(ledger_key(ledger["request_id"])),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="#status = :retry AND updated_at = :stamp",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_dynamo(values),
        )
    except (ClientError, BotoCoreError):
        return False
    return True


def _error_text(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code')}: {details.get('Message')}"
    return f"{type(error).__name__}: {error}"


def body_summary(body: str) -> dict[str, Any]:
    """request_id, action, to and from of a JSON send request, as far as the body has them."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        return {"request_id": None, "action": None, "to": None, "from": None, "json": False}
    return {
        **{name: _scalar(payload.get(name)) for name in ("request_id", "action", "to", "from")},
        "json": True,
    }


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)
