"""The template's events-out wiring (docs/events.md): the state table's stream, the bus (the stack's own or
one named by EventBusName), the publisher's stream mapping with its checkpoint, bisection, retry limit and
on-failure queue, and what the publisher may do with each."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

from local.template.load import load_template
from local.template.resolve import load_stack
from local.template.specs import LocalStack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


@functools.cache
def deployed(**parameters: str) -> LocalStack:
    """The template resolved as a deployment with these parameters (shared: read it, never change it)."""
    return load_stack(ROOT / "template.yaml", None, overrides=parameters)


def stream_mapping(stack: LocalStack) -> dict[str, Any]:
    (event,) = stack.resources["EventPublisherFunction"].properties["Events"].values()
    assert event["Type"] == "DynamoDB"
    return event["Properties"]


def test_the_state_table_streams_both_images(template):
    # A send request's settlement is told from its old status, so the old image is needed too.
    stream = template["Resources"]["StateTable"]["Properties"]["StreamSpecification"]
    assert stream == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_by_default_the_stack_creates_its_own_bus_and_publishes_there(template):
    assert template["Parameters"]["EventBusName"]["Default"] == ""
    stack = deployed()
    bus = stack.resources["EventBus"]
    assert bus.properties["Name"] == f"{stack.stack_name}-events"
    environment = stack.functions()["EventPublisherFunction"].environment
    assert environment["EVENT_BUS_NAME"] == bus.properties["Name"]
    assert environment["STATE_TABLE"] == stack.tables()["StateTable"].name


def test_a_named_bus_is_used_as_it_is_and_not_created():
    stack = deployed(EventBusName="default")
    assert "EventBus" not in stack.resources
    assert stack.functions()["EventPublisherFunction"].environment["EVENT_BUS_NAME"] == "default"


@pytest.mark.parametrize("bus_name", ["", "default"])
def test_the_publisher_may_put_events_on_its_bus_only(bus_name):
    stack = deployed(EventBusName=bus_name)
    role = stack.resources["EventPublisherFunctionRole"].properties
    (policy,) = role["Policies"]
    (put,) = [s for s in policy["PolicyDocument"]["Statement"] if "events:PutEvents" in str(s["Action"])]
    name = bus_name or f"{stack.stack_name}-events"
    assert put["Action"] == "events:PutEvents"
    assert put["Resource"] == f"arn:aws:events:{stack.region}:{stack.account_id}:event-bus/{name}"


def test_the_outputs_name_the_bus(template):
    outputs = template["Outputs"]
    assert {"EventBusName", "EventBusArn", "EventPublisherDLQUrl"} <= set(outputs)
    assert outputs["EventBusName"]["Value"] == {
        "Fn::If": ["CreateEventBus", {"Ref": "EventBus"}, {"Ref": "EventBusName"}]
    }


def test_the_stream_mapping_checkpoints_bisects_and_gives_up_to_its_queue():
    stack = deployed()
    mapping = stream_mapping(stack)
    table = stack.tables()["StateTable"].name
    assert mapping["Stream"].startswith(
        f"arn:aws:dynamodb:{stack.region}:{stack.account_id}:table/{table}/stream/"
    )
    # Every record the stream still holds, from the first.
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    # The handler names the record to resume at; a batch that fails whole is split to isolate its record.
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    # A record that keeps failing ends in the on-failure queue, within the stream's 24 hours.
    assert 0 < mapping["MaximumRetryAttempts"] <= 10
    assert 0 < mapping["MaximumRecordAgeInSeconds"] <= 86400
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Type": "SQS", "Destination": stack.queues()["EventPublisherDLQ"].arn}
    }
    assert mapping["BatchSize"] == "100"
    assert stream_mapping(deployed(EventPublisherBatchSize="10"))["BatchSize"] == "10"


def test_the_publishers_queue_and_lag_are_alarmed(template):
    resources = template["Resources"]
    dlq = resources["EventPublisherDLQAlarm"]["Properties"]
    assert (dlq["Namespace"], dlq["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventPublisherDLQ", "QueueName"]}}
    ]
    assert (dlq["Threshold"], dlq["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    lag = resources["EventPublisherIteratorAgeAlarm"]["Properties"]
    assert (lag["Namespace"], lag["MetricName"], lag["Statistic"]) == ("AWS/Lambda", "IteratorAge", "Maximum")
    assert lag["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "EventPublisherFunction"}}]
    # IteratorAge is in milliseconds: well inside the stream's 24 hours.
    assert lag["Threshold"] < 86_400_000
    dlq_queue = resources["EventPublisherDLQ"]["Properties"]
    assert dlq_queue["MessageRetentionPeriod"] == 1209600
