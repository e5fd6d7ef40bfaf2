"""The template's dashboard: valid JSON once resolved, and in step with the metrics the functions emit
(a metric renamed in code would otherwise leave an empty graph nobody notices)."""

from __future__ import annotations

import json

import pytest

from local import stack as local_stack
from mmsbridge.events import service as publisher
from mmsbridge.ingest import service as ingest
from mmsbridge.postbacks import service as consumer
from mmsbridge.sending import service as sender
from mmsbridge.sending import upkeep as stale

# Each function's feature module, by the function's service name.
FEATURES = {"ingest": ingest, "consumer": consumer, "sender": sender, "stale": stale, "publisher": publisher}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    stack = local_stack.load_local_stack("http://127.0.0.1:1")
    return json.loads(stack.resources["Dashboard"].properties["DashboardBody"])


def emitted(service: str) -> set[str]:
    """The metrics a function's feature module counts: every metric name it emits is in its METRIC_NAMES."""
    return set(FEATURES[service].METRIC_NAMES)


def graphed(dashboard: dict, namespace: str) -> dict[str, set[str]]:
    """Metric names on the dashboard under `namespace`, by their first dimension's value."""
    found: dict[str, set[str]] = {}
    for widget in dashboard["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if metric[0] == namespace:
                found.setdefault(metric[3], set()).add(metric[1])
    return found


@pytest.mark.parametrize("service", sorted(FEATURES))
def test_every_metric_a_function_emits_is_graphed_and_nothing_else(dashboard, service):
    assert emitted(service)
    assert graphed(dashboard, "mmsbridge")[service] == emitted(service)


def dimension_values(dashboard: dict, namespace: str) -> set[str]:
    return {
        metric[3]
        for widget in dashboard["widgets"]
        for metric in widget["properties"]["metrics"]
        if metric[0] == namespace
    }


def test_every_queue_and_function_is_graphed_by_its_resolved_name(dashboard):
    stack = local_stack.load_local_stack("http://127.0.0.1:1")
    assert dimension_values(dashboard, "AWS/SQS") == {q.name for q in stack.queues().values()}
    assert dimension_values(dashboard, "AWS/Lambda") == {f.name for f in stack.functions().values()}
    assert dimension_values(dashboard, "AWS/ApiGateway") == {f"{stack.stack_name}-postbacks"}
    assert {widget["properties"]["region"] for widget in dashboard["widgets"]} == {stack.region}
