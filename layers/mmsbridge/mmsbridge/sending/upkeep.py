"""The stale check, hourly: count sent messages with no final state after STALE_MESSAGE_HOURS (metric
StaleMessages), then reconcile OUTCOME_UNKNOWN send requests with the messages they became (reconcile.py).

Reconciliation runs here rather than in the consumer as a report arrives: the first report (N101/N201) often
arrives before the sender has even recorded the request OUTCOME_UNKNOWN, and a link is only safe once the
request's attempt window has closed and settled (no second candidate or competing request can still turn up),
which an hourly pass over the worklist sees and a report's arrival does not. The consumer stays a writer of
plain puts with no reads. A request is linked within about 45-105 minutes of its unknown outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics

from mmsbridge import observability
from mmsbridge.aws import clients
from mmsbridge.aws.state_table import StateTable
from mmsbridge.config import Env
from mmsbridge.core.times import iso
from mmsbridge.sending.reconcile_store import Reconciler, ReviewOutcome

__all__ = ["METRIC_NAMES", "StaleFunction", "StaleFunctionSettings"]

STALE_MESSAGES: Final = "StaleMessages"
METRIC_NAMES: Final = frozenset({STALE_MESSAGES})
# Requests that went OUTCOME_UNKNOWN longer ago than this are left to `ops reconcile`: their reports have had
# days to arrive, and an old worklist is not read again every hour.
RECONCILE_LOOKBACK: Final = timedelta(days=7)
_SAMPLE: Final = 20  # tracking and request ids a log line lists at most


@dataclass(frozen=True, slots=True)
class StaleFunctionSettings:
    state_table: str
    stale_after: timedelta

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StaleFunctionSettings:
        read = Env(env)
        return cls(
            state_table=read.text("STATE_TABLE"),
            stale_after=timedelta(hours=read.number("STALE_MESSAGE_HOURS", 72.0)),
        )


class StaleFunction:
    def __init__(self, settings: StaleFunctionSettings, logger: Logger, metrics: Metrics) -> None:
        self.settings = settings
        self.table = StateTable(clients.client("dynamodb"), settings.state_table)
        self._logger = logger
        self._metrics = metrics

    def run(self, time_left: Callable[[], float]) -> dict[str, Any]:
        """One hourly pass; `time_left`: seconds left in the invocation. Returns what it counted, linked."""
        now = datetime.now(UTC)
        cutoff = iso(now - self.settings.stale_after)
        stale = [
            item["tracking_id"] for item in self.table.open_messages(older_than=cutoff, close_final=True)
        ]
        observability.count(self._metrics, {STALE_MESSAGES: len(stale)})
        self._logger.info(
            "stale messages counted", extra={"stale": len(stale), "cutoff": cutoff, "sample": stale[:_SAMPLE]}
        )

        result = Reconciler(self.table).run(
            now=now, by="stale function", since=now - RECONCILE_LOOKBACK, time_left=time_left
        )
        linked = [r for r in result.reviewed if r.outcome is ReviewOutcome.LINKED]
        reconciled = {
            "looked_at": len(result.reviewed),
            "linked": [r.ledger.get("request_id") for r in linked],
            "deferred": result.deferred,
        }
        not_linked = [
            {
                "request_id": r.ledger.get("request_id"),
                "outcome": r.outcome,
                "reason": r.plan and r.plan.reason,
            }
            for r in result.reviewed
            if r.outcome is not ReviewOutcome.LINKED
        ]
        self._logger.info(
            "outcome-unknown requests reconciled", extra={**reconciled, "not_linked": not_linked[:_SAMPLE]}
        )
        return {"stale": len(stale), "cutoff": cutoff, "reconciled": reconciled}
