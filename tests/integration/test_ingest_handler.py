"""The real ingest handler against moto, wired from template.yaml: bytes really stored, faults answered."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from local import faults
from local import stack as local_stack
from mmsbridge import envelope

EVENTS = Path(__file__).resolve().parents[2] / "events" / "ingest"
BODY = b"<POSTBACK><ORIGIN>SMS_MT</ORIGIN><CODE>N202</CODE><TRACKINGID>T1</TRACKINGID></POSTBACK>"


@pytest.fixture(scope="module")
def ingest(moto_server, aws_stack):
    functions = local_stack.load_functions(aws_stack, moto_server.endpoint_url)
    return functions["IngestFunction"]


@pytest.fixture
def queue_url(aws_stack, aws_clients):
    url = next(q.url for q in aws_stack.queues().values() if q.logical_id == "PostbackQueue")
    drain(aws_clients["sqs"], url)
    return url


@pytest.fixture
def bucket(aws_stack):
    return next(b.name for b in aws_stack.buckets().values() if b.logical_id == "ArchiveBucket")


def proxy_event(body: bytes, ip: str = "127.0.0.1", token: str | None = None) -> dict:
    return {
        "resource": "/postback",
        "path": "/postback",
        "httpMethod": "POST",
        "headers": {"Content-Type": "text/xml"},
        "pathParameters": {"token": token} if token else None,
        "requestContext": {"requestId": "it-1", "identity": {"sourceIp": ip}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def drain(sqs, url: str) -> list[dict]:
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def object_keys(s3, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/").get("Contents", [])}


def test_accepted_postback_is_in_s3_and_on_the_queue_byte_for_byte(ingest, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-accepted") + "\u00e9\u2713".encode()
    response = ingest.invoke(proxy_event(body))
    assert response["statusCode"] == 200
    sha = hashlib.sha256(body).hexdigest()
    assert json.loads(response["body"]) == {"status": "accepted", "sha256": sha}

    stored = aws_clients["s3"].get_object(Bucket=bucket, Key=f"raw/{sha}.xml")
    assert stored["Body"].read() == body
    assert stored["Metadata"]["source-ip"] == "127.0.0.1"
    assert stored["Metadata"]["request-id"] == "it-1"
    assert stored["Metadata"]["content-type"] == "text/xml"
    assert stored["Metadata"]["sha256"] == sha

    (message,) = drain(aws_clients["sqs"], queue_url)
    queued = envelope.decode(message["Body"])
    assert queued.body == body
    assert queued.key == f"raw/{sha}.xml"
    assert queued.sha256 == sha


def test_a_retry_lands_on_the_same_key(ingest, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-retry")
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    for _ in range(3):
        assert ingest.invoke(proxy_event(body))["statusCode"] == 200
    versions = aws_clients["s3"].list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert {v["Key"] for v in versions} == {key}
    assert len(versions) == 3  # versioned bucket: each retry a version of the one key
    # The queue carries each delivery; the consumer deduplicates on content.
    assert [envelope.decode(m["Body"]).key for m in drain(aws_clients["sqs"], queue_url)] == [key] * 3


def test_malformed_body_is_stored_not_judged(ingest, aws_clients, queue_url, bucket):
    body = b"\xff\xfe<!DOCTYPE boom [<!ENTITY a 'a'>]><POSTBACK>&a;"
    assert ingest.invoke(proxy_event(body))["statusCode"] == 200
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    assert aws_clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert envelope.decode(drain(aws_clients["sqs"], queue_url)[0]["Body"]).body == body


def test_body_too_large_to_travel_inline_goes_by_key(ingest, aws_clients, queue_url, bucket):
    body = b"<POSTBACK>" + b"x" * (envelope.INLINE_BODY_LIMIT + 10) + b"</POSTBACK>"
    assert ingest.invoke(proxy_event(body))["statusCode"] == 200
    (message,) = drain(aws_clients["sqs"], queue_url)
    queued = envelope.decode(message["Body"])
    assert queued.body is None
    assert aws_clients["s3"].get_object(Bucket=bucket, Key=queued.key)["Body"].read() == body


@pytest.mark.parametrize(
    ("event", "status"),
    [
        (lambda: proxy_event(BODY, ip="127.0.0.2"), 403),
        (lambda: proxy_event(BODY, ip="34.198.230.58"), 403),  # the provider's address is not local
        (lambda: proxy_event(b""), 400),
        (lambda: proxy_event(b"x" * (1024 * 1024 + 1)), 413),
    ],
)
def test_refusals_store_nothing(ingest, aws_clients, queue_url, bucket, event, status):
    before = object_keys(aws_clients["s3"], bucket)
    response = ingest.invoke(event())
    assert response["statusCode"] == status
    assert object_keys(aws_clients["s3"], bucket) == before
    assert drain(aws_clients["sqs"], queue_url) == []


def test_s3_failure_answers_503_and_says_what_remains(ingest, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-s3-down")
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    with faults.inject(ingest.module.ARCHIVE._s3, "PutObject", rate=1.0) as injected:
        response = ingest.invoke(proxy_event(body))
    assert response["statusCode"] == 503
    assert injected.injected == 3  # the client's standard retries all failed
    assert key not in object_keys(aws_clients["s3"], bucket)
    # What remains: the queue message went out, with the bytes inline; the consumer can still use it,
    # and the provider's retry (the 503) writes the object under the same key.
    (message,) = drain(aws_clients["sqs"], queue_url)
    assert envelope.decode(message["Body"]).body == body
    assert ingest.invoke(proxy_event(body))["statusCode"] == 200
    assert key in object_keys(aws_clients["s3"], bucket)


def test_sqs_failure_answers_503_and_says_what_remains(ingest, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-sqs-down")
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    with faults.inject(ingest.module.QUEUE._sqs, "SendMessage", rate=1.0, connection_error=True) as injected:
        response = ingest.invoke(proxy_event(body))
    assert response["statusCode"] == 503
    assert injected.injected >= 1
    # What remains: the object, which the provider's retry overwrites with the same bytes; no message yet.
    assert aws_clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert drain(aws_clients["sqs"], queue_url) == []
    assert ingest.invoke(proxy_event(body))["statusCode"] == 200
    assert len(drain(aws_clients["sqs"], queue_url)) == 1


def test_large_body_is_not_enqueued_when_its_object_failed(ingest, aws_clients, queue_url, bucket):
    body = b"<POSTBACK>" + b"y" * (envelope.INLINE_BODY_LIMIT + 10) + b"</POSTBACK>"
    with faults.inject(ingest.module.ARCHIVE._s3, "PutObject", rate=1.0):
        assert ingest.invoke(proxy_event(body))["statusCode"] == 503
    assert drain(aws_clients["sqs"], queue_url) == []  # never a message pointing at a missing object


def test_transient_failure_absorbed_by_retries(ingest, aws_clients, queue_url, bucket):
    body = BODY.replace(b"T1", b"T-flaky")
    with faults.inject(ingest.module.ARCHIVE._s3, "PutObject", rate=0.5, seed=3) as injected:
        response = ingest.invoke(proxy_event(body))
    assert injected.injected >= 1
    assert response["statusCode"] == 200
    assert len(drain(aws_clients["sqs"], queue_url)) == 1


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("postback-admitted.json", 200),
        ("postback-base64.json", 200),
        ("postback-refused-address.json", 403),
        ("postback-oversized.json", 413),
    ],
)
def test_sample_events(moto_server, aws_stack, aws_clients, queue_url, name, status):
    # The events carry the provider's addresses, so they run with the template's default CIDRs.
    stack = local_stack.load_local_stack(
        moto_server.endpoint_url,
        overrides={"AllowedSourceCidrs": "34.198.230.58/32,34.196.116.219/32,34.197.248.124/32"},
    )
    function = local_stack.load_functions(stack, moto_server.endpoint_url)["IngestFunction"]
    event = json.loads((EVENTS / name).read_text())
    assert function.invoke(event)["statusCode"] == status
    assert len(drain(aws_clients["sqs"], queue_url)) == (1 if status == 200 else 0)
