"""Logs and metrics as every function writes them: Powertools Logger and Metrics, made once per container by
its handler module (service name and namespace from the function's POWERTOOLS_* environment), and counts
added as Count metrics.

The partial batch response of the SQS-fed functions is in `observability.batch`, apart, so that the ingest
and the stale check never import Powertools' batch utility.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["count", "telemetry"]


def telemetry() -> tuple[Logger, Metrics]:
    """The function's Logger and Metrics. Call it at import, with the function's environment in place: both
    read their service name from it."""
    # botocore's DEBUG lines print response bodies: for GetSecretValue that is a secret (the postback token,
    # the provider's API key). They stay off even when an operator turns DEBUG logging on.
    logging.getLogger("botocore.parsers").setLevel(logging.INFO)
    return Logger(), Metrics()


def count(metrics: Metrics, counts: Mapping[str, int], *, zeros: bool = True) -> None:
    """Add each count as a Count metric of its name; without `zeros`, a zero count is left out."""
    for name, value in counts.items():
        if value or zeros:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
