"""The event publisher's Lambda handler, wired from template.yaml, on moto: the consumer's planner writes
postbacks' items to the stack's state table, its stream's records are read as Lambda's event source mapping
reads them (GetShardIterator, GetRecords) and handed to the handler as a DynamoDB stream event, and a rule
on the stack's bus delivers what it publishes to a queue. Every event delivered validates against its JSON
Schema (docs/events/); a batch that fails part-way names its checkpoint, and the retry from it publishes
nothing under a new id."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from local import aws_faults
from local import stack as local_stack
from local.runtime import LocalFunction, patched_environ
from mmsbridge.aws.state_table import StateTable
from mmsbridge.events.changes import SOURCE
from mmsbridge.postbacks.planner import plan_batch
from tests.unit.test_events import body, received
from tests.unit.test_events_schemas import validator

T0 = datetime(2024, 2, 6, 14, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def aws(moto_server, aws_stack) -> dict[str, Any]:
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        return {name: boto3.client(name) for name in ("dynamodb", "dynamodbstreams", "events", "sqs")}


@pytest.fixture(scope="module")
def publisher(moto_server, aws_stack) -> LocalFunction:
    return local_stack.function_for(
        aws_stack,
        "EventPublisherFunction",
        moto_server.endpoint_url,
        name_suffix="UnderTest",
        max_containers=1,
    )


def ensure_bus(events: Any, publisher: LocalFunction) -> str:
    """The bus the template gives the publisher, created unless it exists; its name."""
    bus_name = publisher.environment["EVENT_BUS_NAME"]
    if bus_name not in {bus["Name"] for bus in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus_name)
    return bus_name


@pytest.fixture(scope="module")
def subscriber(aws, publisher) -> str:
    """A queue behind a rule on the bus the template gives the publisher (created here when the local stack
    has not): every mmsbridge event lands on it. Its URL."""
    bus_name = ensure_bus(aws["events"], publisher)
    queue_url = aws["sqs"].create_queue(QueueName=f"publisher-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    rule = f"publisher-test-{uuid.uuid4().hex[:8]}"
    aws["events"].put_rule(Name=rule, EventBusName=bus_name, EventPattern=json.dumps({"source": [SOURCE]}))
    aws["events"].put_targets(Rule=rule, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


@pytest.fixture
def delivered(aws, subscriber) -> Any:
    def read() -> list[dict[str, Any]]:
        events = []
        while (
            messages := aws["sqs"]
            .receive_message(QueueUrl=subscriber, MaxNumberOfMessages=10)
            .get("Messages", [])
        ):
            for message in messages:
                events.append(json.loads(message["Body"]))
                aws["sqs"].delete_message(QueueUrl=subscriber, ReceiptHandle=message["ReceiptHandle"])
        return events

    read()  # what earlier tests left
    return read


class Stream:
    """The state table's stream, read from the position it had when made (LATEST), as the event source
    mapping reads it; `event()` is the DynamoDB stream event Lambda hands the function."""

    def __init__(self, aws: dict[str, Any], table_name: str) -> None:
        self._streams = aws["dynamodbstreams"]
        self.arn = aws["dynamodb"].describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        shards = self._streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        self._iterators = [
            self._streams.get_shard_iterator(
                StreamArn=self.arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for shard in shards
        ]

    def records(self) -> list[dict[str, Any]]:
        found = []
        for index, iterator in enumerate(self._iterators):
            page = self._streams.get_records(ShardIterator=iterator)
            found.extend(page["Records"])
            self._iterators[index] = page["NextShardIterator"]
        return [self._as_lambda_gets_it(record) for record in found]

    def _as_lambda_gets_it(self, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):  # boto3 parses it; Lambda's event carries epoch seconds
            dynamodb["ApproximateCreationDateTime"] = created.timestamp()
        return {**record, "dynamodb": dynamodb, "eventSourceARN": self.arn}

    @staticmethod
    def event(records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": records}


@pytest.fixture
def table(aws, aws_stack) -> StateTable:
    return StateTable(aws["dynamodb"], aws_stack.tables()["StateTable"].name)


def write(table: StateTable, *postbacks: bytes) -> None:
    """Each postback's items as the consumer writes them, one batch per postback, a second apart."""
    for step, data in enumerate(postbacks):
        assert (
            table.put_all(list(plan_batch([received(data, T0 + timedelta(seconds=step))]).puts.values()))
            == []
        )


def a_message_and_a_reply() -> list[bytes]:
    """A message sent, then delivered, an inbound reply, and a late duplicate of the first report."""
    tracking = {"TRACKINGID": f"TRK-{uuid.uuid4().hex}"}
    reply = body("sms_mo_n211.xml", TRANSACTIONID=f"TX-{uuid.uuid4().hex}")
    sent, delivered = body("mms_mt_n101.xml", **tracking), body("mms_mt_n102.xml", **tracking)
    return [sent, delivered, reply, sent]


def test_the_handler_publishes_each_change_once_and_every_event_validates(aws, table, publisher, delivered):
    stream = Stream(aws, table.name)
    write(table, *a_message_and_a_reply())
    records = stream.records()
    assert records

    assert publisher.invoke(Stream.event(records)) == {"batchItemFailures": []}
    events = delivered()
    assert sorted((e["detail-type"], e["detail"].get("new_state")) for e in events) == [
        ("Inbound Message Received", None),
        ("Message State Changed", "DELIVERED"),
        ("Message State Changed", "SENT"),
    ]
    assert {e["source"] for e in events} == {SOURCE}
    for event in events:
        validator(event["detail-type"]).validate(event["detail"])

    # The same batch again (a retry of the whole batch): the same events, under the same ids.
    assert publisher.invoke(Stream.event(records)) == {"batchItemFailures": []}
    assert sorted(e["detail"]["event_id"] for e in delivered()) == sorted(
        e["detail"]["event_id"] for e in events
    )


def test_a_batch_eventbridge_keeps_refusing_resumes_at_its_first_unpublished_record(
    aws, table, publisher, delivered
):
    stream = Stream(aws, table.name)
    write(table, *a_message_and_a_reply())
    records = stream.records()
    client = publisher.module.PUBLISHER.publisher._client
    with aws_faults.inject(client, "PutEvents", rate=1.0, status=400, code="ThrottlingException"):
        response = publisher.invoke(Stream.event(records))
    (failure,) = response["batchItemFailures"]
    sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
    assert failure["itemIdentifier"] in sequence_numbers
    assert delivered() == []

    # Lambda resumes at the checkpoint: the records before it are never sent again.
    resumed = records[sequence_numbers.index(failure["itemIdentifier"]) :]
    assert publisher.invoke(Stream.event(resumed)) == {"batchItemFailures": []}
    events = delivered()
    assert len(events) == 3
    assert len({e["detail"]["event_id"] for e in events}) == 3
    for event in events:
        validator(event["detail-type"]).validate(event["detail"])


def test_a_stream_record_that_publishes_nothing_is_not_handed_back(aws, table, publisher, delivered):
    stream = Stream(aws, table.name)
    (sent, *_) = a_message_and_a_reply()
    write(table, sent)
    write(table, sent)  # a provider retry of the same report: a re-put, no change
    assert publisher.invoke(Stream.event(stream.records())) == {"batchItemFailures": []}
    assert [e["detail"]["new_state"] for e in delivered()] == ["SENT"]
