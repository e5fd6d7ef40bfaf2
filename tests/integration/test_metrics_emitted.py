"""Every metric the handlers promise, read from the embedded metric format (EMF) they print, at the moment it
should appear: each function wired from template.yaml and run in-process on moto (the sender against the
provider simulator, its faults producing each outcome). Each invocation's EMF is parsed as CloudWatch reads
it and must hold exactly the metrics the case names, in the namespace and under the one `service` dimension
the template's alarms and dashboard use (tests/emitted_metrics.py; tests/unit/test_alarms_match_metrics.py
holds the template to that list)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from local import aws_faults
from local import stack as local_stack
from local.runtime import patched_environ
from local.simulator import ProviderFault, ProviderSimulator
from mmsbridge.aws.state_table import StateTable, to_dynamo
from mmsbridge.core import envelope
from mmsbridge.sending.ledger_store import ClaimKind, SendLedger
from mmsbridge.sending.limiter import KEY as PACE_KEY
from mmsbridge.sending.request import parse_send_request_json
from tests.conftest import SAMPLES
from tests.emitted_metrics import DIMENSION, EMITTED, NAMESPACE, data
from tests.integration.test_publisher_handler import Stream, a_message_and_a_reply, ensure_bus, write

ROOT = Path(__file__).resolve().parents[2]
POSTBACKS = SAMPLES / "postbacks"
SECRET_NAME = f"test/metrics-{uuid.uuid4().hex[:8]}"
API_KEY = f"KEY-{uuid.uuid4().hex}"
TO = "17743199144"  # events/sender/sms.json's number
BODY = b"<POSTBACK><ORIGIN>SMS_MT</ORIGIN><CODE>N202</CODE><TRACKINGID>T1</TRACKINGID></POSTBACK>"

# The metrics each test below asserts, by service: checked against EMITTED when this module is collected,
# so the list cannot name a metric no test drives (nor a test drive one the list lacks).
DRIVEN: dict[str, set[str]] = {service: set() for service in EMITTED}


def drives(service: str, *names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        DRIVEN[service].update(names)
        return test

    return mark


def test_every_metric_a_handler_emits_is_driven_by_a_test_here():
    assert {service: set(names) for service, names in EMITTED.items()} == DRIVEN


def emitted(capsys: pytest.CaptureFixture[str], service: str) -> dict[str, float]:
    """The metrics printed since the last call, by name; each in the namespace, under the dimension set and
    with the unit the template's alarms read, and each one the service is known to emit."""
    points = data(capsys.readouterr().out)
    assert points, "no EMF document was printed"
    found: dict[str, float] = {}
    for point in points:
        assert point.namespace == NAMESPACE, point
        assert point.dimensions == ((DIMENSION, service),), point
        assert point.unit == "Count", point
        assert point.name in EMITTED[service], f"{service} emits {point.name}, which EMITTED lacks"
        found[point.name] = found.get(point.name, 0) + point.value
    return found


# ----------------------------------------------------------------------------------------------- the ingest


@pytest.fixture(scope="module")
def ingest(moto_server, aws_stack):
    return local_stack.function_for(
        aws_stack, "IngestFunction", moto_server.endpoint_url, name_suffix="Metrics", max_containers=1
    )


@pytest.fixture(scope="module")
def token(moto_server, aws_stack):
    value = local_stack.postback_token(aws_stack, moto_server.endpoint_url)
    assert value
    return value


@pytest.fixture
def postback_queue(aws_stack, aws_clients) -> Iterator[str]:
    url = aws_stack.queues()["PostbackQueue"].url
    yield url
    sqs = aws_clients["sqs"]  # what the ingest stored here is not for the tests that share the queue
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def proxy_event(body: bytes | str, token: str | None, *, ip: str = "127.0.0.1", b64: bool = True) -> dict:
    encoded = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    return {
        "resource": "/postback/{token}",
        "path": f"/postback/{token}",
        "httpMethod": "POST",
        "headers": {"Content-Type": "text/xml"},
        "pathParameters": {"token": token} if token is not None else None,
        "requestContext": {"requestId": "metrics-1", "identity": {"sourceIp": ip}},
        "body": encoded,
        "isBase64Encoded": b64,
    }


