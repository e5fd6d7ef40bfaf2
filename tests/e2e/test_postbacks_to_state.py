"""The receive path on the running local stack: HTTP postback -> ingest -> queue -> consumer -> DynamoDB."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest

from tests.conftest import SAMPLES
from tests.e2e.test_ingest_over_http import post
from tests.waiting import eventually

pytestmark = pytest.mark.e2e


def with_tracking_id(name: str, tracking_id: str) -> bytes:
    body = (SAMPLES / "postbacks" / name).read_bytes()
    return re.sub(
        rb"<TRACKINGID>[^<]*</TRACKINGID>", f"<TRACKINGID>{tracking_id}</TRACKINGID>".encode(), body
    )


def test_delivery_reports_posted_out_of_order_end_as_one_timeline(endpoints, table):
    tid = f"E2E-{uuid.uuid4()}"
    for name in ("mms_mt_n102.xml", "mms_mt_n101.xml", "mms_mt_n102.xml"):  # late N101, a retried N102
        assert post(endpoints["postback_url"], with_tracking_id(name, tid))[0] == 200
    message = eventually(lambda: (m := table.message(tid)) and len(m["history"]) == 2 and m)
    assert message, "the consumer did not apply the postbacks within 20 s"
    assert message["state"] == "DELIVERED"
    assert message["sent_at"] == "2024-02-06T14:14:37.000000Z"
    assert [e["code"] for e in message["history"]] == ["N101", "N102"]


def test_hostile_postback_is_quarantined_with_its_bytes_archived(endpoints, table, local_aws):
    body = b'<!DOCTYPE lol [<!ENTITY a "' + uuid.uuid4().hex.encode() + b'">]><POSTBACK>&a;</POSTBACK>'
    assert post(endpoints["postback_url"], body)[0] == 200
    sha = hashlib.sha256(body).hexdigest()
    record = eventually(lambda: table.get(f"QUARANTINE#{sha}", "Q"))
    assert record, "not quarantined within 20 s"
    assert record["reason"] == "entities"
    archived = local_aws["s3"].get_object(Bucket=endpoints["buckets"]["ArchiveBucket"], Key=record["raw_key"])
    assert archived["Body"].read() == body


def test_inbound_stop_suppresses_the_sender(endpoints, table):
    mobile = "1555" + str(uuid.uuid4().int)[:7]
    body = (
        f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>{mobile}</FROM><TO>47215</TO>"
        f"<TEXT>STOP</TEXT><TRANSACTIONID>{uuid.uuid4()}</TRANSACTIONID>"
        "<RECEIVED>2026-11-25T10:00:00-05:00</RECEIVED></POSTBACK>"
    ).encode()
    assert post(endpoints["postback_url"], body)[0] == 200
    assert eventually(lambda: table.suppressed(mobile)), "not suppressed within 20 s"
    inbound = next(table.query(f"FROM#{mobile}", index="gsi2"))
    assert inbound["text"] == "STOP"
    assert inbound["stop"] is True


def test_nothing_reached_the_dead_letter_queue(endpoints, local_aws):
    attributes = local_aws["sqs"].get_queue_attributes(
        QueueUrl=endpoints["queues"]["PostbackDLQ"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
