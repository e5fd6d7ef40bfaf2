"""The metrics the handlers emit, and a reader for the CloudWatch embedded metric format (EMF) they print.

Powertools Metrics prints one JSON document per flush to stdout (the end of each invocation); CloudWatch
turns each into data points of `Namespace`, one per dimension set, by metric name. `EMITTED` is every metric
each function emits, by the value of its `service` dimension: `tests/integration/test_metrics_emitted.py`
drives each one through the real handler and checks it against the printed EMF (every metric there is in
`EMITTED`, and every one in `EMITTED` is seen), and `tests/unit/test_alarms_match_metrics.py` holds the
template's alarms and dashboard and the metric lists in docs/ to it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

NAMESPACE: Final = "mmsbridge"
# Powertools adds the function's service name (POWERTOOLS_SERVICE_NAME) as the only dimension; CloudWatch
# matches a metric by its whole dimension set, so an alarm must name exactly this one.
DIMENSION: Final = "service"

EMITTED: Final[dict[str, frozenset[str]]] = {
    "ingest": frozenset(
        {
            "Accepted",
            "StoreFailed",
            "RefusedAddress",
            "RefusedToken",
            "RefusedTokenUnavailable",
            "RefusedEmptyBody",
            "RefusedBadEncoding",
            "RefusedTooLarge",
        }
    ),
    "consumer": frozenset({"PostbacksApplied", "Quarantined", "RecordsFailed", "ProviderAlerts"}),
    "stale": frozenset({"StaleMessages"}),
    "sender": frozenset(
        {
            "Accepted",
            "Rejected",
            "Suppressed",
            "SendFailed",
            "UnknownErrorCode",
            "OutcomeUnknown",
            "DuplicateRequests",
            "ConflictingDuplicates",
            "Throttled",
            "Deferred",
            "TransientRetries",
            "RecordErrors",
            "PacedBack",
            "HeldByAnotherAttempt",
            "AccountErrors",
            "ProviderAuthError",
            "DeadLettered",
        }
    ),
    "publisher": frozenset({"EventsPublished", "EventsRetried", "EventsFailed"}),
}


@dataclass(frozen=True)
class Datum:
    """One metric of one EMF document: what CloudWatch would store under (namespace, dimensions, name)."""

    namespace: str
    dimensions: tuple[tuple[str, str], ...]  # (name, value), in the document's order
    name: str
    unit: str
    value: float


def documents(output: str) -> list[dict[str, Any]]:
    """The EMF documents in captured stdout (other lines, such as log records, are skipped)."""
    found = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            if isinstance(document, dict) and "_aws" in document:
                found.append(document)
    return found


def data(output: str) -> list[Datum]:
    """Every data point the EMF documents in `output` define, checked against the format as CloudWatch
    reads it: a millisecond timestamp, each dimension's value a string at the top level, each metric's value
    a number (or a list of numbers) at the top level."""
    points = []
    for document in documents(output):
        meta = document["_aws"]
        assert isinstance(meta["Timestamp"], int)
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = tuple((name, document[name]) for name in dimension_set)
                assert all(isinstance(value, str) for _, value in dimensions), dimensions
                for metric in directive["Metrics"]:
                    raw = document[metric["Name"]]
                    values = raw if isinstance(raw, list) else [raw]
                    assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
                    points.append(
                        Datum(directive["Namespace"], dimensions, metric["Name"], metric["Unit"], sum(values))
                    )
    return points


def totals(points: list[Datum]) -> Counter[tuple[str, tuple[tuple[str, str], ...], str]]:
    """The sum of each metric's values, by (namespace, dimensions, name)."""
    summed: Counter[tuple[str, tuple[tuple[str, str], ...], str]] = Counter()
    for point in points:
        summed[(point.namespace, point.dimensions, point.name)] += point.value
    return summed
