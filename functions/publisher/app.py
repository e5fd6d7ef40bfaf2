"""Event publisher: the state table's stream -> EventBridge events (each real change once, under a stable id),
resuming a failed batch at its first unpublished record."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge import observability
from mmsbridge.events.service import PublisherFunction, PublisherFunctionSettings

SETTINGS = PublisherFunctionSettings.from_env(os.environ)
logger, metrics = observability.telemetry()
PUBLISHER = PublisherFunction(SETTINGS, logger, metrics)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its records carry the table's items (numbers,
# message text).
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return PUBLISHER.publish(event.get("Records", []))
