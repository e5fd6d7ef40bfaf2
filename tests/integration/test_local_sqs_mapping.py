"""The local SQS event source mapping against a real moto server: Lambda's event shape, batching, deletes,
partial batch responses, redrive to the DLQ, filters, pollers and their lifecycle."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from local import stack as local_stack
from local.runtime import patched_environ
from local.sqs_mapping import (
    FilterCriteria,
    SqsEventSourceMapping,
    batch_outcome,
    lambda_record,
    mappings_from_stack,
)
from local.template.resolve import load_stack
from local.template.specs import SqsEvent
from tests import waiting

REGION = "us-east-1"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# `sam local generate-event sqs receive-message`, the keys of its record and of its attributes.
SAM_RECORD_KEYS = [
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
]
SAM_ATTRIBUTE_KEYS = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
]


@dataclass(frozen=True)
class Queue:
    name: str
    url: str
    arn: str


class Recorder:
    """An `invoke` that records each event (and when it came) and answers with `behaviour(event, n)`."""

    def __init__(self, behaviour: Callable[[dict, int], Any] | None = None) -> None:
        self.behaviour = behaviour or (lambda event, n: None)
        self.events: list[dict] = []
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> Any:
        with self._lock:
            self.events.append(event)
            self.times.append(time.monotonic())
            n = len(self.events)
        return self.behaviour(event, n)

    @property
    def batches(self) -> list[list[str]]:
        with self._lock:
            return [[r["body"] for r in e["Records"]] for e in self.events]


def eventually(predicate: Callable[[], Any], timeout: float = 6.0) -> Any:
    return waiting.eventually(predicate, timeout=timeout, interval=0.05)


@pytest.fixture(scope="module")
def client_factory(moto_server):
    def make():
        return boto3.session.Session().client(
            "sqs",
            endpoint_url=moto_server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


@pytest.fixture(scope="module")
def sqs(client_factory):
    return client_factory()


@pytest.fixture
def make_queue(sqs):
    def make(
        visibility_timeout: int = 30, max_receive_count: int | None = None
    ) -> tuple[Queue, Queue | None]:
        name = f"mapping-{uuid.uuid4().hex[:12]}"
        dlq = None
        attributes = {"VisibilityTimeout": str(visibility_timeout)}
        if max_receive_count is not None:
            dlq = create(f"{name}-dlq", {})
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max_receive_count}
            )
        return create(name, attributes), dlq

    def create(name: str, attributes: dict[str, str]) -> Queue:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Queue(name, url, arn)

    return make


@pytest.fixture(scope="module")
def stop_later():
    """Stops mappings in the background (each may sit in a 1 s long poll) and checks, at the end of the
    module, that every one of them stopped cleanly."""
    stopping: list[tuple[str, Future[bool]]] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield lambda mapping: stopping.append((mapping.name, pool.submit(mapping.stop, 5)))
    assert [name for name, stopped in stopping if not stopped.result()] == []


@pytest.fixture
def start_mapping(client_factory, stop_later):
    started: list[SqsEventSourceMapping] = []

    def start(queue: Queue, invoke: Callable[[dict], Any], **event: Any) -> SqsEventSourceMapping:
        mapping = SqsEventSourceMapping(
            SqsEvent(name="Work", queue_logical_id=None, queue_name=queue.name, **event),
            queue_url=queue.url,
            queue_arn=queue.arn,
            invoke=invoke,
            region=REGION,
            sqs=client_factory,
        )
        started.append(mapping)
        return mapping.start()

    yield start
    for mapping in started:
        mapping.signal_stop()  # no further batch starts after the test
        stop_later(mapping)


def send(sqs, queue: Queue, *bodies: str, **kwargs: Any) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=queue.url, MessageBody=body, **kwargs)


def remaining(sqs, queue: Queue) -> list[dict]:
    return sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    )


# ---- the event ---------------------------------------------------------------------------------


def test_records_arrive_in_lambdas_sqs_event_shape(sqs, make_queue, start_mapping):
    queue, _ = make_queue()
    recorder = Recorder()
    start_mapping(queue, recorder)
    body = '{"order": 1, "text": "h\u00e9llo"}'
    send(
        sqs,
        queue,
        body,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "delivery"},
            "count": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffraw"},
        },
    )
    send(sqs, queue, "plain text")
    assert eventually(lambda: sum(len(b) for b in recorder.batches) == 2)

    records = [r for e in recorder.events for r in e["Records"]]
    SqsModel.model_validate({"Records": records})  # Powertools' model of Lambda's event accepts them
    first, second = records
    assert list(second) == SAM_RECORD_KEYS
    assert list(first) == [*SAM_RECORD_KEYS[:6], "md5OfMessageAttributes", *SAM_RECORD_KEYS[6:]]
    assert first["body"] == body
    assert first["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()  # SQS's digest
    assert (first["eventSource"], first["eventSourceARN"], first["awsRegion"]) == (
        "aws:sqs",
        queue.arn,
        REGION,
    )
    assert list(first["attributes"])[:4] == SAM_ATTRIBUTE_KEYS
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert first["attributes"]["SentTimestamp"].isdigit()
    assert first["messageAttributes"] == {
        "kind": {
            "stringValue": "delivery",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "count": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\xffraw").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert second["messageAttributes"] == {}
    assert first["messageId"] != second["messageId"]


def test_lambda_record_orders_known_attributes_first():
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "b",
        "MD5OfBody": "x",
        "Attributes": {"MessageGroupId": "g", "SenderId": "s", "ApproximateReceiveCount": "2"},
    }
    record = lambda_record(message, "arn:aws:sqs:eu-west-1:1:q", "eu-west-1")
    assert list(record["attributes"]) == ["ApproximateReceiveCount", "SenderId", "MessageGroupId"]
    assert record["awsRegion"] == "eu-west-1"


# ---- batching ----------------------------------------------------------------------------------


def test_batch_size_is_respected_across_receives_and_all_is_deleted(sqs, make_queue, start_mapping):
    queue, _ = make_queue()
    bodies = [f"m{i}" for i in range(15)]
    send(sqs, queue, *bodies)
    recorder = Recorder()
    mapping = start_mapping(queue, recorder, batch_size=12, maximum_batching_window_s=1)
    assert mapping.wait_idle(timeout=6)
    assert [len(b) for b in recorder.batches] == [12, 3]  # 10 + 2 received, then what was left
    assert sorted(body for b in recorder.batches for body in b) == sorted(bodies)
    assert mapping.stats.snapshot()["deleted"] == 15  # DeleteMessageBatch in chunks of 10
    assert remaining(sqs, queue) == []


def in_flight(sqs, queue: Queue) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_batching_window_groups_messages_sent_apart(sqs, make_queue, start_mapping):
    # "Late" goes out once "early" is held (received, waiting for its window), not after a fixed sleep: the
    # test does not depend on how fast a busy machine sends it, within a window of a few seconds.
    window = 3
    windowed, _ = make_queue()
    unwindowed, _ = make_queue()
    grouped, single = Recorder(), Recorder()
    start_mapping(windowed, grouped, maximum_batching_window_s=window)
    start_mapping(unwindowed, single, maximum_batching_window_s=0)
    first_sent = time.monotonic()
    send(sqs, windowed, "early")
    send(sqs, unwindowed, "early")
    assert eventually(lambda: in_flight(sqs, windowed) == 1)  # received: its window is running
    assert eventually(lambda: len(single.events) == 1)  # window 0: invoked with what one receive returned
    send(sqs, windowed, "late")
    send(sqs, unwindowed, "late")
    assert eventually(lambda: len(grouped.events) == 1 and len(single.events) == 2, timeout=window + 6)
    assert grouped.batches == [["early", "late"]]
    assert grouped.times[0] - first_sent >= window - 0.1  # the window ran from the first record
    assert single.batches == [["early"], ["late"]]


# ---- deleting, retrying, redriving -----------------------------------------------------------


def test_function_error_deletes_nothing_sqs_redrives_to_the_dlq_and_the_poller_survives(
    sqs, make_queue, start_mapping
):
    queue, dlq = make_queue(visibility_timeout=1, max_receive_count=2)
    send(sqs, queue, "poison")

    def fail_on_poison(event, n):
        if event["Records"][0]["body"] == "poison":
            raise SystemExit("sys.exit") if n == 1 else RuntimeError("boom")  # neither ends the poller

    recorder = Recorder(fail_on_poison)
    mapping = start_mapping(queue, recorder)
    moved = eventually(lambda: remaining(sqs, dlq), timeout=8)
    assert [m["Body"] for m in moved] == ["poison"]
    # Delivered maxReceiveCount times, visible again after each visibility timeout, then moved by SQS
    # (moto) on the next receive.
    assert [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in recorder.events] == ["1", "2"]
    assert recorder.times[1] - recorder.times[0] >= 0.9
    stats = mapping.stats.snapshot()
    assert (stats["function_errors"], stats["deleted"]) == (2, 0)
    assert mapping.running
    send(sqs, queue, "fine")
    assert mapping.wait_idle(timeout=4)
    assert recorder.batches[-1] == ["fine"]
    assert mapping.stats.snapshot()["deleted"] == 1


def test_partial_batch_response_keeps_only_the_failed_records(sqs, make_queue, start_mapping):
    queue, _ = make_queue(visibility_timeout=3)
    send(sqs, queue, "ok-1", "bad-1", "ok-2", "bad-2")

    def report_bad_once(event, n):
        if n > 1:
            return {"batchItemFailures": []}
        bad = [r["messageId"] for r in event["Records"] if r["body"].startswith("bad")]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in bad]}

    recorder = Recorder(report_bad_once)
    mapping = start_mapping(
        queue,
        recorder,
        batch_size=4,
        maximum_batching_window_s=1,
        function_response_types=["ReportBatchItemFailures"],
    )
    assert eventually(lambda: len(recorder.events) >= 2, timeout=15)
    assert mapping.wait_idle(timeout=8)
    first, *retries = recorder.batches
    assert sorted(first) == ["bad-1", "bad-2", "ok-1", "ok-2"]
    assert sorted(body for batch in retries for body in batch) == ["bad-1", "bad-2"]
    stats = mapping.stats.snapshot()
    assert (stats["failures_reported"], stats["deleted"]) == (2, 4)


def test_malformed_partial_response_retries_the_whole_batch(sqs, make_queue, start_mapping):
    queue, _ = make_queue(visibility_timeout=3)
    send(sqs, queue, "a", "b")

    def malformed_once(event, n):
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]} if n == 1 else None

    recorder = Recorder(malformed_once)
    mapping = start_mapping(
        queue,
        recorder,
        batch_size=2,
        maximum_batching_window_s=1,
        function_response_types=["ReportBatchItemFailures"],
    )
    assert eventually(lambda: len(recorder.events) >= 2, timeout=15)
    assert mapping.wait_idle(timeout=8)
    first, *retries = recorder.batches
    assert sorted(first) == ["a", "b"]
    assert sorted(body for batch in retries for body in batch) == ["a", "b"]
    stats = mapping.stats.snapshot()
    assert (stats["malformed_responses"], stats["deleted"]) == (1, 2)


def test_without_report_batch_item_failures_a_partial_response_is_ignored(sqs, make_queue, start_mapping):
    queue, _ = make_queue(visibility_timeout=3)
    send(sqs, queue, "a", "b")

    def report_all(event, n):
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    recorder = Recorder(report_all)
    mapping = start_mapping(queue, recorder, batch_size=2, maximum_batching_window_s=1)
    assert mapping.wait_idle(timeout=8)
    time.sleep(3.2)  # past the visibility timeout: nothing comes back
    assert sum(len(b) for b in recorder.batches) == 2
    assert mapping.stats.snapshot()["deleted"] == 2
    assert remaining(sqs, queue) == []


IDS = ["m1", "m2"]


@pytest.mark.parametrize(
    ("response", "failed", "malformed"),
    [
        (None, set(), False),
        ({}, set(), False),
        ({"batchItemFailures": None}, set(), False),
        ({"batchItemFailures": []}, set(), False),
        ({"statusCode": 200}, set(), False),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}, False),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m2"}]}, {"m2"}, False),
        ("ok", set(IDS), True),
        ([], set(IDS), True),
        ({"batchItemFailures": "m1"}, set(IDS), True),
        ({"batchItemFailures": [{"itemIdentifier": "m9"}]}, set(IDS), True),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, set(IDS), True),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, set(IDS), True),
        ({"batchItemFailures": [{"itemIdentifer": "m1"}]}, set(IDS), True),
        ({"batchItemFailures": ["m1"]}, set(IDS), True),
    ],
)
def test_batch_outcome_reads_the_response_as_lambda_does(response, failed, malformed):
    outcome = batch_outcome(response, IDS, report_batch_item_failures=True)
    assert outcome.failed == failed
    assert bool(outcome.malformed) == malformed
    assert batch_outcome(response, IDS, report_batch_item_failures=False).failed == set()


# ---- filters -----------------------------------------------------------------------------------


def test_filter_criteria_invoke_matching_records_and_delete_the_rest(sqs, make_queue, start_mapping):
    queue, _ = make_queue()
    recorder = Recorder()
    criteria = {
        "Filters": [
            {"Pattern": json.dumps({"body": {"kind": ["delivery"], "code": [{"prefix": "N2"}]}})},
            {"Pattern": json.dumps({"body": [{"prefix": "PING"}]})},
        ]
    }
    bodies = [
        json.dumps({"kind": "delivery", "code": "N202"}),
        json.dumps({"kind": "delivery", "code": "E113"}),
        json.dumps({"kind": "inbound", "code": "N202"}),
        "PING 1",
        "not json",
    ]
    send(sqs, queue, *bodies)
    mapping = start_mapping(queue, recorder, maximum_batching_window_s=1, filter_criteria=criteria)
    assert mapping.wait_idle(timeout=6)
    assert sorted(body for batch in recorder.batches for body in batch) == sorted([bodies[0], "PING 1"])
    stats = mapping.stats.snapshot()
    assert (stats["filtered_out"], stats["deleted"]) == (3, 2)


def _record(body: Any) -> dict:
    return {"messageId": "m", "body": body if isinstance(body, str) else json.dumps(body)}


@pytest.mark.parametrize(
    ("pattern", "body", "matches"),
    [
        ({"body": {"n": [{"numeric": [">", 10, "<=", 20]}]}}, {"n": 20}, True),
        ({"body": {"n": [{"numeric": [">", 10, "<=", 20]}]}}, {"n": 21}, False),
        ({"body": {"n": [{"numeric": ["=", 5]}]}}, {"n": "5"}, False),
        ({"body": {"n": [5]}}, {"n": 5.0}, True),
        ({"body": {"flag": [True]}}, {"flag": 1}, False),
        ({"body": {"v": [None]}}, {"v": None}, True),
        ({"body": {"v": [""]}}, {"v": ""}, True),
        ({"body": {"s": [{"anything-but": ["a", "b"]}]}}, {"s": "c"}, True),
        ({"body": {"s": [{"anything-but": "a"}]}}, {"s": "a"}, False),
        ({"body": {"s": [{"anything-but": {"prefix": "x"}}]}}, {"s": "xy"}, False),
        ({"body": {"s": [{"suffix": ".png"}]}}, {"s": "a.png"}, True),
        ({"body": {"s": [{"equals-ignore-case": "ALICE"}]}}, {"s": "alice"}, True),
        ({"body": {"s": [{"exists": True}]}}, {"s": 1}, True),
        ({"body": {"s": [{"exists": False}]}}, {"s": 1}, False),
        ({"body": {"s": [{"exists": False}]}}, {"t": 1}, True),
        ({"body": {"tags": ["b"]}}, {"tags": ["a", "b"]}, True),
        ({"body": {"a": {"b": ["c"]}}}, {"a": {"b": "c"}}, True),
        ({"body": {"a": {"b": ["c"]}}}, {"a": "c"}, False),
        ({"body": {"a": ["x"]}}, "not json", False),  # object pattern, plain body: dropped
        ({"body": ["plain"]}, "plain", True),
        ({"body": [{"prefix": "{"}]}, {"a": 1}, False),  # string pattern, JSON body: dropped
    ],
)
def test_filter_rules(pattern, body, matches):
    assert FilterCriteria({"Filters": [{"Pattern": json.dumps(pattern)}]}).matches(_record(body)) is matches


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ({"body": {"s": [{"wildcard": "a*"}]}}, NotImplementedError),
        ({"$or": [{"body": {"a": ["b"]}}]}, NotImplementedError),
        ({"body": {"s": "not a list"}}, ValueError),
        ({"body": {"n": [{"numeric": ["~", 1]}]}}, ValueError),
        ("not json", ValueError),
    ],
)
def test_unsupported_or_invalid_filters_fail_at_construction(pattern, error):
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    with pytest.raises(error):
        FilterCriteria({"Filters": [{"Pattern": raw}]})


# ---- pollers and lifecycle ---------------------------------------------------------------------


def test_maximum_concurrency_runs_that_many_pollers_at_once(sqs, make_queue, start_mapping):
    queue, _ = make_queue()
    barrier = threading.Barrier(3)

    def meet(event, n):
        barrier.wait(timeout=5)  # passes only if three invocations are in flight together

    recorder = Recorder(meet)
    mapping = start_mapping(queue, recorder, batch_size=1, maximum_concurrency=3)
    assert len([t for t in threading.enumerate() if t.name.startswith(f"sqs-mapping-{mapping.name}-")]) == 3
    send(sqs, queue, "a", "b", "c")
    assert mapping.wait_idle(timeout=8)
    assert sorted(b for batch in recorder.batches for b in batch) == ["a", "b", "c"]
    assert mapping.stats.snapshot()["function_errors"] == 0


def test_stop_is_prompt_and_finishes_the_batch_in_flight(sqs, make_queue, client_factory):
    """Prompt by what the pollers do, not by a stopwatch: after stop() no poller begins another receive
    (one that was starting as stop came is the most), every receive waits at most 1 s, and a batch being
    invoked finishes and is deleted."""
    calls: list[str] = []  # in order: each receive as it begins, and "stop"
    waits: list[int] = []

    def recording_client() -> Any:
        client = client_factory()

        def begun(params: dict, **_: Any) -> None:
            calls.append("receive")
            waits.append(params["WaitTimeSeconds"])

        client.meta.events.register("before-parameter-build.sqs.ReceiveMessage", begun)
        return client

    def started(queue: Queue, invoke: Callable[[dict], Any]) -> SqsEventSourceMapping:
        return SqsEventSourceMapping(
            SqsEvent(name="Work", queue_logical_id=None, queue_name=queue.name),
            queue_url=queue.url,
            queue_arn=queue.arn,
            invoke=invoke,
            region=REGION,
            sqs=recording_client,
        ).start()

    def stop(mapping: SqsEventSourceMapping) -> list[str]:
        """Stop it; the receives begun after stop was asked for."""
        mapping.signal_stop()
        calls.append("stop")
        assert mapping.stop(timeout=30)  # a guard against a hang, not the measure
        assert not mapping.running
        return calls[len(calls) - calls[::-1].index("stop") :]

    queue, _ = make_queue()
    idle = started(queue, Recorder())
    assert eventually(lambda: "receive" in calls)  # the poller is in a long poll
    assert len(stop(idle)) <= 1

    busy_queue, _ = make_queue()
    invoked = threading.Event()

    def slow(event, n):
        invoked.set()
        time.sleep(0.8)

    mapping = started(busy_queue, Recorder(slow))
    send(sqs, busy_queue, "in-flight")
    assert invoked.wait(30)
    assert stop(mapping) == []  # it was invoking: nothing polled after the batch
    assert mapping.stats.snapshot()["deleted"] == 1  # finished, then deleted
    assert remaining(sqs, busy_queue) == []
    assert waits
    assert max(waits) <= 1  # so stop() waits out at most one second of long poll


def test_a_disabled_mapping_does_not_poll(sqs, make_queue, start_mapping):
    queue, _ = make_queue()
    recorder = Recorder()
    mapping = start_mapping(queue, recorder, enabled=False)
    send(sqs, queue, "left alone")
    time.sleep(1.0)  # an enabled poller takes a message within milliseconds
    assert not mapping.running
    assert recorder.events == []
    assert [m["Body"] for m in remaining(sqs, queue)] == ["left alone"]  # still visible: never received
    assert mapping.status()["pollers"] == 0


def test_a_poller_survives_receive_errors(sqs, moto_server, start_mapping):
    name = f"mapping-late-{uuid.uuid4().hex[:8]}"
    late = Queue(
        name, f"{moto_server.endpoint_url}/123456789012/{name}", f"arn:aws:sqs:{REGION}:123456789012:{name}"
    )
    recorder = Recorder()
    mapping = start_mapping(late, recorder)
    assert eventually(lambda: mapping.stats.snapshot()["poll_errors"] >= 1)  # QueueDoesNotExist
    assert mapping.running
    assert sqs.create_queue(QueueName=name)["QueueUrl"] == late.url
    send(sqs, late, "finally")
    assert eventually(lambda: recorder.batches == [["finally"]], timeout=6)


# ---- wired from a template, with a Powertools handler ------------------------------------------

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code_uri}
      Handler: sqs_handler.lambda_handler
      Runtime: python3.13
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      # Long enough that a slow, shared CI machine still deletes the successes before they reappear.
      VisibilityTimeout: 5
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDLQ.Arn
        maxReceiveCount: 1
  WorkDLQ:
    Type: AWS::SQS::Queue
"""


