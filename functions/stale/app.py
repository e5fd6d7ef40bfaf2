"""Hourly: count sent messages with no final state after STALE_MESSAGE_HOURS (metric StaleMessages), and
reconcile OUTCOME_UNKNOWN send requests with the messages they became (mmsbridge.sending.upkeep)."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge import observability
from mmsbridge.sending.upkeep import StaleFunction, StaleFunctionSettings

SETTINGS = StaleFunctionSettings.from_env(os.environ)
logger, metrics = observability.telemetry()
STALE = StaleFunction(SETTINGS, logger, metrics)


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: no handler logs its event, so no switch can
# start logging what a future event carries.
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return STALE.run(time_left=lambda: context.get_remaining_time_in_millis() / 1000)
