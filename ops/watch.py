"""The local stack's events watch queue (a rule on the stack's bus sends it every mmsbridge event): reading
it, and one line per event for people.

Reading consumes: an event printed is deleted from the queue. One read with a type filter leaves the other
types on the queue: they are kept out of sight while it runs, then made visible again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ops import render

MAX_MESSAGES = 10  # SQS's limit a receive
# Long enough that a message held back by a type filter does not come round again while the command runs
# (an event seen twice in one run is skipped anyway).
HOLD_S = 300

# Per event type (detail-type, docs/events.md): the detail fields the line shows, in order.
MAIN_FIELDS = {
    "Message State Changed": ("tracking_id", "request_id", "to", "code", "failure_reason"),
    "Inbound Message Received": ("kind", "from", "to", "code", "keyword", "text", "subject"),
    "Subscription Changed": ("scope", "mobile", "email", "campaign_id", "shortcode", "code"),
    "Send Request Settled": ("request_id", "to", "tracking_id", "error_code", "reasons"),
    "Template Status Changed": ("mms_id", "code", "failure_reason"),
}


def line(event: Mapping[str, Any]) -> str:
    """`time  detail-type  what changed  field=value ...` for one EventBridge event."""
    detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
    kind = str(event.get("detail-type", "?"))
    parts = [render.cell(event.get("time")), kind]
    if "new_state" in detail:
        parts.append(f"{render.cell(detail.get('old_state') or '-')} -> {render.cell(detail['new_state'])}")
    elif kind == "Send Request Settled":
        parts.append(render.cell(detail.get("status")))
    elif kind == "Subscription Changed":
        parts.append("opted in" if detail.get("opted_in") else "opted out")
    for name in MAIN_FIELDS.get(kind, ()):
        value = detail.get(name)
        if value in (None, "", [], {}):
            continue
        if isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        parts.append(f"{name}={render.cell(value)}")
    return "  ".join(parts)


def keys_of(event: Mapping[str, Any]) -> set[str]:
    """The ids an event is about (its request id and tracking id): for grouping events by request."""
    detail = event.get("detail") if isinstance(event.get("detail"), Mapping) else {}
    return {str(detail[name]) for name in ("request_id", "tracking_id") if detail.get(name)}


@dataclass
class WatchQueue:
    """The watch queue read through one SQS client."""

    sqs: Any
    url: str
    detail_types: frozenset[str] = frozenset()  # empty: every type
    _seen: set[str] = field(default_factory=set)
    _held: dict[str, str] = field(default_factory=dict)  # message id -> receipt handle (other types)

    def receive(self, wait_s: int) -> list[dict[str, Any]]:
        """The events one receive returns (at most 10, waiting up to `wait_s`), deleted from the queue;
        events of other types are held back, events seen already in this run are skipped."""
        response = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=MAX_MESSAGES,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=HOLD_S,
        )
        events = []
        done = []
        for message in response.get("Messages", []):
            try:
                event = json.loads(message["Body"])
            except ValueError:
                event = {"detail-type": "(not JSON)", "detail": {"body": message["Body"]}}
            if not isinstance(event, dict):
                event = {"detail-type": "(not an event)", "detail": {"body": message["Body"]}}
            if self.detail_types and event.get("detail-type") not in self.detail_types:
                self._held[message["MessageId"]] = message["ReceiptHandle"]
                continue
            done.append(message["ReceiptHandle"])
            if message["MessageId"] not in self._seen:
                self._seen.add(message["MessageId"])
                events.append(event)
        for start in range(0, len(done), MAX_MESSAGES):
            entries = [
                {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(done[start : start + MAX_MESSAGES])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
        return events

    def drain(self, wait_s: int = 1) -> Iterator[dict[str, Any]]:
        """Every event on the queue now: receives until one returns nothing new."""
        while True:
            before = len(self._held)
            events = self.receive(wait_s)
            yield from events
            if not events and len(self._held) == before:
                return

    def release(self) -> None:
        """Make the held-back events (other types) visible again."""
        handles = list(self._held.values())
        self._held.clear()
        for start in range(0, len(handles), MAX_MESSAGES):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + MAX_MESSAGES])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
