"""The template's dashboard: valid JSON once resolved, and in step with the metrics the functions emit
(a metric renamed in code would otherwise leave an empty graph nobody notices)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local import stack as local_stack
from mmsbridge.ingest.admission import Refusal

ROOT = Path(__file__).resolve().parents[2]
LITERAL = re.compile(r'add_metric\(name="(\w+)"')


@pytest.fixture(scope="module")
def dashboard() -> dict:
    stack = local_stack.load_local_stack("http://127.0.0.1:1")
    return json.loads(stack.resources["Dashboard"].properties["DashboardBody"])


def emitted(service: str) -> set[str]:
    source = (ROOT / "functions" / service / "app.py").read_text()
    names = set(LITERAL.findall(source))
    if service == "sender":
        table = source[source.index("METRICS = {") :]
        names |= set(re.findall(r'^\s+"\w+": "(\w+)",$', table, re.MULTILINE))
    if service == "ingest":
        names |= {refusal.metric_name for refusal in Refusal}
    return names


def graphed(dashboard: dict, namespace: str) -> dict[str, set[str]]:
    """Metric names on the dashboard under `namespace`, by their first dimension's value."""
    found: dict[str, set[str]] = {}
    for widget in dashboard["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if metric[0] == namespace:
                found.setdefault(metric[3], set()).add(metric[1])
    return found


@pytest.mark.parametrize("service", ["ingest", "consumer", "stale", "sender"])
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
