"""The local DynamoDB stream event source mapping against a real moto server: Lambda's event shape, batches,
checkpoints from partial batch responses (a handler that fails part-way), retries, bisection, the record age
limit, the on-failure destination's description of a batch given up, and the wiring from template.yaml."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from local import stack as local_stack
from local.runtime import patched_environ
from local.stream_mapping import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    StreamEventSourceMapping,
    checkpoint_of,
    stream_mappings_from_stack,
)
from local.template.specs import DynamoDBEvent
from tests import waiting

REGION = "us-east-1"
REPORT = ["ReportBatchItemFailures"]


@pytest.fixture(scope="module")
def aws(moto_server) -> dict[str, Any]:
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, REGION)):
        return {name: boto3.client(name) for name in ("dynamodb", "dynamodbstreams", "sqs")}


@pytest.fixture
def table(aws) -> str:
    name = f"stream-{uuid.uuid4().hex[:10]}"
    aws["dynamodb"].create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return name


@pytest.fixture
def dlq(aws) -> str:
    return aws["sqs"].create_queue(QueueName=f"stream-dlq-{uuid.uuid4().hex[:10]}")["QueueUrl"]


class Recorder:
    """A handler: records each batch's keys, answers with `answer(batch_keys, call_number)`."""

    def __init__(self, answer: Callable[[list[str], int], Any] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.events: list[dict[str, Any]] = []
        self._answer = answer
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> Any:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        with self._lock:
            self.batches.append(keys)
            self.events.append(event)
            call = len(self.batches)
        return self._answer(keys, call) if self._answer else None

    def seen(self) -> list[str]:
        return [key for batch in self.batches for key in batch]


@pytest.fixture
def mapping(moto_server, aws, table, dlq):
    started: list[StreamEventSourceMapping] = []

    def start(invoke: Callable[[dict], Any], *, clock=time.time, **settings: Any) -> StreamEventSourceMapping:
        event = DynamoDBEvent(name="Stream", stream_arn="", table_logical_id=None, **settings)
        with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, REGION)):
            made = StreamEventSourceMapping(
                event,
                invoke=invoke,
                region=REGION,
                table_name=table,
                function_arn="arn:aws:lambda:us-east-1:123456789012:function:under-test",
                on_failure_queue_url=dlq,
                client_factory=lambda service: boto3.client(service, region_name=REGION),
                poll_interval_s=0.05,
                retry_delay_s=0.05,
                clock=clock,
            ).start()
        started.append(made)
        return made

    yield start
    for made in started:
        made.stop()


def put(aws, table: str, *keys: str, **extra: Any) -> None:
    for key in keys:
        item = {"pk": {"S": key}, **{name: {"S": value} for name, value in extra.items()}}
        aws["dynamodb"].put_item(TableName=table, Item=item)


def keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(count)]


def described(aws, dlq: str) -> list[dict[str, Any]]:
    messages = aws["sqs"].receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_records_arrive_in_order_in_lambdas_event_shape_and_batch_size(aws, table, mapping):
    handler = Recorder()
    made = mapping(handler, batch_size=3)
    put(aws, table, *keys("a", 7))
    aws["dynamodb"].put_item(
        TableName=table, Item={"pk": {"S": "a00"}, "blob": {"B": b"\x00\xff"}, "n": {"N": "1.5"}}
    )
    assert waiting.eventually(lambda: len(handler.seen()) == 8)
    assert made.wait_idle()
    assert handler.seen() == [*keys("a", 7), "a00"]
    assert all(len(batch) <= 3 for batch in handler.batches)

    stream_arn = aws["dynamodb"].describe_table(TableName=table)["Table"]["LatestStreamArn"]
    for event in handler.events:
        DynamoDBStreamModel.model_validate(event)  # Powertools' model of Lambda's DynamoDB stream event
    records = [r for e in handler.events for r in e["Records"]]
    assert {r["eventSource"] for r in records} == {"aws:dynamodb"}
    assert {r["eventSourceARN"] for r in records} == {stream_arn}
    assert [r["eventName"] for r in records] == ["INSERT"] * 7 + ["MODIFY"]
    modify = records[-1]["dynamodb"]
    assert modify["OldImage"] == {"pk": {"S": "a00"}}
    assert modify["NewImage"]["blob"] == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert modify["NewImage"]["n"] == {"N": "1.5"}
    assert isinstance(modify["ApproximateCreationDateTime"], int)
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers)
    json.dumps(handler.events)  # the event is plain JSON, as Lambda's is


