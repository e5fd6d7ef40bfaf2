"""A postback-queue record whose bytes do not match the SHA-256 the ingest took on receipt is quarantined as
`hash-mismatch` by the real consumer (wired from template.yaml, on moto), whether the bytes came inline or
from the archive by their S3 key: acknowledged, nothing applied, its quarantine record naming the key, a log
line and the `Quarantined` metric saying so. The same record with the right bytes is applied, so it is the
hash alone that stops it."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from datetime import UTC, datetime

import pytest

from local import stack as local_stack
from mmsbridge.aws.state_table import StateTable
from mmsbridge.core import envelope
from tests.conftest import SAMPLES
from tests.emitted_metrics import data


@pytest.fixture(scope="module")
def consumer(moto_server, aws_stack):
    function = local_stack.function_for(
        aws_stack, "ConsumerFunction", moto_server.endpoint_url, name_suffix="HashMismatch", max_containers=1
    )
    return function


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    return StateTable(aws_clients["dynamodb"], aws_stack.tables()["StateTable"].name)


@pytest.fixture(scope="module")
def bucket(aws_stack):
    return aws_stack.buckets()["ArchiveBucket"].name


def report(tracking_id: str) -> bytes:
    body = (SAMPLES / "postbacks" / "sms_mt_n201.xml").read_bytes()
    return re.sub(
        rb"<TRACKINGID>[^<]*</TRACKINGID>", f"<TRACKINGID>{tracking_id}</TRACKINGID>".encode(), body
    )


def record(*, sha256: str, body: bytes, inline: bool) -> dict:
    """A postback-queue record claiming `sha256`, with `body` inline or (inline=False) only its S3 key."""
    message = json.loads(
        envelope.encode(
            key=f"raw/{sha256}.xml",
            sha256=sha256,
            body=body,
            received_at=datetime.now(UTC),
            source_ip="127.0.0.1",
            request_id="hash-mismatch",
        )
    )
    if not inline:
        del message["body_b64"]
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "rh",
        "body": json.dumps(message),
        "attributes": {},
    }


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "by-s3-key"])
def test_bytes_that_do_not_match_their_hash_are_quarantined(
    consumer, table, aws_clients, bucket, capsys, caplog, inline
):
    tracking_id = f"T-hash-{uuid.uuid4().hex}"
    received = report(tracking_id)
    sha = hashlib.sha256(received).hexdigest()
    # One byte changed after the hash was taken: still a well-formed postback the consumer would apply.
    altered = received.replace(b"<CODE>N201</CODE>", b"<CODE>N202</CODE>")
    assert altered != received
    if not inline:
        aws_clients["s3"].put_object(Bucket=bucket, Key=f"raw/{sha}.xml", Body=altered)
    capsys.readouterr()

    with caplog.at_level(logging.WARNING):
        response = consumer.invoke({"Records": [record(sha256=sha, body=altered, inline=inline)]})

    assert response == {"batchItemFailures": []}  # acknowledged: it would never match on a retry
    assert table.message(tracking_id) is None  # nothing of it applied
    quarantined = table.get(f"QUARANTINE#{sha}", "Q")
    assert quarantined["reason"] == "hash-mismatch"
    assert quarantined["raw_key"] == f"raw/{sha}.xml"
    assert sha in {item["sha256"] for item in table.query("QUARANTINE", index="gsi1")}
    (logged,) = [r for r in caplog.records if r.getMessage() == "postback quarantined" and r.sha256 == sha]
    assert logged.reason == "hash-mismatch"
    metrics = {p.name: p.value for p in data(capsys.readouterr().out)}
    assert (metrics["Quarantined"], metrics["PostbacksApplied"]) == (1, 0)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "by-s3-key"])
def test_the_same_record_with_its_own_bytes_is_applied(consumer, table, aws_clients, bucket, inline):
    tracking_id = f"T-hash-{uuid.uuid4().hex}"
    body = report(tracking_id)
    sha = hashlib.sha256(body).hexdigest()
    if not inline:
        aws_clients["s3"].put_object(Bucket=bucket, Key=f"raw/{sha}.xml", Body=body)
    assert consumer.invoke({"Records": [record(sha256=sha, body=body, inline=inline)]}) == {
        "batchItemFailures": []
    }
    assert table.message(tracking_id)["state"] == "SENT"
    assert table.get(f"QUARANTINE#{sha}", "Q") is None
