"""Outbound messages by number (gsi2 `OUT#<TO>`): the consumer lists every MMS_MT/SMS_MT delivery report's
history item there, and the sender its outbound record, so a message is found by number and time even when no
request is linked to it."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

import pytest

from mmsbridge.core.table_model import UNDATED
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback
from mmsbridge.sending.ledger import accepted_fields, outbound_items
from mmsbridge.sending.provider_xml import ProviderResult
from tests.conftest import SAMPLES

POSTBACKS = SAMPLES / "postbacks"
RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def items(name: str) -> list[dict]:
    body = (POSTBACKS / name).read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    received = Received(
        sha, parse_postback(body, received_at=RECEIVED_AT), f"raw/{sha}.xml", sha, RECEIVED_AT
    )
    return list(plan_batch([received]).puts.values())


@pytest.mark.parametrize(
    "name",
    [
        "sms_mt_n201.xml",
        "sms_mt_n202.xml",
        "sms_mt_e202.xml",
        "mms_mt_n101.xml",
        "mms_mt_n102.xml",
        "mms_mt_n202.xml",
    ],
)
def test_a_delivery_reports_history_item_is_listed_under_its_number_and_time(name):
    found = items(name)
    (event,) = [item for item in found if item["sk"].startswith("EVT#")]
    tracking_id = event["pk"].removeprefix("MSG#")
    assert event["gsi2pk"] == f"OUT#{event['fields']['TO']}"
    assert event["gsi2sk"] == f"{event['timestamp_utc']}#{tracking_id}"
    markers = [item for item in found if item["sk"].startswith("RANK#")]
    assert all("gsi2pk" not in marker for marker in markers)  # one item per report on the index


def test_a_report_without_a_time_is_listed_at_its_first_receipt():
    # E101 carries no TIMESTAMP: its time is the first copy's receipt, the same for every copy.
    (event,) = [item for item in items("mms_mt_e101.xml") if item["sk"].startswith("EVT#")]
    assert event["timestamp_utc"] == "2026-01-02T03:04:05.000000Z"
    assert event["gsi2sk"].startswith("2026-01-02T03:04:05.000000Z#")
    assert not event["gsi2sk"].startswith(UNDATED)


@pytest.mark.parametrize("name", ["mms_mt_n501.xml", "mms_mt_n003.xml", "sms_mo_n211.xml", "mms_mo_n401.xml"])
def test_other_postbacks_are_not_outbound_messages(name):
    for item in items(name):
        assert not str(item.get("gsi2pk", "")).startswith("OUT#"), item


def test_the_senders_outbound_record_is_listed_under_the_number_it_went_to():
    accepted = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ledger = {
        "request_id": "order-1",
        "action": "sendSMS",
        "to": "17743199144",
        "from": "47215",
        **accepted_fields(ProviderResult(ok=True, tracking_id="T-1"), accepted),
    }
    outbound, marker = outbound_items(ledger)
    assert outbound["gsi2pk"] == "OUT#17743199144"
    assert outbound["gsi2sk"] == "2026-01-02T03:04:05.000000Z#T-1"
    assert "gsi2pk" not in marker


@pytest.mark.parametrize(("field", "size"), [("TO", 2100), ("TRACKINGID", 1000)])
def test_a_report_whose_index_keys_would_be_too_long_is_stored_off_the_index(field, size):
    # DynamoDB refuses an index key over 2048 (partition) or 1024 (sort) bytes, and the batch with it.
    body = (POSTBACKS / "sms_mt_n201.xml").read_bytes()
    value = "1" * size if field == "TO" else "T" * size
    body = re.sub(rf"<{field}>[^<]*</{field}>".encode(), f"<{field}>{value}</{field}>".encode(), body)
    sha = hashlib.sha256(body).hexdigest()
    received = Received(
        sha, parse_postback(body, received_at=RECEIVED_AT), f"raw/{sha}.xml", sha, RECEIVED_AT
    )
    (event,) = [item for item in plan_batch([received]).puts.values() if item["sk"].startswith("EVT#")]
    assert "gsi2pk" not in event
    assert "gsi2sk" not in event
