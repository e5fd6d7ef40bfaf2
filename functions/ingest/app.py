"""Ingest: API Gateway (REST) -> raw bytes to S3 and SQS -> 200, or 503 so the provider retries."""

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge.aws import clients as aws
from mmsbridge.aws.archive import Archive
from mmsbridge.ingest import admission as ingest
from mmsbridge.ingest.durable import store_postback
from mmsbridge.ingest.postback_queue import Queue
from mmsbridge.ingest.tokens import PostbackTokens, TokenUnavailable

SETTINGS = ingest.IngestSettings.from_env(os.environ)
ARCHIVE = Archive(aws.client("s3"), os.environ["ARCHIVE_BUCKET"])
QUEUE = Queue(aws.client("sqs"), os.environ["POSTBACK_QUEUE_URL"])
EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
# Every container needs it on its first postback (the token's secret), so it is made here, in the init
# phase, like the others; the secret itself is read on the first postback (nothing at import reaches the
# network).
SECRETS = aws.client("secretsmanager")

# botocore's DEBUG lines print response bodies: for GetSecretValue that is the postback token. They stay
# off here even when an operator turns DEBUG logging on.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)

logger = Logger()
metrics = Metrics()


def read_token_secret() -> str:
    return SECRETS.get_secret_value(SecretId=SETTINGS.token_secret)["SecretString"]


def token_secret_failed(error: Exception) -> None:
    """A read of the token's secret failed (the copy already held, if any, stays in use). Says why, never
    what the secret holds: the document errors never quote it, and an AWS error is named by its code."""
    if isinstance(error, TokenUnavailable):
        reason = str(error)
    else:
        code = (getattr(error, "response", None) or {}).get("Error", {}).get("Code")
        reason = code or type(error).__name__
    logger.error("postback token secret unusable", extra={"reason": reason})


TOKENS = PostbackTokens(
    read_token_secret,
    max_age_s=SETTINGS.token_max_age_s,
    recheck_s=SETTINGS.token_recheck_s,
    on_error=token_secret_failed,
)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its path and pathParameters hold the URL token.
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    received = ingest.admit(event, SETTINGS, datetime.now(UTC), TOKENS.accepts)
    if isinstance(received, ingest.Refusal):
        metrics.add_metric(name=received.metric_name, unit=MetricUnit.Count, value=1)
        logger.warning(
            "postback refused", extra={"outcome": received.name.lower(), "status": received.status}
        )
        return ingest.refusal_response(received)

    logger.set_correlation_id(received.sha256)
    result = store_postback(
        received, archive=ARCHIVE, queue=QUEUE, prefix=SETTINGS.archive_prefix, executor=EXECUTOR
    )
    facts = {"size": len(received.body), "source_ip": received.source_ip, "key": result.key}
    if not result.durable:
        metrics.add_metric(name="StoreFailed", unit=MetricUnit.Count, value=1)
        logger.error(
            "postback not stored",
            extra={
                **facts,
                "outcome": "unavailable",
                "status": 503,
                "archived": result.archived,
                "enqueued": result.enqueued,
                "errors": result.errors,
            },
        )
        return ingest.unavailable_response()
    metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    logger.info("postback accepted", extra={**facts, "outcome": "accepted", "status": 200})
    return ingest.accepted_response(received)
