"""The ingest function wired: its settings, its clients and token cache (one set per container), and each
answer turned into its log line and metric.

Durable before ack: 200 only once the raw bytes are in the archive and on the postback queue (durable.py);
anything less answers 503, so the provider retries onto the same archive key.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics

from mmsbridge import observability
from mmsbridge.aws import clients
from mmsbridge.aws.archive import Archive
from mmsbridge.config import Env
from mmsbridge.ingest import admission
from mmsbridge.ingest.admission import IngestSettings, Outcome, Refusal
from mmsbridge.ingest.durable import store_postback
from mmsbridge.ingest.postback_queue import Queue
from mmsbridge.ingest.tokens import PostbackTokens, TokenUnavailable

__all__ = ["METRICS", "METRIC_NAMES", "IngestFunction", "IngestFunctionSettings"]

# One metric per answer, counted once per request.
METRICS: Final[Mapping[Outcome, str]] = {
    Outcome.ACCEPTED: "Accepted",
    Outcome.UNAVAILABLE: "StoreFailed",
    **{refusal.outcome: refusal.metric_name for refusal in Refusal},
}
METRIC_NAMES: Final = frozenset(METRICS.values())


@dataclass(frozen=True, slots=True)
class IngestFunctionSettings:
    archive_bucket: str
    postback_queue_url: str
    admission: IngestSettings  # who may post, what body is admitted, the archive prefix

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> IngestFunctionSettings:
        read = Env(env)
        return cls(
            archive_bucket=read.text("ARCHIVE_BUCKET"),
            postback_queue_url=read.text("POSTBACK_QUEUE_URL"),
            admission=IngestSettings.from_env(env),
        )


class IngestFunction:
    """One container's ingest: its clients are made here, in the init phase (no network call until the
    first postback, which reads the token's secret)."""

    def __init__(self, settings: IngestFunctionSettings, logger: Logger, metrics: Metrics) -> None:
        self.settings = settings.admission
        self.archive = Archive(clients.client("s3"), settings.archive_bucket)
        self.queue = Queue(clients.client("sqs"), settings.postback_queue_url)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
        # Every container needs it on its first postback, so it is made now, like the others.
        self.secrets = clients.client("secretsmanager")
        self.tokens = PostbackTokens(
            self._read_token_secret,
            max_age_s=self.settings.token_max_age_s,
            recheck_s=self.settings.token_recheck_s,
            on_error=self._token_secret_failed,
        )
        self._logger = logger
        self._metrics = metrics

    def answer(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The API Gateway proxy response to one request."""
        received = admission.admit(event, self.settings, datetime.now(UTC), self.tokens.accepts)
        if isinstance(received, Refusal):
            self._count(received.outcome)
            self._logger.warning(
                "postback refused", extra={"outcome": received.outcome, "status": received.status}
            )
            return admission.refusal_response(received)

        self._logger.set_correlation_id(received.sha256)
        result = store_postback(
            received,
            archive=self.archive,
            queue=self.queue,
            prefix=self.settings.archive_prefix,
            executor=self.executor,
        )
        facts = {"size": len(received.body), "source_ip": received.source_ip, "key": result.key}
        if not result.durable:
            self._count(Outcome.UNAVAILABLE)
            self._logger.error(
                "postback not stored",
                extra={
                    **facts,
                    "outcome": Outcome.UNAVAILABLE,
                    "status": 503,
                    "archived": result.archived,
                    "enqueued": result.enqueued,
                    "errors": result.errors,
                },
            )
            return admission.unavailable_response()
        self._count(Outcome.ACCEPTED)
        # DEBUG: at INFO, an accepted postback's line is the stage's access log (request id, source, status,
        # latency) and its Accepted metric; a second line of ~600 bytes a postback was most of the log bill.
        self._logger.debug("postback accepted", extra={**facts, "outcome": Outcome.ACCEPTED, "status": 200})
        return admission.accepted_response(received)

    def _count(self, outcome: Outcome) -> None:
        observability.count(self._metrics, {METRICS[outcome]: 1})

    def _read_token_secret(self) -> str:
        return self.secrets.get_secret_value(SecretId=self.settings.token_secret)["SecretString"]

    def _token_secret_failed(self, error: Exception) -> None:
        """A read of the token's secret failed (the copy already held, if any, stays in use). Says why,
        never what the secret holds: the document errors never quote it, and an AWS error is named by its
        code."""
        if isinstance(error, TokenUnavailable):
            reason = str(error)
        else:
            code = (getattr(error, "response", None) or {}).get("Error", {}).get("Code")
            reason = code or type(error).__name__
        self._logger.error("postback token secret unusable", extra={"reason": reason})
