"""Sender: SQS send requests -> the provider's XML API, at most once, paced by a shared limiter, E113
re-driven with backoff."""

import logging
import os
import time

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge.aws import clients as aws
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import SharedLimiter
from mmsbridge.sending.provider_http import ProviderClient
from mmsbridge.sending.results import Disposition
from mmsbridge.sending.sender import Sender, SenderSettings
from mmsbridge.sending.settle import SendQueue

SETTINGS = SenderSettings.from_env(os.environ)
TABLE = StateTable(aws.client("dynamodb"), os.environ["STATE_TABLE"])
QUEUE = SendQueue(aws.client("sqs"), os.environ["SEND_QUEUE_URL"], os.environ["SEND_DLQ_URL"])
SECRETS = SecretsProvider(boto3_client=aws.LazyClient("secretsmanager"))
API_KEY_SECRET = os.environ["PROVIDER_API_KEY_SECRET"]
API_KEY_MAX_AGE_S = 300
_force_key_fetch = False

# botocore's DEBUG lines print response bodies: for GetSecretValue that is the API key. They stay off here
# even when an operator turns DEBUG logging on.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def api_key() -> str:
    """The API key, cached for five minutes; read afresh after the provider refused the account."""
    global _force_key_fetch
    key = SECRETS.get(API_KEY_SECRET, max_age=API_KEY_MAX_AGE_S, force_fetch=_force_key_fetch)
    _force_key_fetch = False
    return str(key)


def forget_api_key() -> None:
    global _force_key_fetch
    _force_key_fetch = True


SENDER = Sender(
    table=TABLE,
    ledger=SendLedger(TABLE),
    limiter=SharedLimiter(TABLE, float(os.environ["THROUGHPUT_PER_SECOND"])),
    client=ProviderClient(os.environ["PROVIDER_API_URL"]),
    api_key=api_key,
    forget_api_key=forget_api_key,
    settings=SETTINGS,
)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its records carry send requests (numbers,
# message text).
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    records = event.get("Records", [])
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    report = SENDER.send_batch(records, deadline=deadline)
    failed = QUEUE.settle(report, {r["messageId"]: r.get("body") or "" for r in records})

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
            logger.error("send request moved to the DLQ", extra=extra)
        elif result.outcome in (
            "outcome_unknown",
            "account_error",
            "error",
            "failed_unknown_code",
            "conflicting_duplicate",
        ):
            logger.error("send request needs attention", extra=extra)
        else:
            logger.info("send request", extra=extra)
    if report.stopped:
        logger.warning("batch stopped calling the provider", extra={"why": report.stopped})
    for outcome, metric in METRICS.items():
        count = report.count(outcome)
        if count:
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=count)
    if report.stopped == "account":
        metrics.add_metric(name="ProviderAuthError", unit=MetricUnit.Count, value=1)
    dead = sum(1 for r in report.results if r.disposition is Disposition.DEAD_LETTER)
    if dead:
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=dead)

    def acknowledge(record: SQSRecord) -> None:
        if record.message_id in failed:
            raise RuntimeError("handed back; SQS will deliver it again")

    return process_partial_response(
        event=event, record_handler=acknowledge, processor=processor, context=context
    )


METRICS = {
    "accepted": "Accepted",
    "rejected": "Rejected",
    "suppressed": "Suppressed",
    "failed": "SendFailed",
    "failed_unknown_code": "UnknownErrorCode",
    "outcome_unknown": "OutcomeUnknown",
    "duplicate": "DuplicateRequests",
    "conflicting_duplicate": "ConflictingDuplicates",
    "throttled": "Throttled",
    "deferred": "Deferred",
    "transient_retry": "TransientRetries",
    "error": "RecordErrors",
    "paced": "PacedBack",
    "busy": "HeldByAnotherAttempt",
    "account_error": "AccountErrors",
}