def fresh_body() -> bytes:
    return BODY.replace(b"T1", f"T-metrics-{uuid.uuid4().hex}".encode())


INGEST_CASES = {
    "accepted": (lambda token: proxy_event(fresh_body(), token), 200, "Accepted"),
    "address not allowed": (
        lambda token: proxy_event(fresh_body(), token, ip="127.0.0.2"),
        403,
        "RefusedAddress",
    ),
    "wrong token": (lambda token: proxy_event(fresh_body(), token[::-1]), 403, "RefusedToken"),
    "no token": (lambda token: proxy_event(fresh_body(), None), 403, "RefusedToken"),
    "empty body": (lambda token: proxy_event(b"", token), 400, "RefusedEmptyBody"),
    "not base64": (lambda token: proxy_event("<POSTBACK>!", token), 400, "RefusedBadEncoding"),
    "over MaxBodyBytes": (lambda token: proxy_event(b"x" * (1024 * 1024 + 1), token), 413, "RefusedTooLarge"),
}


@drives("ingest", *(metric for _, _, metric in INGEST_CASES.values()))
@pytest.mark.parametrize(("make", "status", "metric"), list(INGEST_CASES.values()), ids=list(INGEST_CASES))
def test_the_ingest_counts_each_answer_once(ingest, token, postback_queue, capsys, make, status, metric):
    capsys.readouterr()
    assert ingest.invoke(make(token))["statusCode"] == status
    assert emitted(capsys, "ingest") == {metric: 1}


@drives("ingest", "StoreFailed")
def test_the_ingest_counts_a_postback_it_could_not_store(ingest, token, postback_queue, capsys):
    capsys.readouterr()
    with aws_faults.inject(ingest.module.INGEST.archive._s3, "PutObject", rate=1.0):
        assert ingest.invoke(proxy_event(fresh_body(), token))["statusCode"] == 503
    assert emitted(capsys, "ingest") == {"StoreFailed": 1}


@drives("ingest", "RefusedTokenUnavailable")
def test_the_ingest_counts_a_token_it_could_not_check(moto_server, aws_stack, postback_queue, capsys):
    unreadable = local_stack.function_for(
        aws_stack,
        "IngestFunction",
        moto_server.endpoint_url,
        environment={"POSTBACK_TOKEN_SECRET": f"test/no-such-secret-{uuid.uuid4().hex[:8]}"},
        name_suffix="MetricsNoSecret",
        max_containers=1,
    )
    capsys.readouterr()
    assert (
        unreadable.invoke(proxy_event(fresh_body(), "0123456789abcdef0123456789abcdef"))["statusCode"] == 503
    )
    assert emitted(capsys, "ingest") == {"RefusedTokenUnavailable": 1}


# --------------------------------------------------------------------------------------------- the consumer


@pytest.fixture(scope="module")
def consumer(moto_server, aws_stack):
    function = local_stack.function_for(
        aws_stack, "ConsumerFunction", moto_server.endpoint_url, name_suffix="Metrics", max_containers=1
    )
    return function


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    return StateTable(aws_clients["dynamodb"], aws_stack.tables()["StateTable"].name)


def sample(name: str, tracking_id: str) -> bytes:
    body = (POSTBACKS / name).read_bytes()
    return re.sub(
        rb"<TRACKINGID>[^<]*</TRACKINGID>", f"<TRACKINGID>{tracking_id}</TRACKINGID>".encode(), body
    )


def queued(body: bytes, *, inline: bool = True, key: str | None = None) -> dict:
    """A postback-queue record as the ingest would have enqueued it."""
    sha = hashlib.sha256(body).hexdigest()
    message = envelope.encode(
        key=key or f"raw/{sha}.xml",
        sha256=sha,
        body=body,
        received_at=datetime.now(UTC),
        source_ip="127.0.0.1",
        request_id="metrics",
    )
    if not inline:
        message = json.dumps({k: v for k, v in json.loads(message).items() if k != "body_b64"})
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "rh", "body": message, "attributes": {}}


