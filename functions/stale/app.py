"""Hourly: count sent messages with no final state after STALE_MESSAGE_HOURS (metric StaleMessages), and
reconcile OUTCOME_UNKNOWN send requests with the messages they became (mmsbridge.sending.reconcile).

Reconciliation runs here rather than in the consumer as a report arrives: the first report (N101/N201) often
arrives before the sender has even recorded the request OUTCOME_UNKNOWN, and a link is only safe once the
request's attempt window has closed and settled (no second candidate or competing request can still turn up),
which an hourly pass over the worklist sees and a report's arrival does not. The consumer stays a writer of
plain puts with no reads. A request is linked within about 45-105 minutes of its unknown outcome.
"""

import os
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mmsbridge.aws import clients as aws
from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.times import iso
from mmsbridge.sending.reconcile_store import Reconciler

TABLE = StateTable(aws.client("dynamodb"), os.environ["STATE_TABLE"])
STALE_AFTER = timedelta(hours=float(os.environ.get("STALE_MESSAGE_HOURS", "72")))
# Requests that went OUTCOME_UNKNOWN longer ago than this are left to `ops reconcile`: their reports have had
# days to arrive, and an old worklist is not read again every hour.
RECONCILE_LOOKBACK = timedelta(days=7)

logger = Logger()
metrics = Metrics()


@metrics.log_metrics
# Never the event, even with POWERTOOLS_LOGGER_LOG_EVENT set: no handler logs its event, so no switch can
# start logging what a future event carries.
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    now = datetime.now(UTC)
    cutoff = iso(now - STALE_AFTER)
    stale = [item["tracking_id"] for item in TABLE.open_messages(older_than=cutoff, close_final=True)]
    metrics.add_metric(name="StaleMessages", unit=MetricUnit.Count, value=len(stale))
    logger.info("stale messages counted", extra={"stale": len(stale), "cutoff": cutoff, "sample": stale[:20]})

    result = Reconciler(TABLE).run(
        now=now,
        by="stale function",
        since=now - RECONCILE_LOOKBACK,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    reconciled = {
        "looked_at": len(result.reviewed),
        "linked": [r.ledger.get("request_id") for r in result.reviewed if r.outcome == "linked"],
        "deferred": result.deferred,
    }
    logger.info(
        "outcome-unknown requests reconciled",
        extra={
            **reconciled,
            "not_linked": [
                {
                    "request_id": r.ledger.get("request_id"),
                    "outcome": r.outcome,
                    "reason": r.plan and r.plan.reason,
                }
                for r in result.reviewed
                if r.outcome != "linked"
            ][:20],
        },
    )
    return {"stale": len(stale), "cutoff": cutoff, "reconciled": reconciled}
