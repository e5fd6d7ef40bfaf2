"""The event publisher against EventBridge (moto in server mode, on 127.0.0.1): a rule on the bus delivers to
an SQS queue; entries go 10 a call; only failed entries are sent again; entries EventBridge refuses and an
unknown bus are reported, not retried; and the whole path from the state table's stream to the queue."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from local.moto import LOCAL_CREDENTIALS
from mmsbridge.aws.state_table import StateTable
from mmsbridge.events.changes import SOURCE, put_events_entry
from mmsbridge.events.partitions import PartitionReader
from mmsbridge.events.publisher import EventPublisher
from mmsbridge.events.relay import relay
from mmsbridge.events.stream_records import stream_changes
from mmsbridge.postbacks.planner import plan_batch
from tests.unit.test_events import T0, StreamTable, as_written, body, received
from tests.unit.test_events_schemas import validator

REGION = LOCAL_CREDENTIALS["AWS_REGION"]


@pytest.fixture(scope="module")
def aws(moto_server):
    options = {
        "endpoint_url": moto_server.endpoint_url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return {name: boto3.client(name, **options) for name in ("events", "sqs", "dynamodb", "dynamodbstreams")}


@pytest.fixture
def bus(aws):
    """A bus of its own, with a rule that sends every mmsbridge event to a queue; (bus name, queue URL)."""
    name = f"mmsbridge-events-{uuid.uuid4().hex[:8]}"
    aws["events"].create_event_bus(Name=name)
    queue_url = aws["sqs"].create_queue(QueueName=f"{name}-subscriber")["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    aws["events"].put_rule(Name="all", EventBusName=name, EventPattern=json.dumps({"source": [SOURCE]}))
    aws["events"].put_targets(Rule="all", EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return name, queue_url


def delivered(aws: Mapping[str, Any], queue_url: str) -> list[dict[str, Any]]:
    events = []
    while True:
        messages = aws["sqs"].receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            aws["sqs"].delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def entry(bus_name: str, number: int, detail: str | None = None) -> dict[str, Any]:
    return {
        "Source": SOURCE,
        "DetailType": "Inbound Message Received",
        "Detail": detail if detail is not None else json.dumps({"event_id": f"{number:064x}", "n": number}),
        "EventBusName": bus_name,
    }


class Recording:
    """The client, with each call's entries kept; `drop` makes the first call report those positions failed
    (ThrottlingException) without sending them, as EventBridge does for a throttled entry."""

    def __init__(self, client: Any, drop: frozenset[int] = frozenset()) -> None:
        self._client = client
        self._drop = drop
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(list(Entries))
        drop = self._drop if len(self.calls) == 1 else frozenset()
        sent = [e for i, e in enumerate(Entries) if i not in drop]
        answers = iter(self._client.put_events(Entries=sent)["Entries"] if sent else [])
        failed = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        results = [failed if i in drop else next(answers) for i in range(len(Entries))]
        return {"FailedEntryCount": sum(1 for r in results if r.get("ErrorCode")), "Entries": results}


def no_sleep(_: float) -> None:
    return None


def test_entries_go_ten_a_call_and_every_one_reaches_the_rule_s_target(aws, bus):
    bus_name, queue_url = bus
    client = Recording(aws["events"])
    result = EventPublisher(client, sleep=no_sleep).publish([entry(bus_name, n) for n in range(25)])
    assert result.ok
    assert [len(call) for call in client.calls] == [10, 10, 5]
    events = delivered(aws, queue_url)
    assert sorted(e["detail"]["n"] for e in events) == list(range(25))
    assert {e["source"] for e in events} == {SOURCE}
    assert {e["detail-type"] for e in events} == {"Inbound Message Received"}


def test_only_the_entries_that_failed_are_sent_again(aws, bus):
    bus_name, queue_url = bus
    client = Recording(aws["events"], drop=frozenset({1, 3}))
    sleeps: list[float] = []
    result = EventPublisher(client, sleep=sleeps.append).publish([entry(bus_name, n) for n in range(5)])
    assert result.ok
    assert result.retried == 2
    assert [[json.loads(e["Detail"])["n"] for e in call] for call in client.calls] == [
        [0, 1, 2, 3, 4],
        [1, 3],
    ]
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.05
    assert sorted(e["detail"]["n"] for e in delivered(aws, queue_url)) == [0, 1, 2, 3, 4]  # each once


def test_an_entry_eventbridge_refuses_is_reported_and_its_neighbours_delivered(aws, bus):
    bus_name, queue_url = bus
    client = Recording(aws["events"])
    entries = [entry(bus_name, 0), entry(bus_name, 1, detail="{not json"), entry(bus_name, 2)]
    result = EventPublisher(client, sleep=no_sleep).publish(entries)
    assert list(result.failed) == [1]
    assert result.failed[1].startswith("MalformedDetail")
    assert len(client.calls) == 1  # a refusal does not pass on a retry
    assert sorted(e["detail"]["n"] for e in delivered(aws, queue_url)) == [0, 2]


def test_an_unknown_bus_fails_every_entry_of_the_call(aws, bus):
    bus_name, queue_url = bus
    client = Recording(aws["events"])
    entries = [entry(bus_name, 0), entry("no-such-bus", 1), entry(bus_name, 2)]
    result = EventPublisher(client, sleep=no_sleep).publish(entries)
    assert sorted(result.failed) == [0, 1, 2]
    assert "ResourceNotFoundException" in result.failed[1]
    assert len(client.calls) == 1
    # EventBridge (moto) may have delivered the entries before the unknown one: they go again, same ids.
    assert {e["detail"]["n"] for e in delivered(aws, queue_url)} <= {0}


def test_from_the_state_table_s_stream_to_a_subscriber(aws, bus):
    """Postbacks' items written to a streamed table; its records, as Lambda gets them, relayed to the bus."""
    bus_name, queue_url = bus
    table_name = f"state-{uuid.uuid4().hex[:8]}"
    dynamodb = aws["dynamodb"]
    description = dynamodb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    table = StateTable(dynamodb, table_name)
    tracking = {"TRACKINGID": "TRK-STREAM-1"}
    reports = [
        body("mms_mt_n101.xml", **tracking),
        body("mms_mt_n102.xml", **tracking),
        body("sms_mo_n211.xml"),
    ]
    for step, data in enumerate([*reports, reports[0]]):  # the last: a late, lower-ranked duplicate
        arrival = received(data, T0 + timedelta(seconds=step))
        assert table.put_all(list(plan_batch([arrival]).puts.values())) == []

    stream = aws["dynamodbstreams"]
    (shard,) = stream.describe_stream(StreamArn=description["LatestStreamArn"])["StreamDescription"]["Shards"]
    iterator = stream.get_shard_iterator(
        StreamArn=description["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = stream.get_records(ShardIterator=iterator)["Records"]
    # moto writes a record for the duplicate's unchanged puts (DynamoDB writes none): they publish nothing.
    modified = [r for r in records if r["eventName"] == "MODIFY"]
    assert modified
    assert all(r["dynamodb"]["NewImage"] == r["dynamodb"]["OldImage"] for r in modified)

    outcome = relay(
        stream_changes(records),
        reader=PartitionReader(table),
        publisher=EventPublisher(aws["events"], sleep=no_sleep),
        bus_name=bus_name,
    )
    assert outcome.batch_item_failures() == {"batchItemFailures": []}
    events = delivered(aws, queue_url)
    summary = sorted((e["detail-type"], e["detail"].get("new_state")) for e in events)
    assert summary == [
        ("Inbound Message Received", None),
        ("Message State Changed", "DELIVERED"),
        ("Message State Changed", "SENT"),
    ]
    for event in events:
        validator(event["detail-type"]).validate(event["detail"])
    # The same records relayed again (a stream retry): the same ids.
    again = relay(
        stream_changes(records),
        reader=PartitionReader(table),
        publisher=EventPublisher(aws["events"], sleep=no_sleep),
        bus_name=bus_name,
    )
    assert sorted(e.event_id for e in again.published) == sorted(e["detail"]["event_id"] for e in events)
    delivered(aws, queue_url)


def test_a_decided_event_s_entry_is_accepted_by_eventbridge(aws, bus):
    bus_name, queue_url = bus
    (event,) = as_written(StreamTable(), body("mms_mt_n101.xml"), datetime(2024, 2, 6, tzinfo=UTC))
    result = EventPublisher(aws["events"], sleep=no_sleep).publish([put_events_entry(event, bus_name)])
    assert result.ok
    (arrived,) = delivered(aws, queue_url)
    assert arrived["detail"] == event.detail
