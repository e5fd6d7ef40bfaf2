"""The event publisher function wired: its settings, its table reader and EventBridge publisher (one set per
container), and each stream batch's outcome turned into log lines and metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics

from mmsbridge import observability
from mmsbridge.aws import clients
from mmsbridge.aws.state_table import StateTable
from mmsbridge.config import Env
from mmsbridge.events.partitions import PartitionReader
from mmsbridge.events.publisher import EventPublisher, PublishResult
from mmsbridge.events.relay import Relayed, relay
from mmsbridge.events.stream_records import stream_changes

__all__ = ["METRIC_NAMES", "Counted", "PublisherFunction", "PublisherFunctionSettings"]


class Counted(StrEnum):
    """What each stream batch counts, by metric name (every one, zero included, after every batch)."""

    PUBLISHED = "EventsPublished"  # events EventBridge accepted
    RETRIED = "EventsRetried"  # entries sent again after a retryable failure (throttling, an internal error)
    FAILED = "EventsFailed"  # records handed back: their event was not published, or could not be decided


METRIC_NAMES: Final = frozenset(member.value for member in Counted)
_ERRORS_LOGGED: Final = 10


@dataclass(frozen=True, slots=True)
class PublisherFunctionSettings:
    state_table: str
    event_bus_name: str  # the stack's own bus, or the one EventBusName names (e.g. default)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PublisherFunctionSettings:
        read = Env(env)
        return cls(state_table=read.text("STATE_TABLE"), event_bus_name=read.text("EVENT_BUS_NAME"))


class _CountingPublisher:
    """The publisher, with the entries it sent again added up over a batch's calls."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        self.retried = 0

    def publish(self, entries: Sequence[Mapping[str, Any]]) -> PublishResult:
        result = self._publisher.publish(entries)
        self.retried += result.retried
        return result


class PublisherFunction:
    """One container's publisher: the DynamoDB and EventBridge clients made in the init phase."""

    def __init__(self, settings: PublisherFunctionSettings, logger: Logger, metrics: Metrics) -> None:
        self.settings = settings
        self.reader = PartitionReader(StateTable(clients.client("dynamodb"), settings.state_table))
        self.publisher = EventPublisher(clients.client("events"))
        self._logger = logger
        self._metrics = metrics

    def publish(self, records: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, str]]]:
        """Relay one stream batch; returns the partial batch response (the record to resume at, if any)."""
        counting = _CountingPublisher(self.publisher)
        outcome = relay(
            stream_changes(records),
            reader=self.reader,
            publisher=counting,
            bus_name=self.settings.event_bus_name,
        )
        self._report(outcome, counting.retried)
        return outcome.batch_item_failures()

    def _report(self, outcome: Relayed, retried: int) -> None:
        published = Counter(event.detail_type.value for event in outcome.published)
        self._logger.info(
            "stream batch relayed",
            extra={"records": outcome.records, "published": dict(published), "retried": retried},
        )
        if outcome.checkpoint is not None:
            # Reasons only: an event's detail carries numbers and message text.
            errors = [f"{record}: {why}" for record, why in list(outcome.failed.items())[:_ERRORS_LOGGED]]
            self._logger.error(
                "stream records handed back; the batch resumes at the first",
                extra={"checkpoint": outcome.checkpoint, "failed": len(outcome.failed), "errors": errors},
            )
        observability.count(
            self._metrics,
            {
                Counted.PUBLISHED: len(outcome.published),
                Counted.RETRIED: retried,
                Counted.FAILED: len(outcome.failed),
            },
        )
