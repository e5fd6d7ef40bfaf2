"""One stream batch relayed: each record decided (reading what its decision needs), the events published,
and the checkpoint named for the partial batch response (ReportBatchItemFailures). Pure: the reader and the
publisher are injected.

A DynamoDB stream is retried from a checkpoint, not record by record: Lambda resumes at the first record
this returns (`batchItemFailures` with its SequenceNumber) and never sends the records before it again. So
the relay stops deciding at the first record it cannot decide (its read failed), publishes the events of
the records before it, and names the earliest record whose event was not published. Records after that
one whose events did go out are published again when the batch is retried from it: under the same ids
(derived from the records), so a subscriber that deduplicates by `detail.event_id` sees each once, and
nothing is lost. A record that can never be published (an entry EventBridge refuses) keeps failing until the
event source mapping's retry limit sends the batch's description to its on-failure destination (the DLQ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mmsbridge.events.changes import (
    Event,
    PartitionRead,
    StreamChange,
    decide,
    partition_read,
    put_events_entry,
)

__all__ = ["Relayed", "relay"]


class Reader(Protocol):
    def read(self, wanted: PartitionRead) -> list[dict[str, Any]]: ...


class Published(Protocol):
    @property
    def failed(self) -> Mapping[int, str]: ...  # entry position -> why it was not published


class Publisher(Protocol):
    def publish(self, entries: Sequence[Mapping[str, Any]]) -> Published: ...


@dataclass
class Relayed:
    """What a batch came to. `checkpoint`: the SequenceNumber to resume at (None: the batch is done)."""

    records: int = 0
    published: list[Event] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # record id -> why
    checkpoint: str | None = None

    def batch_item_failures(self) -> dict[str, list[dict[str, str]]]:
        """The partial batch response for Lambda's DynamoDB stream event source."""
        failures = [] if self.checkpoint is None else [{"itemIdentifier": self.checkpoint}]
        return {"batchItemFailures": failures}


def relay(changes: Sequence[StreamChange], *, reader: Reader, publisher: Publisher, bus_name: str) -> Relayed:
    """Decide and publish one batch (`changes` in stream order)."""
    outcome = Relayed(records=len(changes))
    events: list[Event] = []
    stopped_at: int | None = None
    for position, change in enumerate(changes):
        try:
            wanted = partition_read(change)
            partition = reader.read(wanted) if wanted is not None else None
            event = decide(change, partition, inserted_later=_inserted_later(changes, position))
        except Exception as error:  # the record is handed back with its reason, never dropped
            outcome.failed[change.record_id] = f"deciding: {type(error).__name__}: {error}"
            stopped_at = position
            break
        if event is not None:
            events.append(event)
    result = publisher.publish([put_events_entry(event, bus_name) for event in events]) if events else None
    unpublished = set(result.failed) if result is not None else set()
    first_failed = stopped_at
    for index, event in enumerate(events):
        if index in unpublished:
            outcome.failed[event.record_id] = result.failed[index] if result is not None else ""
            where = next(i for i, change in enumerate(changes) if change.record_id == event.record_id)
            first_failed = where if first_failed is None else min(first_failed, where)
        else:
            outcome.published.append(event)
    if first_failed is not None:
        outcome.checkpoint = changes[first_failed].record_id
    return outcome


def _inserted_later(changes: Sequence[StreamChange], position: int) -> frozenset[tuple[str, str]]:
    """Keys of the same partition inserted by records after `position` in this batch."""
    pk = changes[position].pk
    return frozenset(c.key for c in changes[position + 1 :] if c.event_name == "INSERT" and c.pk == pk)
