"""Ingest: API Gateway (REST) -> raw bytes to S3 and SQS -> 200, or 503 so the provider retries."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge import observability
from mmsbridge.ingest.service import IngestFunction, IngestFunctionSettings

SETTINGS = IngestFunctionSettings.from_env(os.environ)
logger, metrics = observability.telemetry()
INGEST = IngestFunction(SETTINGS, logger, metrics)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its path and pathParameters hold the URL token.
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return INGEST.answer(event)
