"""Consumer: SQS postback batch -> defusedxml parse -> DynamoDB, reporting failed records only."""

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge.aws import clients as aws
from mmsbridge.aws.archive import Archive
from mmsbridge.aws.state_table import StateTable
from mmsbridge.postbacks.consume import consume
from mmsbridge.postbacks.own_numbers import parse_own_numbers

TABLE = StateTable(aws.client("dynamodb"), os.environ["STATE_TABLE"])
# Bodies over 190 KiB travel by S3 key only; genuine postbacks never do, so the client waits until needed.
ARCHIVE = Archive(aws.LazyClient("s3"), os.environ["ARCHIVE_BUCKET"])
RETENTION_DAYS = int(os.environ.get("HISTORY_RETENTION_DAYS", "0"))
# The template's OwnNumbers: a postback for any other number is quarantined. Empty: the check is off. A
# malformed list fails the import, loudly, rather than letting every number in or quarantining everything.
OWN_NUMBERS = parse_own_numbers(os.environ.get("OWN_NUMBERS", ""))

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its records carry postback bodies (numbers,
# message text).
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    # The batch is applied in one pass (one BatchWriteItem per 25 items); BatchProcessor then reports each
    # record's outcome, so only the failed ones come back.
    outcome = consume(
        event.get("Records", []),
        table=TABLE,
        fetch=ARCHIVE.get,
        retention_days=RETENTION_DAYS,
        own_numbers=OWN_NUMBERS,
    )
    for rejected in outcome.quarantined:
        logger.warning(
            "postback quarantined",
            extra={
                "sha256": rejected.sha256,
                "reason": rejected.reason,
                "detail": rejected.detail,
                "raw_key": rejected.raw_key,
            },
        )
    for alert in outcome.alerts:
        logger.error("provider reported a processing error", extra={"event": alert})
    if outcome.failed:
        logger.error(
            "records failed; they will come back",
            extra={"failed": len(outcome.failed), "errors": outcome.errors[:10]},
        )
    metrics.add_metric(name="PostbacksApplied", unit=MetricUnit.Count, value=outcome.applied)
    metrics.add_metric(name="Quarantined", unit=MetricUnit.Count, value=len(outcome.quarantined))
    metrics.add_metric(name="RecordsFailed", unit=MetricUnit.Count, value=len(outcome.failed))
    metrics.add_metric(name="ProviderAlerts", unit=MetricUnit.Count, value=len(outcome.alerts))

    def acknowledge(record: SQSRecord) -> None:
        if record.message_id in outcome.failed:
            raise RuntimeError("not applied; SQS will deliver it again")

    return process_partial_response(
        event=event, record_handler=acknowledge, processor=processor, context=context
    )