def test_a_handler_failing_part_way_resumes_at_its_checkpoint_and_never_resends_what_came_before(
    aws, table, mapping
):
    def fail_at_the_third_once(batch: list[str], call: int) -> dict[str, Any]:
        if call == 1:
            return {"batchItemFailures": [{"itemIdentifier": numbers[batch[2]]}]}
        return {"batchItemFailures": []}

    numbers: dict[str, str] = {}
    handler = Recorder(fail_at_the_third_once)
    original = handler.__call__

    def invoke(event: dict[str, Any]) -> Any:
        for record in event["Records"]:
            numbers[record["dynamodb"]["Keys"]["pk"]["S"]] = record["dynamodb"]["SequenceNumber"]
        return original(event)

    written = keys("b", 6)
    put(aws, table, *written)  # all there before the mapping starts: TRIM_HORIZON, one batch of 6
    made = mapping(invoke, batch_size=10, function_response_types=REPORT)
    assert waiting.eventually(lambda: len(handler.batches) >= 2)
    assert made.wait_idle()
    assert handler.batches == [written, written[2:]]
    assert made.stats.snapshot()["checkpoints"] == 1
    assert made.stats.snapshot()["given_up"] == 0


def test_retries_exhausted_describe_the_batch_to_the_on_failure_queue_and_reading_goes_on(
    aws, table, dlq, mapping
):
    def fail_the_first_batch(batch: list[str], call: int) -> None:
        if batch[0] == "c00":
            raise RuntimeError("the handler failed")

    handler = Recorder(fail_the_first_batch)
    put(aws, table, *keys("c", 2))
    mapping(handler, batch_size=2, maximum_retry_attempts=2)
    assert waiting.eventually(lambda: described(aws, dlq), timeout=10) or pytest.fail("nothing described")
    put(aws, table, "d00")
    assert waiting.eventually(lambda: "d00" in handler.seen())
    assert handler.batches == [["c00", "c01"]] * 3 + [["d00"]]  # the first try and two retries


def test_the_description_is_lambdas(aws, table, dlq, mapping):
    put(aws, table, *keys("e", 3))
    made = mapping(Recorder(lambda batch, call: 1 / 0), batch_size=3, maximum_retry_attempts=0)
    (message,) = waiting.eventually(lambda: described(aws, dlq), timeout=10)
    made.stop()
    stream_arn = aws["dynamodb"].describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = aws["dynamodbstreams"].describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    info = message["DDBStreamBatchInfo"]
    assert info["shardId"] == shard["ShardId"]
    assert info["streamArn"] == stream_arn
    assert info["batchSize"] == 3
    assert int(info["startSequenceNumber"]) < int(info["endSequenceNumber"])
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert message["requestContext"]["condition"] == RETRY_ATTEMPTS_EXHAUSTED
    assert message["requestContext"]["functionArn"].endswith(":function:under-test")
    assert message["requestContext"]["approximateInvokeCount"] == 1
    assert message["responseContext"]["functionError"] == "Unhandled"
    assert message["version"] == "1.0"


