"""The sender function wired: its settings, its clients, API key cache and limiter (one set per container),
and each batch's report turned into SQS actions, log lines and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from mmsbridge import observability
from mmsbridge.aws import clients
from mmsbridge.aws.state_table import StateTable
from mmsbridge.config import Env
from mmsbridge.sending import provider_http
from mmsbridge.sending.api_key import ApiKey
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import SharedLimiter
from mmsbridge.sending.results import METRICS, NEEDS_ATTENTION, BatchReport, Disposition
from mmsbridge.sending.sender import Sender, SenderSettings
from mmsbridge.sending.settle import SendQueue

__all__ = ["METRIC_NAMES", "SenderFunction", "SenderFunctionSettings"]

PROVIDER_AUTH_ERROR: Final = "ProviderAuthError"  # a batch stopped because the provider refused the account
DEAD_LETTERED: Final = "DeadLettered"
METRIC_NAMES: Final = frozenset({*METRICS.values(), PROVIDER_AUTH_ERROR, DEAD_LETTERED})


@dataclass(frozen=True, slots=True)
class SenderFunctionSettings:
    state_table: str
    send_queue_url: str
    send_dlq_url: str
    provider_api_url: str
    api_key_secret: str  # the secret's name or ARN, never the key
    throughput_per_second: float  # the account's, shared by every container
    sender: SenderSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SenderFunctionSettings:
        read = Env(env)
        return cls(
            state_table=read.text("STATE_TABLE"),
            send_queue_url=read.text("SEND_QUEUE_URL"),
            send_dlq_url=read.text("SEND_DLQ_URL"),
            provider_api_url=read.text("PROVIDER_API_URL"),
            api_key_secret=read.text("PROVIDER_API_KEY_SECRET"),
            throughput_per_second=read.number("THROUGHPUT_PER_SECOND"),
            sender=SenderSettings.from_env(env),
        )


class SenderFunction:
    """One container's sender: the table and queue clients made in the init phase, Secrets Manager's on the
    first read of the API key."""

    def __init__(self, settings: SenderFunctionSettings, logger: Logger, metrics: Metrics) -> None:
        self.table = StateTable(clients.client("dynamodb"), settings.state_table)
        self.queue = SendQueue(clients.client("sqs"), settings.send_queue_url, settings.send_dlq_url)
        self.api_key = ApiKey(
            SecretsProvider(boto3_client=clients.LazyClient("secretsmanager")), settings.api_key_secret
        )
        self.sender = Sender(
            table=self.table,
            ledger=SendLedger(self.table),
            limiter=SharedLimiter(self.table, settings.throughput_per_second),
            # The class as it is when the container starts (looked up now, not when this module loaded).
            client=provider_http.ProviderClient(settings.provider_api_url),
            api_key=self.api_key,
            forget_api_key=self.api_key.forget,
            settings=settings.sender,
        )
        self._logger = logger
        self._metrics = metrics

    def send(self, records: Sequence[Mapping[str, Any]], *, deadline: float) -> set[str]:
        """Send one batch by `deadline` (epoch seconds) and settle it on SQS; returns the ids of the records
        handed back (they come back after their visibility timeout)."""
        report = self.sender.send_batch(list(records), deadline=deadline)
        failed = self.queue.settle(report, {r["messageId"]: r.get("body") or "" for r in records})
        self._report(report)
        return failed

    def _report(self, report: BatchReport) -> None:
        for result in report.results:
            extra = {
                "request_id": result.request_id,
                "message_id": result.message_id,
                "outcome": result.outcome,
                "code": result.code,
                "tracking_id": result.tracking_id,
                "visibility_s": result.visibility_s,
                "reason": result.reason,
            }
            if result.disposition is Disposition.DEAD_LETTER:
                self._logger.error("send request moved to the DLQ", extra=extra)
            elif result.outcome in NEEDS_ATTENTION:
                self._logger.error("send request needs attention", extra=extra)
            else:
                self._logger.info("send request", extra=extra)
        if report.stopped:
            self._logger.warning("batch stopped calling the provider", extra={"why": report.stopped})
        dead = sum(1 for r in report.results if r.disposition is Disposition.DEAD_LETTER)
        observability.count(
            self._metrics,
            {
                **{name: report.count(outcome) for outcome, name in METRICS.items()},
                PROVIDER_AUTH_ERROR: int(report.stopped == "account"),
                DEAD_LETTERED: dead,
            },
            zeros=False,
        )
