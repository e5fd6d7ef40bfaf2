"""Postbacks speak only for our numbers, on the running local stack: OwnNumbers goes from samconfig.toml
[local] through template.yaml to the consumer, and a forged inbound STOP for a number that is not ours,
posted with the right token from an admitted address, changes nothing."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.e2e.test_ingest_over_http import post
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

OURS = "47215"
THEIRS = "55555"


def stop(mobile: str, to: str) -> bytes:
    return (
        f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>{mobile}</FROM><TO>{to}</TO>"
        f"<TEXT>STOP</TEXT><TRANSACTIONID>{uuid.uuid4()}</TRANSACTIONID>"
        "<RECEIVED>2026-11-25T10:00:00-05:00</RECEIVED></POSTBACK>"
    ).encode()


def test_the_stack_runs_with_its_own_numbers(endpoints):
    listed = set(endpoints["parameters"]["OwnNumbers"].split(","))
    assert OURS in listed
    assert THEIRS not in listed


def test_a_forged_inbound_stop_for_another_number_is_quarantined_with_its_bytes(endpoints, table, local_aws):
    mobile = "1555" + str(uuid.uuid4().int)[:7]
    forged = stop(mobile, THEIRS)
    assert post(endpoints["postback_url"], forged)[0] == 200  # stored first, as every admitted postback
    sha = hashlib.sha256(forged).hexdigest()
    record = eventually(lambda: table.get(f"QUARANTINE#{sha}", "Q"))
    assert record, "not quarantined within 20 s"
    assert record["reason"] == "not-our-number"
    assert record["detail"] == "SMS_MO N211 TO ***55 is not one of OwnNumbers"
    archived = local_aws["s3"].get_object(Bucket=endpoints["buckets"]["ArchiveBucket"], Key=record["raw_key"])
    assert archived["Body"].read() == forged
    # The quarantine record is written with the rest of its batch: by now nothing else was, or will be.
    assert table.suppression(mobile) is None
    assert list(table.query(f"FROM#{mobile}", index="gsi2")) == []

    # The same STOP to our shortcode: the number is suppressed, so the check refused the number, not the STOP.
    assert post(endpoints["postback_url"], stop(mobile, OURS))[0] == 200
    assert eventually(lambda: table.suppressed(mobile)), "not suppressed within 20 s"
