"""The send DLQ: list its messages without taking them off it, and re-drive them to the send queue.

A message reaches the DLQ from the sender (with its reason as `mmsbridge-*` message attributes) or from SQS's
own redrive policy (no reason; the original attributes). Re-driving moves one message at a time: SendMessage
of the same body to the send queue, then DeleteMessage from the DLQ only once the send succeeded. A failed
send leaves the message in the DLQ (visible again at the end of the run); a failed delete after a successful
send is reported, since the message is then in both queues (the sender's ledger keeps a request from being
sent twice, but the DLQ copy should be deleted by hand).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mmsbridge.core.times import iso
from ops.sends import body_summary

# The attributes the sender's dead-lettering sets (mmsbridge.sending.settle), under their names here.
REASON_ATTRIBUTES = {
    "reason": "mmsbridge-reason",
    "outcome": "mmsbridge-outcome",
    "code": "mmsbridge-code",
    "request_id": "mmsbridge-request-id",
    "source_message_id": "mmsbridge-source-message-id",
}
_OURS = "mmsbridge-"
RECEIVE_MAX = 10  # ReceiveMessage's maximum
# Listing hides each message this briefly, and makes it visible again as soon as it is listed.
LIST_VISIBILITY_S = 5
# Re-driving holds a message long enough to send it and delete it with a receipt handle still valid.
MOVE_VISIBILITY_S = 60
# Short polling can answer empty while a small queue has messages (it samples servers): one long poll
# of this many seconds confirms the queue is empty.
CONFIRM_EMPTY_WAIT_S = 1


def describe(message: dict[str, Any]) -> dict[str, Any]:
    """One DLQ message as a JSON-ready document: its reason, request and body."""
    attributes = {
        name: value.get("StringValue")
        for name, value in (message.get("MessageAttributes") or {}).items()
        if isinstance(value, dict)
    }
    body = message.get("Body") or ""
    summary = body_summary(body)
    sent = (message.get("Attributes") or {}).get("SentTimestamp")
    document = {
        "message_id": message["MessageId"],
        "sent_at": iso(datetime.fromtimestamp(int(sent) / 1000, UTC)) if sent else None,
        **{name: attributes.get(attribute) for name, attribute in REASON_ATTRIBUTES.items()},
    }
    document["request_id"] = document["request_id"] or summary["request_id"]
    document.update(
        action=summary["action"],
        to=summary["to"],
        **{"from": summary["from"]},
        body_is_json=summary["json"],
        body=body,
    )
    return document


@dataclass
class Moved:
    """What a re-drive saw and did."""

    found: int = 0  # selected for moving
    moved: list[dict[str, Any]] = field(default_factory=list)  # message_id, request_id, new_message_id
    failures: list[dict[str, Any]] = field(default_factory=list)  # message_id, request_id, stage, error
    skipped: int = 0  # received but not selected (--request-id) or past --limit; left in the DLQ

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "moved": len(self.moved),
            "failed": len(self.failures),
            "skipped": self.skipped,
            "moves": self.moved,
            "failures": self.failures,
        }


class SendDLQ:
    def __init__(self, sqs: Any, *, dlq_url: str, queue_url: str | None = None) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.queue_url = queue_url

    # -- listing --------------------------------------------------------------------------------------
    def list(self, *, limit: int, request_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Up to `limit` messages (of `request_ids` only, when given), oldest first. Each is made visible
        again once the listing is done (and would be after a few seconds anyway): listing takes nothing off
        the queue."""
        found: list[dict[str, Any]] = []
        held: list[str] = []

        def batch_size() -> int:
            left = limit - len(found)
            return 0 if left <= 0 else RECEIVE_MAX if request_ids is not None else min(RECEIVE_MAX, left)

        try:
            for message in self._receive(LIST_VISIBILITY_S, batch_size, held):
                held.append(message["ReceiptHandle"])
                document = describe(message)
                if len(found) < limit and (request_ids is None or document["request_id"] in request_ids):
                    found.append(document)
        finally:
            self._release(held)
        return sorted(found, key=lambda m: (m["sent_at"] or "", m["message_id"]))

    # -- re-driving -----------------------------------------------------------------------------------
    def redrive(self, *, limit: int | None, request_ids: set[str] | None) -> Moved:
        """Move up to `limit` messages (those of `request_ids` only, when given) to the send queue, each
        exactly once: sent, then deleted from the DLQ only after the send succeeded."""
        assert self.queue_url is not None
        result = Moved()
        held: list[str] = []  # received and not moved: made visible again at the end

        def left() -> int:
            return RECEIVE_MAX if limit is None else limit - result.found

        def batch_size() -> int:
            if left() <= 0:
                return 0
            # Filtering: read whole batches (most may be skipped); otherwise never more than wanted.
            return RECEIVE_MAX if request_ids is not None else min(RECEIVE_MAX, left())

        try:
            for message in self._receive(MOVE_VISIBILITY_S, batch_size, held):
                document = describe(message)
                if (request_ids is not None and document["request_id"] not in request_ids) or left() <= 0:
                    result.skipped += 1
                    held.append(message["ReceiptHandle"])
                    continue
                result.found += 1
                if not self._move(message, document, result):
                    held.append(message["ReceiptHandle"])
        finally:
            self._release(held)
        return result

    def _move(self, message: dict[str, Any], document: dict[str, Any], result: Moved) -> bool:
        """Send, then delete. False when the send failed (the message stays in the DLQ)."""
        attributes = {  # the producer's own attributes travel on; the DLQ's reasons do not
            name: {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
            for name, value in (message.get("MessageAttributes") or {}).items()
            if not name.startswith(_OURS)
        }
        entry = {"message_id": message["MessageId"], "request_id": document["request_id"]}
        try:
            sent = self.sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=message["Body"],
                **({"MessageAttributes": attributes} if attributes else {}),
            )
        except (ClientError, BotoCoreError) as error:
            result.failures.append(
                {**entry, "stage": "send", "error": _error_text(error), "new_message_id": None}
            )
            return False
        try:
            self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])
        except (ClientError, BotoCoreError) as error:
            # On the send queue and still in the DLQ: reported, and not offered again in this run.
            result.failures.append(
                {
                    **entry,
                    "stage": "delete",
                    "error": _error_text(error),
                    "new_message_id": sent.get("MessageId"),
                }
            )
            return True
        result.moved.append({**entry, "new_message_id": sent.get("MessageId")})
        return True

    # -- SQS ------------------------------------------------------------------------------------------
    def _receive(
        self, visibility_s: int, batch_size: Callable[[], int], held: list[str]
    ) -> Iterator[dict[str, Any]]:
        """Messages not yet seen in this run, `batch_size()` at a time (0: stop), until the queue has no
        more. A message seen again (its visibility ran out during a long run) is held, not offered again;
        a batch of only such messages means the run went all the way round."""
        seen: set[str] = set()
        while (count := batch_size()) > 0:
            batch = self._receive_once(visibility_s, count, wait_s=0)
            if not batch:
                batch = self._receive_once(visibility_s, count, wait_s=CONFIRM_EMPTY_WAIT_S)
            fresh = []
            for message in batch:
                if message["MessageId"] in seen:
                    held.append(message["ReceiptHandle"])
                else:
                    seen.add(message["MessageId"])
                    fresh.append(message)
            if not fresh:
                return
            yield from fresh

    def _receive_once(self, visibility_s: int, count: int, *, wait_s: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.dlq_url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=visibility_s,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def _release(self, receipt_handles: list[str]) -> None:
        """Make messages visible again now; at worst they reappear when their visibility timeout ends."""
        for start in range(0, len(receipt_handles), RECEIVE_MAX):
            chunk = receipt_handles[start : start + RECEIVE_MAX]
            with contextlib.suppress(ClientError, BotoCoreError):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.dlq_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                        for i, handle in enumerate(chunk)
                    ],
                )


def _error_text(error: Exception) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code')}: {details.get('Message')}"
    return f"{type(error).__name__}: {error}"
