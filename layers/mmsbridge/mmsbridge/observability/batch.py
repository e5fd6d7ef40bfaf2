"""The partial batch response of an SQS-fed function (ReportBatchItemFailures): the batch is worked in one
pass, then Powertools' BatchProcessor reports each record, failed or acknowledged, so only the failed ones
come back."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

__all__ = ["partial_batch_response"]


def partial_batch_response(
    event: Mapping[str, Any],
    failed_ids: Collection[str],
    context: LambdaContext,
    *,
    raise_on_entire_batch_failure: bool = True,
) -> dict[str, Any]:
    """The response that hands back the records whose message id is in `failed_ids` and acknowledges the
    rest. With `raise_on_entire_batch_failure` (Powertools' default), a batch whose every record failed
    fails the invocation instead."""

    def acknowledge(record: SQSRecord) -> None:
        if record.message_id in failed_ids:
            raise RuntimeError("not acknowledged; SQS will deliver it again")

    processor = BatchProcessor(
        event_type=EventType.SQS, raise_on_entire_batch_failure=raise_on_entire_batch_failure
    )
    return dict(
        process_partial_response(
            event=dict(event), record_handler=acknowledge, processor=processor, context=context
        )
    )
