"""The template's alarms and dashboard, and the metric lists in docs/, against the metrics the handlers emit
(tests/emitted_metrics.py, kept honest by tests/integration/test_metrics_emitted.py, which reads them from
the handlers' own EMF). CloudWatch matches a metric by namespace, name and its whole dimension set, and an
alarm on a metric nobody emits never fires: it only says "insufficient data", or with
TreatMissingData=notBreaching, nothing at all."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from local.template.resolve import load_stack
from local.template.specs import LocalStack
from tests.emitted_metrics import DIMENSION, EMITTED, NAMESPACE
from tests.unit.test_dashboard import emitted as source_names

ROOT = Path(__file__).resolve().parents[2]
# The documents that name metrics and alarms: the ingest's and the consumer's in postbacks.md, the sender's in
# send-requests.md; any of them (and the README) may name one in passing.
POSTBACKS = (ROOT / "docs" / "postbacks.md").read_text()
DOCS = "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])


@functools.cache
def deployed() -> LocalStack:
    """The template resolved as a deployment, every parameter at its default (read it, never change it)."""
    return load_stack(ROOT / "template.yaml", None)


def alarms() -> dict[str, dict[str, Any]]:
    return {
        name: resource.properties
        for name, resource in deployed().resources.items()
        if resource.type == "AWS::CloudWatch::Alarm"
    }


def watched(alarm: dict[str, Any]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """(namespace, metric name, dimensions) of each metric the alarm reads: its own, or each of its metric
    math's MetricStat queries."""
    if "MetricName" in alarm:
        metrics = [alarm]
    else:
        metrics = [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]
    assert metrics, alarm
    return [
        (m["Namespace"], m["MetricName"], tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
        for m in metrics
    ]


def emitted_triples() -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
    return {
        (NAMESPACE, name, ((DIMENSION, service),)) for service, names in EMITTED.items() for name in names
    }


def test_every_function_emits_in_the_namespace_and_under_the_service_the_list_names():
    """The list's keys are the values the functions' POWERTOOLS_SERVICE_NAME give the service dimension."""
    functions = deployed().functions().values()
    assert {f.environment["POWERTOOLS_METRICS_NAMESPACE"] for f in functions} == {NAMESPACE}
    assert {f.environment["POWERTOOLS_SERVICE_NAME"] for f in functions} == set(EMITTED)


@pytest.mark.parametrize("service", sorted(EMITTED))
def test_every_metric_named_in_a_handlers_source_is_in_the_list(service):
    """A metric on a path no integration test drives still cannot be missing from the list."""
    assert source_names(service) <= EMITTED[service]


@pytest.mark.parametrize("name", sorted(alarms()))
def test_every_alarm_watches_a_metric_that_is_emitted(name):
    stack = deployed()
    queues = {queue.name for queue in stack.queues().values()}
    functions = {function.name for function in stack.functions().values()}
    api = stack.resources["PostbackApi"].properties
    for namespace, metric, dimensions in watched(alarms()[name]):
        if namespace == NAMESPACE:
            # The handlers' own: exactly the one dimension Powertools adds, with a service that emits it.
            assert (namespace, metric, dimensions) in emitted_triples(), (
                f"{name} watches {metric} {dimensions}, which no handler emits"
            )
        elif namespace == "AWS/SQS":
            assert len(dimensions) == 1
            assert dimensions[0][0] == "QueueName"
            assert dimensions[0][1] in queues
        elif namespace == "AWS/Lambda":
            assert len(dimensions) == 1
            assert dimensions[0][0] == "FunctionName"
            assert dimensions[0][1] in functions
        elif namespace == "AWS/ApiGateway":
            assert dict(dimensions) == {"ApiName": api["Name"], "Stage": api["StageName"]}
        else:
            pytest.fail(f"{name} watches {namespace}/{metric}: a namespace nothing in the stack publishes")


def test_the_handlers_alarms_are_the_ones_the_docs_rely_on():
    """A rename in the template that dropped one of these would leave its metric unwatched."""
    watched_here = {triple for alarm in alarms().values() for triple in watched(alarm)}
    handlers = {
        (metric, dict(dimensions)[DIMENSION]) for ns, metric, dimensions in watched_here if ns == NAMESPACE
    }
    assert {
        ("Quarantined", "consumer"),
        ("StaleMessages", "stale"),
        ("ProviderAuthError", "sender"),
        ("OutcomeUnknown", "sender"),
        ("RefusedToken", "ingest"),
        ("RefusedAddress", "ingest"),
    } <= handlers


# ---------------------------------------------------------------------------------------------- dashboard


def dashboard_rows() -> list[list[Any]]:
    body = json.loads(deployed().resources["Dashboard"].properties["DashboardBody"])
    return [row for widget in body["widgets"] for row in widget["properties"].get("metrics", [])]


def test_the_dashboard_graphs_every_emitted_metric_and_only_those():
    graphed = set()
    for row in dashboard_rows():
        if row[0] == NAMESPACE:
            assert len(row) == 5, row  # namespace, name, the one dimension and its value, options
            assert row[2] == DIMENSION, row
            graphed.add((NAMESPACE, row[1], ((DIMENSION, row[3]),)))
    assert graphed == emitted_triples()


# ------------------------------------------------------------------------------------------------- docs


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def names(text: str) -> set[str]:
    return set(re.findall(r"`(\w+)`", text))


def promised() -> dict[str, set[str]]:
    """The metrics the docs list for each service: the ingest's "metrics ... in the `mmsbridge`
    namespace", each "Metrics (namespace `mmsbridge`, service `X`): ..." paragraph, and every "metric `X`"
    said of one of them elsewhere (filed under the services that emit it)."""
    listed: dict[str, set[str]] = {}
    ingest = re.search(
        r"the metrics (.*?) in the `(\w+)`\s+namespace", section(POSTBACKS, "The ingest path"), re.DOTALL
    )
    assert ingest is not None
    assert ingest[2] == NAMESPACE
    listed["ingest"] = names(ingest[1])
    for found in re.finditer(
        r"Metrics \(namespace `(\w+)`, service `(\w+)`\): (.*?)\.(?:\s|$)", DOCS, re.DOTALL
    ):
        assert found[1] == NAMESPACE
        listed.setdefault(found[2], set()).update(names(found[3].split("Alarms:")[0]))
    for name in re.findall(r"metric(?: and alarm)? `(\w+)`", DOCS):
        services = [service for service, emitted in EMITTED.items() if name in emitted]
        assert services, f"the docs promise a metric `{name}` that no handler emits"
        for service in services:
            listed.setdefault(service, set()).add(name)
    return listed


def test_the_docs_list_the_metrics_each_handler_emits():
    found = promised()
    assert set(found) == set(EMITTED)
    for service, listed in found.items():
        assert listed <= EMITTED[service], f"the docs promise {listed - EMITTED[service]} from {service}"
    # The lists are complete where the docs give one per service.
    for service in ("ingest", "consumer", "sender"):
        assert found[service] == EMITTED[service], service


def test_every_metric_the_docs_promise_has_a_place_on_the_dashboard():
    graphed = {(row[1], row[3]) for row in dashboard_rows() if row[0] == NAMESPACE}
    for service, listed in promised().items():
        for name in listed:
            assert (name, service) in graphed, f"{service}'s {name} is not on the dashboard"


def test_every_alarm_the_docs_name_is_in_the_template():
    named = set(re.findall(r"`(\w+Alarm)`", DOCS))
    assert named
    assert named <= set(alarms())