def test_mappings_from_the_template_drive_a_powertools_consumer(sqs, moto_server, tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(code_uri=FIXTURES))
    stack = load_stack(
        template,
        None,
        stack_name=f"sqsmap-{uuid.uuid4().hex[:8]}",
        queue_url_format=f"{moto_server.endpoint_url}/{{account_id}}/{{name}}",
    )
    local_stack.provision(stack, moto_server.endpoint_url)
    functions = local_stack.load_functions(stack, moto_server.endpoint_url)
    (mapping,) = mappings_from_stack(stack, functions)
    queues = stack.queues()
    work = Queue(queues["WorkQueue"].name, queues["WorkQueue"].url, queues["WorkQueue"].arn)
    dlq = Queue(queues["WorkDLQ"].name, queues["WorkDLQ"].url, queues["WorkDLQ"].arn)
    assert (mapping.queue_url, mapping.report_batch_item_failures) == (work.url, True)

    # The default client reaches moto through AWS_ENDPOINT_URL, as in the local stack.
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, stack.region)):
        mapping.start()
    try:
        send(sqs, work, "ok-1", "fail-1", "ok-2")
        moved = eventually(lambda: remaining(sqs, dlq), timeout=20)
        assert [m["Body"] for m in moved] == ["fail-1"]
        assert mapping.wait_idle(timeout=4)
    finally:
        assert mapping.stop()
    seen = functions["Consumer"].module.SEEN
    assert sorted(seen) == [("fail-1", "1"), ("ok-1", "1"), ("ok-2", "1")]  # maxReceiveCount 1: no retry
    stats = mapping.stats.snapshot()
    assert (stats["failures_reported"], stats["deleted"], stats["function_errors"]) == (1, 2, 0)