def test_bisection_isolates_the_record_that_fails_and_the_others_go_through(aws, table, dlq, mapping):
    def poison(batch: list[str], call: int) -> None:
        if "f05" in batch:
            raise ValueError("f05 cannot be handled")

    handler = Recorder(poison)
    put(aws, table, *keys("f", 8))
    made = mapping(handler, batch_size=8, bisect_batch_on_function_error=True, maximum_retry_attempts=1)
    (message,) = waiting.eventually(lambda: described(aws, dlq), timeout=10)
    assert made.wait_idle()
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    handled = [key for batch in handler.batches if "f05" not in batch for key in batch]
    assert handled == [key for key in keys("f", 8) if key != "f05"]
    assert handler.batches.count(["f05"]) == 2  # tried alone, then its one retry
    assert made.stats.snapshot()["bisections"] >= 2


def test_an_invalid_partial_response_fails_the_whole_batch(aws, table, mapping):
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]}])
    handler = Recorder(lambda batch, call: next(answers, None))
    put(aws, table, *keys("g", 3))
    made = mapping(handler, batch_size=5, function_response_types=REPORT)
    assert waiting.eventually(lambda: len(handler.batches) >= 2)
    assert made.wait_idle()
    assert handler.batches == [keys("g", 3), keys("g", 3)]
    assert made.stats.snapshot()["malformed_responses"] == 1


def test_records_older_than_the_age_limit_are_given_up_without_an_invocation(aws, table, dlq, mapping):
    put(aws, table, *keys("h", 2))
    handler = Recorder()
    mapping(handler, maximum_record_age_s=60, clock=lambda: time.time() + 3600)
    (message,) = waiting.eventually(lambda: described(aws, dlq), timeout=10)
    assert message["requestContext"]["condition"] == RECORD_AGE_EXCEEDED
    assert message["requestContext"]["approximateInvokeCount"] == 0
    assert message["DDBStreamBatchInfo"]["batchSize"] == 2
    assert handler.batches == []


def test_latest_reads_only_what_is_written_after_start(aws, table, mapping):
    put(aws, table, "i-before")
    handler = Recorder()
    made = mapping(handler, starting_position="LATEST")
    put(aws, table, "i-after")
    assert waiting.eventually(lambda: handler.seen())
    assert made.wait_idle()
    assert handler.seen() == ["i-after"]


def test_the_batching_window_gathers_records_written_within_it(aws, table, mapping):
    handler = Recorder()
    mapping(handler, batch_size=10, maximum_batching_window_s=1)
    put(aws, table, "j0")
    time.sleep(0.3)
    put(aws, table, "j1", "j2")
    assert waiting.eventually(lambda: handler.seen())
    assert handler.batches == [["j0", "j1", "j2"]]


def test_checkpoint_reading():
    numbers = ["10", "11", "12"]
    assert checkpoint_of(None, numbers, report_batch_item_failures=True).checkpoint is None
    assert checkpoint_of({"batchItemFailures": []}, numbers, report_batch_item_failures=True).error is None
    many = {"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "11"}]}
    assert checkpoint_of(many, numbers, report_batch_item_failures=True).checkpoint == 1
    assert checkpoint_of(many, numbers, report_batch_item_failures=False).checkpoint is None
    assert checkpoint_of([], numbers, report_batch_item_failures=True).error
    assert checkpoint_of({"batchItemFailures": [{}]}, numbers, report_batch_item_failures=True).error


def test_the_templates_stream_event_becomes_a_mapping_with_its_settings(aws_stack):
    functions = {"EventPublisherFunction": type("F", (), {"invoke": staticmethod(lambda event: None)})()}
    (made,) = stream_mappings_from_stack(aws_stack, functions)
    event = made.event
    assert made.name == "EventPublisherFunction.StateStream"
    assert made.table_name == aws_stack.tables()["StateTable"].name
    assert made.on_failure_queue_url == aws_stack.queues()["EventPublisherDLQ"].url
    assert made.report_batch_item_failures
    assert (event.starting_position, event.maximum_batching_window_s) == ("TRIM_HORIZON", 1)
    assert event.bisect_batch_on_function_error
    assert event.maximum_retry_attempts >= 0
    assert event.maximum_record_age_s > 0
    assert made.function_arn.endswith(aws_stack.functions()["EventPublisherFunction"].name)
