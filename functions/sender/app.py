"""Sender: SQS send requests -> the provider's XML API, at most once, paced by a shared limiter, E113
re-driven with backoff."""

import os
import time

from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge import observability
from mmsbridge.observability.batch import partial_batch_response
from mmsbridge.sending.service import SenderFunction, SenderFunctionSettings

SETTINGS = SenderFunctionSettings.from_env(os.environ)
logger, metrics = observability.telemetry()
SENDING = SenderFunction(SETTINGS, logger, metrics)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its records carry send requests (numbers,
# message text).
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    failed = SENDING.send(event.get("Records", []), deadline=deadline)
    # A batch handed back whole (throttled, the account refused) is an answer, not a failed invocation: each
    # record already has its visibility timeout.
    return partial_batch_response(event, failed, context, raise_on_entire_batch_failure=False)