def tid() -> str:
    return f"T-metrics-{uuid.uuid4().hex}"


CONSUMER_CASES = {
    "two applied": (
        lambda: [queued(sample("sms_mt_n201.xml", tid())), queued(sample("mms_mt_n102.xml", tid()))],
        0,
        {"PostbacksApplied": 2},
    ),
    "one quarantined": (
        lambda: [queued(b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN>"), queued(sample("sms_mt_n201.xml", tid()))],
        0,
        {"PostbacksApplied": 1, "Quarantined": 1},
    ),
    "one unreadable from the archive": (
        lambda: [
            queued(sample("sms_mt_n201.xml", tid()), inline=False, key=f"raw/missing-{uuid.uuid4().hex}.xml"),
            queued(sample("sms_mt_n201.xml", tid())),
        ],
        1,
        {"PostbacksApplied": 1, "RecordsFailed": 1},
    ),
    "a provider alert (E999)": (
        lambda: [queued(sample("mms_mt_e999.xml", tid()))],
        0,
        {"PostbacksApplied": 1, "ProviderAlerts": 1},
    ),
}
CONSUMER_METRICS = {"PostbacksApplied", "Quarantined", "RecordsFailed", "ProviderAlerts"}


@drives("consumer", *CONSUMER_METRICS)
@pytest.mark.parametrize(
    ("records", "failed", "expected"), list(CONSUMER_CASES.values()), ids=list(CONSUMER_CASES)
)
def test_the_consumer_counts_each_batchs_outcomes(consumer, capsys, records, failed, expected):
    capsys.readouterr()
    response = consumer.invoke({"Records": records()})
    assert len(response["batchItemFailures"]) == failed
    # All four in every flush, 0 when nothing happened: an alarm's period always has a data point.
    assert emitted(capsys, "consumer") == {name: expected.get(name, 0) for name in CONSUMER_METRICS}


# ------------------------------------------------------------------------------------------------ the stale


@drives("stale", "StaleMessages")
def test_the_stale_check_counts_the_messages_with_no_final_state(
    moto_server, aws_stack, consumer, table, capsys
):
    stale = local_stack.function_for(
        aws_stack, "StaleMessagesFunction", moto_server.endpoint_url, name_suffix="Metrics", max_containers=1
    )
    old = tid()  # sent in 2024 (the sample's TIMESTAMP), never delivered: stale
    assert consumer.invoke({"Records": [queued(sample("mms_mt_n101.xml", old))]}) == {"batchItemFailures": []}
    capsys.readouterr()
    result = stale.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert result["stale"] >= 1
    assert emitted(capsys, "stale") == {"StaleMessages": result["stale"]}
    # Delivered now: it is final, so the next count has one fewer.
    assert consumer.invoke({"Records": [queued(sample("mms_mt_n102.xml", old))]}) == {"batchItemFailures": []}
    capsys.readouterr()
    again = stale.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert again["stale"] == result["stale"] - 1
    assert emitted(capsys, "stale") == {"StaleMessages": again["stale"]}


# ----------------------------------------------------------------------------------------------- the sender


@pytest.fixture(scope="module")
def simulator():
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as sim:
        yield sim


@pytest.fixture(scope="module")
def sender(moto_server, aws_stack, simulator):
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=API_KEY)
    return local_stack.function_for(
        aws_stack,
        "SenderFunction",
        moto_server.endpoint_url,
        environment={
            "PROVIDER_API_URL": simulator.api_url,
            "PROVIDER_API_KEY_SECRET": SECRET_NAME,
            "THROUGHPUT_PER_SECOND": "1000",
        },
        name_suffix="Metrics",
        max_containers=1,
    )


@contextmanager
def latest_subscription(table: StateTable, number: str, code: str) -> Iterator[None]:
    """`number`'s latest subscription event is `code` (N301 opt-in, N302 opt-out) while this lasts: other
    tests share the table and may have opted the number out or in."""
    key = {"pk": f"SUPPRESS#{number}", "sk": f"AT#9999-12-31T23:59:59.999999Z#{code}"}
    table.put_all([{**key, "suppressed": code == "N302"}])
    try:
        yield
    finally:
        table.client.delete_item(TableName=table.name, Key=to_dynamo(key))


@pytest.fixture
def reachable(table):
    with latest_subscription(table, TO, "N301"):
        yield


@pytest.fixture
def clean_simulator(simulator):
    simulator.clear_faults()
    yield simulator
    simulator.clear_faults()


def send_request(**changes: Any) -> str:
    request = json.loads((ROOT / "events" / "sender" / "sms.json").read_text())
    request.update({"request_id": f"metrics-{uuid.uuid4().hex[:12]}", **changes})
    return json.dumps(request)


def records(*bodies: str, message_id: str | None = None) -> dict:
    """The SQS event for one invocation: each body as a record received once, just now."""
    return {
        "Records": [
            {
                "messageId": message_id or str(uuid.uuid4()),
                "receiptHandle": f"rh-{uuid.uuid4().hex}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:send",
            }
            for body in bodies
        ]
    }


def send(sender, capsys, *bodies: str, failed: int = 0) -> dict[str, float]:
    capsys.readouterr()
    response = sender.invoke(records(*bodies))
    assert len(response["batchItemFailures"]) == failed, response
    return emitted(capsys, "sender")


@drives("sender", "Accepted", "DuplicateRequests", "ConflictingDuplicates")
def test_a_send_then_its_duplicate_then_a_conflicting_one(sender, clean_simulator, reachable, capsys):
    body = send_request()
    assert send(sender, capsys, body) == {"Accepted": 1}
    assert send(sender, capsys, body) == {"DuplicateRequests": 1}
    other = json.dumps({**json.loads(body), "text": "another message under the same request_id"})
    assert send(sender, capsys, other) == {"ConflictingDuplicates": 1}


@drives("sender", "Rejected")
def test_a_refused_request(sender, capsys):
    assert send(sender, capsys, send_request(to="555-0100")) == {"Rejected": 1}


@drives("sender", "Suppressed")
def test_a_request_to_an_opted_out_number(sender, table, capsys):
    with latest_subscription(table, TO, "N302"):
        assert send(sender, capsys, send_request()) == {"Suppressed": 1}


@drives("sender", "SendFailed", "UnknownErrorCode", "OutcomeUnknown", "TransientRetries")
@pytest.mark.parametrize(
    ("fault", "failed", "expected"),
    [
        (ProviderFault("answer", code="E110", count=1), 0, {"SendFailed": 1}),  # PERMANENT
        (ProviderFault("answer", code="E999", count=1), 0, {"UnknownErrorCode": 1}),
        (ProviderFault("http_error", status=502, count=1), 0, {"OutcomeUnknown": 1}),
        (ProviderFault("answer", code="E503", count=1), 1, {"TransientRetries": 1}),  # never left: retried
    ],
    ids=["permanent", "unknown code", "outcome unknown", "transient"],
)
def test_each_failed_call(sender, clean_simulator, reachable, capsys, fault, failed, expected):
    clean_simulator.add_fault(fault)
    assert send(sender, capsys, send_request(), failed=failed) == expected


@drives("sender", "Throttled", "Deferred")
def test_a_throttled_call_and_the_record_it_holds_back(sender, clean_simulator, reachable, capsys):
    clean_simulator.add_fault(ProviderFault("answer", code="E113", count=1))
    assert send(sender, capsys, send_request(), send_request(), failed=2) == {"Throttled": 1, "Deferred": 1}


@drives("sender", "AccountErrors", "ProviderAuthError")
def test_the_provider_refusing_the_account(sender, clean_simulator, reachable, capsys):
    clean_simulator.add_fault(ProviderFault("answer", code="E104", count=1))
    assert send(sender, capsys, send_request(), send_request(), failed=2) == {
        "AccountErrors": 1,
        "ProviderAuthError": 1,
        "Deferred": 1,
    }


@drives("sender", "PacedBack")
def test_a_slot_too_far_away_hands_the_record_back(sender, table, reachable, capsys):
    limiter = sender.module.SENDING.sender.limiter
    limiter.penalise(30)  # every container held back for longer than a call may wait
    try:
        assert send(sender, capsys, send_request(), failed=1) == {"PacedBack": 1}
    finally:
        table.client.delete_item(TableName=table.name, Key=to_dynamo(PACE_KEY))


@drives("sender", "HeldByAnotherAttempt")
def test_a_request_another_attempt_holds(sender, table, reachable, capsys):
    body = send_request()
    claimed = SendLedger(table).claim(
        parse_send_request_json(body),
        body,
        now=datetime.now(UTC),
        lease_until=time.time() + 600,
        resend_orphans=False,
    )
    assert claimed.kind is ClaimKind.CLAIMED
    assert send(sender, capsys, body, failed=1) == {"HeldByAnotherAttempt": 1}


@drives("sender", "RecordErrors", "DeadLettered")
def test_an_unexpected_error_then_the_dead_letter_queue(
    sender, aws_stack, aws_clients, reachable, capsys, monkeypatch
):
    monkeypatch.setattr(
        StateTable, "suppressed", lambda self, mobile: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    body = send_request()
    message_id = str(uuid.uuid4())
    for _ in range(4):  # handed back, its errors counted
        capsys.readouterr()
        assert len(sender.invoke(records(body, message_id=message_id))["batchItemFailures"]) == 1
        assert emitted(capsys, "sender") == {"RecordErrors": 1}
    capsys.readouterr()
    assert sender.invoke(records(body, message_id=message_id)) == {"batchItemFailures": []}
    assert emitted(capsys, "sender") == {"RecordErrors": 1, "DeadLettered": 1}
    dlq, sqs = aws_stack.queues()["SendDLQ"].url, aws_clients["sqs"]
    moved = []
    while batch := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            moved.append(message["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert body in moved


# -------------------------------------------------------------------------------------------- the publisher


@pytest.fixture(scope="module")
def publisher(moto_server, aws_stack):
    function = local_stack.function_for(
        aws_stack, "EventPublisherFunction", moto_server.endpoint_url, name_suffix="Metrics", max_containers=1
    )
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        ensure_bus(boto3.client("events"), function)
    return function


@pytest.fixture
def stream_batch(moto_server, aws_stack, table) -> dict:
    """A stream batch of three changes (a message sent, then delivered, an inbound reply) and a duplicate."""
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        clients = {name: boto3.client(name) for name in ("dynamodb", "dynamodbstreams")}
    stream = Stream(clients, table.name)
    write(table, *a_message_and_a_reply())
    return Stream.event(stream.records())


@drives("publisher", "EventsPublished")
def test_the_publisher_counts_the_events_it_published(publisher, stream_batch, capsys):
    capsys.readouterr()
    assert publisher.invoke(stream_batch) == {"batchItemFailures": []}
    assert emitted(capsys, "publisher") == {"EventsPublished": 3, "EventsRetried": 0, "EventsFailed": 0}


@drives("publisher", "EventsRetried", "EventsFailed")
def test_the_publisher_counts_entries_sent_again_and_records_handed_back(publisher, stream_batch, capsys):
    capsys.readouterr()
    client = publisher.module.PUBLISHER.publisher._client
    with aws_faults.inject(client, "PutEvents", rate=1.0, status=400, code="ThrottlingException"):
        assert len(publisher.invoke(stream_batch)["batchItemFailures"]) == 1
    # Five attempts of each of the three entries: four of them again.
    assert emitted(capsys, "publisher") == {"EventsPublished": 0, "EventsRetried": 12, "EventsFailed": 3}
