"""SQS actions that settle a sender batch: hand records back with their visibility timeout, dead-letter others
with their reason as message attributes (the DLQ message keeps the original body, so it can be re-driven)."""

from __future__ import annotations

import contextlib
from typing import Any

from mmsbridge.sending.results import BatchReport, Disposition, RecordResult

__all__ = ["REASON_ATTRIBUTE", "SendQueue"]

REASON_ATTRIBUTE = "mmsbridge-reason"
_CHUNK = 10  # ChangeMessageVisibilityBatch's maximum


class SendQueue:
    def __init__(self, sqs: Any, queue_url: str, dlq_url: str) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self.dlq_url = dlq_url

    def settle(self, report: BatchReport, bodies: dict[str, str]) -> set[str]:
        """Apply the report; returns the message ids to report as batch item failures (they come back)."""
        failed: set[str] = set()
        for result in report.results:
            if result.disposition is Disposition.DEAD_LETTER and not self._dead_letter(result, bodies):
                failed.add(result.message_id)  # not moved: keep it on the queue
        retries = [r for r in report.results if r.disposition is Disposition.RETRY]
        failed |= {r.message_id for r in retries}
        self._set_visibility(retries)
        return failed

    def _dead_letter(self, result: RecordResult, bodies: dict[str, str]) -> bool:
        attributes = {
            REASON_ATTRIBUTE: result.reason or result.outcome,
            "mmsbridge-outcome": result.outcome,
            "mmsbridge-source-message-id": result.message_id,
        }
        if result.request_id:
            attributes["mmsbridge-request-id"] = result.request_id
        if result.code:
            attributes["mmsbridge-code"] = result.code
        try:
            self._sqs.send_message(
                QueueUrl=self.dlq_url,
                MessageBody=bodies[result.message_id],
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value[:1024]}
                    for name, value in attributes.items()
                },
            )
        except Exception:
            return False
        return True

    def _set_visibility(self, retries: list[RecordResult]) -> None:
        """Best effort: a record whose visibility is not changed still comes back, after the queue's own."""
        timed = [r for r in retries if r.visibility_s is not None]
        for start in range(0, len(timed), _CHUNK):
            chunk = timed[start : start + _CHUNK]
            with contextlib.suppress(Exception):
                self._sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": r.receipt_handle, "VisibilityTimeout": r.visibility_s}
                        for i, r in enumerate(chunk)
                    ],
                )
