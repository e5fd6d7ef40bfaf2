"""A national number never reaches another country past its opt-out: the sender and `ops suppression` read a
number the same way, against the real numbering plans.

The number 14155550178 opts out (an inbound STOP, applied by the real consumer). A request to
`(415) 555-0178` was once read as `4155550178`, i.e. +41 (Switzerland): accepted, sent, and `ops suppression`
said "not suppressed". Now, without DefaultCountryCode it is refused and nothing is sent; with
DefaultCountryCode 1 it is the opted-out number, and the request is SUPPRESSED.
"""

from __future__ import annotations

import json
import uuid

import pytest

from local.simulator import ProviderSimulator
from mmsbridge.postbacks.consume import consume
from mmsbridge.sending.ledger_store import SendLedger
from tests.conftest import ingest_record
from tests.integration.test_ops_cli import NOW
from tests.integration.test_sender import API_KEY, Harness, message, run, sms

OPTED_OUT = "14155550178"
NATIONAL = "(415) 555-0178"


@pytest.fixture
def simulator():
    with ProviderSimulator(api_key=API_KEY) as sim:
        yield sim


@pytest.fixture
def harness(table, simulator):
    return Harness(table, simulator)


@pytest.fixture(scope="module")
def opted_out(table):
    stop = (
        "<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>14155550178</FROM><TO>40611</TO>"
        "<TEXT>STOP</TEXT><RECEIVED>2025-06-02T08:15:00-04:00</RECEIVED>"
        f"<TRANSACTIONID>stop-{uuid.uuid4().hex}</TRANSACTIONID></POSTBACK>"
    ).encode()
    outcome = consume([ingest_record(stop, NOW)], table=table, fetch=lambda key: b"")
    assert not outcome.failed
    assert table.suppressed(OPTED_OUT)
    return OPTED_OUT


def calls(simulator) -> list[dict]:
    return [e for e in simulator.log() if e.get("action") == "sendSMS"]


@pytest.mark.parametrize("typed", [NATIONAL, "4155550178", "415-555-0178"])
def test_without_a_country_code_the_national_number_is_refused_and_nothing_is_sent(
    harness, simulator, opted_out, typed
):
    (result,) = run(harness.sender(), message(sms(to=typed)))
    assert result.outcome == "rejected"
    assert calls(simulator) == []


def test_the_refusal_names_the_country_the_digits_were_read_as(harness, simulator, opted_out):
    request = sms(to="4155550178")
    run(harness.sender(), message(request))
    ledger = SendLedger(harness.table).get(request["request_id"])
    assert "not a valid number for +41; write the country code" in str(ledger)


@pytest.mark.parametrize("typed", [NATIONAL, "4155550178", "+1 415 555 0178", OPTED_OUT])
def test_with_country_code_1_every_spelling_is_the_opted_out_number(harness, simulator, opted_out, typed):
    (result,) = run(harness.sender(default_country_code="1"), message(sms(to=typed)))
    assert result.outcome == "suppressed"
    assert calls(simulator) == []


def test_ops_suppression_reads_the_number_as_the_sender_does(cli, endpoints_file, opted_out):
    code, out, err = cli("--json", "suppression", NATIONAL)
    assert (code, out) == (2, "")
    assert "national format" in err

    code, out, err = cli("--json", "suppression", "4155550178")
    assert code == 2
    assert "not a valid number for +41" in err

    code, out, _ = cli("--json", "suppression", "+1 (415) 555-0178")
    assert code == 0
    assert (json.loads(out)["mobile"], json.loads(out)["suppressed"]) == (OPTED_OUT, True)

    document = json.loads(endpoints_file.read_text())
    endpoints_file.write_text(json.dumps({**document, "parameters": {"DefaultCountryCode": "1"}}))
    code, out, _ = cli("--json", "suppression", NATIONAL)
    assert code == 0
    assert (json.loads(out)["mobile"], json.loads(out)["suppressed"]) == (OPTED_OUT, True)


def test_ops_inbound_refuses_a_number_the_sender_would_refuse(cli, opted_out):
    code, _, err = cli("inbound", "--from", "4155550178")
    assert code == 2
    assert "not a valid number for +41" in err
    code, out, _ = cli("--json", "inbound", "--from", "+1 415 555 0178")
    assert code == 0
    assert [m["from"] for m in json.loads(out)["messages"]][:1] == [OPTED_OUT]
