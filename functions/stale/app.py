"""Hourly: count sent messages with no final state after STALE_MESSAGE_HOURS (metric StaleMessages)."""

import os
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge import aws
from mmsbridge.state_table import StateTable
from mmsbridge.state_writes import iso

TABLE = StateTable(aws.client("dynamodb"), os.environ["STATE_TABLE"])
STALE_AFTER = timedelta(hours=float(os.environ.get("STALE_MESSAGE_HOURS", "72")))

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    cutoff = iso(datetime.now(UTC) - STALE_AFTER)
    stale = [item["tracking_id"] for item in TABLE.open_messages(older_than=cutoff, close_final=True)]
    metrics.add_metric(name="StaleMessages", unit=MetricUnit.Count, value=len(stale))
    logger.info("stale messages counted", extra={"stale": len(stale), "cutoff": cutoff, "sample": stale[:20]})
    return {"stale": len(stale), "cutoff": cutoff}