CONCURRENT_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {code_uri}
      Handler: container_handler.lambda_handler
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 2
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
"""


def test_maximum_concurrency_invokes_that_many_containers_at_once(sqs, moto_server, tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(CONCURRENT_TEMPLATE.format(code_uri=FIXTURES))
    stack = load_stack(
        template,
        None,
        stack_name=f"sqsconc-{uuid.uuid4().hex[:8]}",
        queue_url_format=f"{moto_server.endpoint_url}/{{account_id}}/{{name}}",
    )
    local_stack.provision(stack, moto_server.endpoint_url)
    worker = local_stack.load_functions(stack, moto_server.endpoint_url)["Worker"]
    (mapping,) = mappings_from_stack(stack, {"Worker": worker})
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, stack.region)):
        mapping.start()
    try:
        queue = stack.queues()["WorkQueue"]
        send(sqs, Queue(queue.name, queue.url, queue.arn), *[json.dumps({"sleep_s": 0.5})] * 2)
        assert eventually(lambda: sum(len(m.RUNS) for m in worker.modules) == 2, timeout=10)
    finally:
        assert mapping.stop()
    assert worker.max_containers == 2
    first, second = (module.RUNS[0] for module in worker.modules)  # one batch in each container
    assert max(first[0], second[0]) < min(first[1], second[1])  # and at the same time
