"""Consumer: SQS postback batch -> defusedxml parse -> DynamoDB, reporting failed records only."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge import observability
from mmsbridge.observability.batch import partial_batch_response
from mmsbridge.postbacks.service import ConsumerFunction, ConsumerFunctionSettings

SETTINGS = ConsumerFunctionSettings.from_env(os.environ)
logger, metrics = observability.telemetry()
CONSUMER = ConsumerFunction(SETTINGS, logger, metrics)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: its records carry postback bodies (numbers,
# message text).
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    failed = CONSUMER.apply(event.get("Records", []))
    return partial_batch_response(event, failed, context)
