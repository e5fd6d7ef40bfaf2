"""The consumer function wired: its settings, its table and archive (one set per container), and each batch's
outcome turned into log lines and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics

from mmsbridge import observability
from mmsbridge.aws import clients
from mmsbridge.aws.archive import Archive
from mmsbridge.aws.state_table import StateTable
from mmsbridge.config import Env, SettingError
from mmsbridge.postbacks.consume import BatchOutcome, consume
from mmsbridge.postbacks.own_numbers import parse_own_numbers

__all__ = ["METRIC_NAMES", "ConsumerFunction", "ConsumerFunctionSettings", "Counted"]


class Counted(StrEnum):
    """What each batch counts, by metric name (every one, zero included, after every batch)."""

    APPLIED = "PostbacksApplied"  # records whose writes are in the table
    QUARANTINED = "Quarantined"  # records that can never apply, kept with their reason
    FAILED = "RecordsFailed"  # records handed back: SQS delivers them again
    ALERTS = "ProviderAlerts"  # postbacks reporting a processing error at the provider (E999 and the like)


METRIC_NAMES: Final = frozenset(member.value for member in Counted)
_ERRORS_LOGGED: Final = 10


@dataclass(frozen=True, slots=True)
class ConsumerFunctionSettings:
    state_table: str
    archive_bucket: str
    retention_days: int  # 0: history kept for good
    # The template's OwnNumbers: a postback for any other number is quarantined. Empty: the check is off. A
    # malformed list fails the cold start, loudly, rather than letting every number in or quarantining all.
    own_numbers: frozenset[str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConsumerFunctionSettings:
        read = Env(env)
        try:
            own_numbers = parse_own_numbers(read.text("OWN_NUMBERS", ""))
        except ValueError as error:
            raise SettingError(f"OWN_NUMBERS: {error}") from None
        return cls(
            state_table=read.text("STATE_TABLE"),
            archive_bucket=read.text("ARCHIVE_BUCKET"),
            retention_days=read.integer("HISTORY_RETENTION_DAYS", 0),
            own_numbers=own_numbers,
        )


class ConsumerFunction:
    """One container's consumer: the table client made in the init phase, the archive's on first use."""

    def __init__(self, settings: ConsumerFunctionSettings, logger: Logger, metrics: Metrics) -> None:
        self.settings = settings
        self.table = StateTable(clients.client("dynamodb"), settings.state_table)
        # Only bodies over 190 KiB travel by S3 key, and genuine postbacks never do: made on first use.
        self.archive = Archive(clients.LazyClient("s3"), settings.archive_bucket)
        self._logger = logger
        self._metrics = metrics

    def apply(self, records: Sequence[Mapping[str, Any]]) -> set[str]:
        """Apply one batch (one BatchWriteItem per 25 items); returns the ids of the records that failed."""
        outcome = consume(
            records,
            table=self.table,
            fetch=self.archive.get,
            retention_days=self.settings.retention_days,
            own_numbers=self.settings.own_numbers,
        )
        self._report(outcome)
        return outcome.failed

    def _report(self, outcome: BatchOutcome) -> None:
        for rejected in outcome.quarantined:
            self._logger.warning(
                "postback quarantined",
                extra={
                    "sha256": rejected.sha256,
                    "reason": rejected.reason,
                    "detail": rejected.detail,
                    "raw_key": rejected.raw_key,
                },
            )
        for alert in outcome.alerts:
            self._logger.error("provider reported a processing error", extra={"event": alert})
        if outcome.failed:
            self._logger.error(
                "records failed; they will come back",
                extra={"failed": len(outcome.failed), "errors": outcome.errors[:_ERRORS_LOGGED]},
            )
        observability.count(
            self._metrics,
            {
                Counted.APPLIED: outcome.applied,
                Counted.QUARANTINED: len(outcome.quarantined),
                Counted.FAILED: len(outcome.failed),
                Counted.ALERTS: len(outcome.alerts),
            },
        )
