"""Postbacks speak only for our numbers, through the real consumer on moto: OwnNumbers from template.yaml
(and samconfig.toml [local]) reaches the handler's environment, and a forged postback for another number
changes nothing but its quarantine record."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from local import stack as local_stack
from local.template.resolve import load_stack
from mmsbridge.aws.state_table import StateTable
from mmsbridge.postbacks.own_numbers import NOT_OUR_NUMBER
from tests.conftest import SAMPLES, ingest_record
from tests.integration.test_consumer import NOW

OURS = "47215"
THEIRS = "55555"  # a shortcode of another customer of the provider


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    return StateTable(aws_clients["dynamodb"], aws_stack.tables()["StateTable"].name)


def consumer_with(moto_server, own_numbers: str, suffix: str):
    """The template's consumer, loaded with OwnNumbers=`own_numbers` as `sam deploy` would pass it."""
    stack = local_stack.load_local_stack(moto_server.endpoint_url, overrides={"OwnNumbers": own_numbers})
    assert stack.functions()["ConsumerFunction"].environment["OWN_NUMBERS"] == own_numbers
    return local_stack.function_for(stack, "ConsumerFunction", moto_server.endpoint_url, name_suffix=suffix)


@pytest.fixture(scope="module")
def checking(moto_server):
    return consumer_with(moto_server, OURS, "-own")


@pytest.fixture(scope="module")
def unchecked(moto_server):
    return consumer_with(moto_server, "", "-unchecked")


def stop(mobile: str, to: str) -> bytes:
    return (
        f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>{mobile}</FROM><TO>{to}</TO>"
        f"<TEXT>STOP</TEXT><TRANSACTIONID>{uuid.uuid4()}</TRANSACTIONID>"
        "<RECEIVED>2026-11-25T10:00:00-05:00</RECEIVED></POSTBACK>"
    ).encode()


def opt_in(mobile: str, shortcode: str) -> bytes:
    body = (SAMPLES / "postbacks" / "sub_n301.xml").read_bytes()
    body = body.replace(b"<SHORTCODE>63184</SHORTCODE>", f"<SHORTCODE>{shortcode}</SHORTCODE>".encode())
    # A later time than the STOP's, so that a forged opt-in that got through would lift the opt-out.
    start = body.index(b"<MOBILE>")
    end = body.index(b"</MOBILE>")
    body = body[:start] + f"<MOBILE>{mobile}".encode() + body[end:]
    start, end = body.index(b"<TIMESTAMP>"), body.index(b"</TIMESTAMP>")
    return body[:start] + b"<TIMESTAMP>2026-11-25T11:00:00-05:00" + body[end:]


def invoke(function, *bodies: bytes) -> dict:
    return function.invoke({"Records": [ingest_record(body, NOW) for body in bodies]})


def new_mobile() -> str:
    return "1312555" + f"{uuid.uuid4().int % 10_000:04d}"


def test_the_local_stack_lists_the_numbers_its_simulator_and_samples_use(aws_stack):
    own = aws_stack.functions()["ConsumerFunction"].environment["OWN_NUMBERS"]
    assert set(own.split(",")) == {"47215", "12345", "40611", "63184", "29507"}


def test_the_template_default_turns_the_check_off_and_says_so(moto_server):
    stack = load_stack(local_stack.TEMPLATE, None)  # no samconfig: what `sam deploy` starts from
    assert stack.parameters["OwnNumbers"] == ""
    assert stack.functions()["ConsumerFunction"].environment["OWN_NUMBERS"] == ""
    assert stack.outputs["OwnNumbersCheckOff"].startswith("The own-number check is off")
    listed = local_stack.load_local_stack(moto_server.endpoint_url)
    assert "OwnNumbersCheckOff" not in listed.outputs


def test_a_forged_inbound_stop_for_another_number_changes_nothing(checking, table, caplog):
    mobile = new_mobile()
    forged = stop(mobile, THEIRS)
    assert invoke(checking, forged) == {"batchItemFailures": []}  # acknowledged: it never comes back
    assert table.suppressed(mobile) is False
    assert table.suppression(mobile) is None
    assert list(table.query(f"FROM#{mobile}", index="gsi2")) == []
    sha = hashlib.sha256(forged).hexdigest()
    record = table.get(f"QUARANTINE#{sha}", "Q")
    assert record["reason"] == NOT_OUR_NUMBER
    assert record["detail"] == "SMS_MO N211 TO ***55 is not one of OwnNumbers"
    assert record["raw_key"] == f"raw/{sha}.xml"  # where the ingest archived its bytes
    (warning,) = [r for r in caplog.records if r.getMessage() == "postback quarantined"]
    assert warning.reason == NOT_OUR_NUMBER
    assert warning.sha256 == sha
    assert warning.detail == record["detail"]  # the number masked in the log line too
    assert not [r for r in caplog.records if mobile in r.getMessage() or mobile in str(vars(r))]


def test_the_same_stop_to_our_number_suppresses_and_a_forged_opt_in_cannot_lift_it(checking, table):
    mobile = new_mobile()
    assert invoke(checking, stop(mobile, OURS)) == {"batchItemFailures": []}
    assert table.suppressed(mobile) is True
    forged = opt_in(mobile, THEIRS)
    assert invoke(checking, forged) == {"batchItemFailures": []}
    assert table.suppressed(mobile) is True
    assert table.get(f"QUARANTINE#{hashlib.sha256(forged).hexdigest()}", "Q")["reason"] == NOT_OUR_NUMBER
    assert list(table.query(f"SUB#{mobile}")) == []
    genuine = opt_in(mobile, OURS)
    assert invoke(checking, genuine) == {"batchItemFailures": []}
    assert table.suppressed(mobile) is False  # our own campaign's opt-in does lift it


def test_delivery_reports_from_another_number_leave_no_message(checking, table):
    tracking_id = f"T-{uuid.uuid4()}"
    ours, theirs = (
        (SAMPLES / "postbacks" / "sms_mt_n202.xml")
        .read_bytes()
        .replace(b"<FROM>63184</FROM>", f"<FROM>{number}</FROM>".encode())
        .replace(b"U01TXzYwODUxNA==", tracking_id.encode())
        for number in (OURS, THEIRS)
    )
    assert tracking_id.encode() in ours
    assert invoke(checking, theirs) == {"batchItemFailures": []}
    assert table.message(tracking_id) is None
    assert list(table.query(f"MSG#{tracking_id}")) == []
    assert invoke(checking, ours) == {"batchItemFailures": []}
    assert table.message(tracking_id)["state"] == "DELIVERED"


def test_with_the_check_off_a_stop_for_any_number_is_applied_as_before(unchecked, table):
    mobile = new_mobile()
    assert invoke(unchecked, stop(mobile, THEIRS)) == {"batchItemFailures": []}
    assert table.suppressed(mobile) is True
