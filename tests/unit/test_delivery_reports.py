"""N102 and N202 report success or failure (docs/provider-protocol.md §3.2): the STATUS text decides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mmsbridge.core.states import MessageState, TemplateState, higher
from mmsbridge.postbacks.reader import parse_postback

RECEIVED_AT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
REPORTS = [("MMS_MT", "N102"), ("MMS_MT", "N202"), ("SMS_MT", "N202")]
FAILURES = [
    ("Message Sent/Expired", "Expired"),
    ("Message Sent/Rejected", "Rejected"),
    ("Message Sent/Failed", "Failed"),
    ("Message Sent/NotSupported", "NotSupported"),
    ("Message Sent/Not Supported", "NotSupported"),
    ("Message Sent/Undelivered", "Undelivered"),
    ("  message sent / EXPIRED ", "Expired"),
    ("SMS Sent/Failed", "Failed"),
]
DELIVERIES = ["Message Sent/Delivered", "SMS Sent/Delivered", None, "", "Message Sent", "Sent/Bounced?", "/"]


def v1(origin: str, code: str, status: str | None, sent_as: str = "MMS") -> bytes:
    status_element = "" if status is None else f"<STATUS>{status}</STATUS>"
    return (
        f"<POSTBACK><ORIGIN>{origin}</ORIGIN><CODE>{code}</CODE>{status_element}<SENTAS>{sent_as}</SENTAS>"
        "<TRACKINGID>UkVQT1JUXzQ0MQ==</TRACKINGID><TO>16045550119</TO>"
        "<TIMESTAMP>2025-06-02T08:15:00-04:00</TIMESTAMP></POSTBACK>"
    ).encode()


def hyphenated(origin: str, code: str, status: str | None) -> bytes:
    status_element = "" if status is None else f"<status>{status}</status>"
    return (
        f"<postback><origin>{origin}</origin><code>{code}</code>{status_element}<sent-as>SMS</sent-as>"
        "<tracking-id>UkVQT1JUXzQ0Mg==</tracking-id><to>16045550119</to>"
        "<timestamp>2025-06-02T08:15:00-04:00</timestamp></postback>"
    ).encode()


@pytest.mark.parametrize("build", [v1, hyphenated])
@pytest.mark.parametrize(("origin", "code"), REPORTS)
@pytest.mark.parametrize(("status", "reason"), FAILURES)
def test_a_failure_text_makes_the_report_undelivered_with_its_reason(build, origin, code, status, reason):
    parsed = parse_postback(build(origin, code, status), received_at=RECEIVED_AT)
    assert (parsed.state, parsed.failure_reason) == (MessageState.UNDELIVERED, reason)


@pytest.mark.parametrize("build", [v1, hyphenated])
@pytest.mark.parametrize(("origin", "code"), REPORTS)
@pytest.mark.parametrize("status", DELIVERIES)
def test_delivered_missing_or_unreadable_status_is_a_delivery(build, origin, code, status):
    parsed = parse_postback(build(origin, code, status), received_at=RECEIVED_AT)
    assert (parsed.state, parsed.failure_reason) == (MessageState.DELIVERED, None)


@pytest.mark.parametrize(("origin", "code"), REPORTS)
def test_a_late_sent_report_never_moves_a_failed_delivery_report_back(origin, code):
    failed = parse_postback(v1(origin, code, "Message Sent/Expired"), received_at=RECEIVED_AT)
    sent = parse_postback(v1(origin, "N101" if origin == "MMS_MT" else "N201", "Message Sent"))
    assert higher(failed.state, sent.state) is MessageState.UNDELIVERED
    assert higher(sent.state, failed.state) is MessageState.UNDELIVERED


def test_via_link_follows_sentas_whatever_the_outcome():
    delivered = parse_postback(v1("MMS_MT", "N202", "Message Sent/Delivered", sent_as="SMS"))
    failed = parse_postback(v1("MMS_MT", "N102", "Message Sent/Failed", sent_as="SMS"))
    binary = parse_postback(v1("MMS_MT", "N102", "Message Sent/Failed"))
    assert (delivered.via_link, failed.via_link, binary.via_link) == (True, True, False)


def test_other_codes_still_take_their_state_from_the_code():
    # E102 reports a failure whatever STATUS says; N101 is SENT even with a failure text in STATUS.
    e102 = parse_postback(v1("MMS_MT", "E102", "Message Sent/Delivered"))
    n101 = parse_postback(v1("MMS_MT", "N101", "Message Sent/Expired"))
    assert e102.state is MessageState.UNDELIVERED
    assert (n101.state, n101.failure_reason) == (MessageState.SENT, None)


def test_e004_image_encoding_failure_marks_the_template_broken():
    body = b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>E004</CODE><MMSID>730114</MMSID></POSTBACK>"
    parsed = parse_postback(body, received_at=RECEIVED_AT)
    assert (parsed.template_state, parsed.mms_id, parsed.state) == (TemplateState.BROKEN, "730114", None)
