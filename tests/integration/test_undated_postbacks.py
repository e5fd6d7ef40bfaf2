"""Postbacks the provider sends without a time (EMAIL_SUB, E101, N003) are applied at the receipt of their
first copy within the provider's retry window: retries and redeliveries write the same items, and a retry
that arrives after a later change does not overtake it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from local import aws_faults
from mmsbridge.aws.state_table import StateTable
from mmsbridge.postbacks.consume import consume
from tests.conftest import SAMPLES, ingest_record

T1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    return StateTable(aws_clients["dynamodb"], aws_stack.tables()["StateTable"].name)


def email_sub(code: str, email: str) -> bytes:
    return (
        "<?xml version='1.0'?>\n<POSTBACK><ORIGIN>EMAIL_SUB</ORIGIN>"
        f"<CODE>{code}</CODE><EMAIL>{email}</EMAIL><CAMPAIGNID>317</CAMPAIGNID></POSTBACK>"
    ).encode()


def delivered(table: StateTable, body: bytes, received_at: datetime):
    """One copy of `body` as the ingest would queue it, received at `received_at`, through the consumer."""
    return consume(
        [ingest_record(body, received_at)],
        table=table,
        fetch=lambda key: b"",
        now=received_at,
        retention_days=400,
    )


def changes(table: StateTable, email: str) -> list[dict]:
    return list(table.query(f"EMAILSUB#{email}", sk_prefix="CAMPAIGN#317#"))


def latest(table: StateTable, email: str) -> dict:
    return next(table.query(f"EMAILSUB#{email}", sk_prefix="CAMPAIGN#317#", forward=False, limit=1))


def test_a_late_retry_of_an_opt_in_does_not_overtake_the_opt_out_after_it(table):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    opt_in, opt_out = email_sub("N303", email), email_sub("N304", email)
    assert delivered(table, opt_in, T1).failed == set()
    assert delivered(table, opt_out, T1 + timedelta(minutes=2)).failed == set()
    # The provider's retry of the opt-in (its first answer was lost), 5 minutes after the first copy.
    assert delivered(table, opt_in, T1 + timedelta(minutes=5)).failed == set()
    assert latest(table, email)["subscribed"] is False
    assert [(c["code"], c["at"]) for c in changes(table, email)] == [
        ("N303", "2026-03-01T09:00:00.000000Z"),
        ("N304", "2026-03-01T09:02:00.000000Z"),
    ]  # one item per change: the retry added none


def test_the_same_content_after_the_retry_window_is_a_new_change(table):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    opt_in, opt_out = email_sub("N303", email), email_sub("N304", email)
    delivered(table, opt_in, T1)
    delivered(table, opt_out, T1 + timedelta(days=1))
    delivered(table, opt_in, T1 + timedelta(days=2))  # subscribed again
    assert latest(table, email)["subscribed"] is True
    assert [c["code"] for c in changes(table, email)] == ["N303", "N304", "N303"]


def test_a_redelivered_e101_keeps_its_history_item_as_first_written(table):
    tid = f"T-e101-{uuid.uuid4()}"
    body = (SAMPLES / "postbacks" / "mms_mt_e101.xml").read_bytes().replace(b"TU1TXzcwMzEyNQ==", tid.encode())
    delivered(table, body, T1)
    first = [item for item in table.query(f"MSG#{tid}") if item["sk"].startswith("EVT#")]
    delivered(table, body, T1 + timedelta(minutes=10))  # the provider's retry
    delivered(table, body, T1 + timedelta(minutes=20))  # and an SQS redelivery of it
    again = [item for item in table.query(f"MSG#{tid}") if item["sk"].startswith("EVT#")]
    assert again == first
    assert len(first) == 1
    assert first[0]["timestamp_utc"] == "2026-03-01T09:00:00.000000Z"
    assert first[0]["timestamp_derived"] is True
    assert table.message(tid)["state"] == "FAILED"


def test_a_table_error_on_the_first_sighting_sends_the_record_back_and_writes_nothing(table):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    body = email_sub("N303", email)
    with aws_faults.inject(table.client, "PutItem", rate=1.0, code="InternalServerError") as stats:
        outcome = delivered(table, body, T1)
    assert stats.injected >= 1
    assert len(outcome.failed) == 1
    assert changes(table, email) == []
    assert delivered(table, body, T1 + timedelta(minutes=5)).failed == set()  # the record, back later
    assert [c["at"] for c in changes(table, email)] == ["2026-03-01T09:05:00.000000Z"]


def test_dated_postbacks_cost_no_extra_call(table):
    tid = f"T-dated-{uuid.uuid4()}"
    body = (SAMPLES / "postbacks" / "mms_mt_n102.xml").read_bytes()
    body = re.sub(rb"<TRACKINGID>[^<]*</TRACKINGID>", f"<TRACKINGID>{tid}</TRACKINGID>".encode(), body)
    assert delivered(table, body, T1).calls == 1  # one BatchWriteItem, no first-sighting put
    assert delivered(table, email_sub("N303", f"{uuid.uuid4().hex}@example.com"), T1).calls == 2
