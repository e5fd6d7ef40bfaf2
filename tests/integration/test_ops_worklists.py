"""The operator CLI on what the send ledger and the consumer keep beyond the final worklists: conflicting
duplicates in `request`, requests waiting or in flight (`requests --status RETRY/SENDING`), where to look
for a request_id the ledger does not hold, refusals with the addressing that passed, `resend` of a request
the provider refused for good, and `unrecognised` postback events. In-process against moto, with ledgers
written by the sender's own code."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from local.simulator import ProviderSimulator
from mmsbridge.sending.conflicts import record_conflict
from mmsbridge.sending.ledger import rejected_item, sha256_hex
from mmsbridge.sending.ledger_store import SendLedger
from tests.integration.test_ops_cli import apply, drain, provider_time, sample
from tests.integration.test_ops_send import NOW, Ledgers, new_id, sms, window
from tests.integration.test_sender import API_KEY, Harness, message, run


def past_day() -> datetime:
    """A day of its own, long past (before other modules' test days, and never today), so a listing window
    holds only the test's own records."""
    return datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(7500))


@pytest.fixture
def ledgers(table):
    return Ledgers(table)


@pytest.fixture
def send_queue(aws_clients, names):
    drain(aws_clients["sqs"], names["send_queue"])
    return aws_clients["sqs"], names["send_queue"]


@pytest.fixture
def sender(table):
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as simulator:
        yield Harness(table, simulator).sender()


# -- conflicting duplicates ----------------------------------------------------------------------------------
def test_request_shows_the_conflicting_duplicates_beside_the_request(cli, ledgers, table):
    request_id = new_id("order")
    ledgers.accepted(sms(request_id), NOW - timedelta(minutes=5), f"T-{uuid.uuid4()}")
    bodies = [sms(request_id, to="13125550188"), sms(request_id, text="changed")]
    for position, body in enumerate(bodies):
        record_conflict(
            table, request_id, body, NOW + timedelta(seconds=position), message_id=f"m-{position}"
        )

    code, out, _ = cli("--json", "request", request_id)
    assert code == 0
    document = json.loads(out)
    assert document["status"] == "ACCEPTED"  # the request stands
    found = document["conflicting_duplicates"]
    assert found["count"] == 2
    assert found["last_sha256"] == sha256_hex(bodies[1])
    assert [s["sha256"] for s in found["kept"]] == [sha256_hex(b) for b in bodies]
    assert found["kept"][0]["to"] == "13125550188"
    assert found["not_kept"] == 0

    text = cli("request", request_id)[1]
    assert "conflicting duplicates: 2 (the request_id came again with a different body; never sent" in text
    assert sha256_hex(bodies[0]) in text
    assert "m-1" in text

    other = new_id("plain")  # none recorded: null in --json, nothing in the text
    ledgers.accepted(sms(other), NOW, f"T-{uuid.uuid4()}")
    assert json.loads(cli("--json", "request", other)[1])["conflicting_duplicates"] is None
    assert "conflicting" not in cli("request", other)[1]


# -- RETRY and SENDING -----------------------------------------------------------------------------------
def test_requests_waiting_or_in_flight_are_listed_from_a_bounded_scan(cli, ledgers):
    day = past_day()  # the leases have long run out
    retry_ids = [new_id("retry") for _ in range(2)]
    for hour, request_id in enumerate(retry_ids):
        ledgers.throttled(sms(request_id), day + timedelta(hours=hour))
    sending_id = new_id("sending")
    ledgers.claim(sms(sending_id), day + timedelta(hours=3))  # its lease ran out long ago
    whole_day = window(day, day + timedelta(days=1))

    code, out, _ = cli("--json", "requests", "--status", "RETRY", *whole_day)
    assert code == 0
    document = json.loads(out)
    assert [r["request_id"] for r in document["requests"]] == retry_ids[::-1]  # newest first
    newest = document["requests"][0]
    assert (newest["status"], newest["code"], newest["last_outcome"]) == ("RETRY", "E113", "throttled")
    assert newest["at"] == (day + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert (newest["action"], newest["to"]) == ("sendSMS", "13125550147")
    assert newest["counts"]["throttled"] == 1
    assert document["scan"]["complete"] is True
    assert document["scan"]["scanned"] > 0

    _, out, _ = cli("--json", "requests", "--status", "sending", *whole_day)
    (sending,) = json.loads(out)["requests"]
    assert (sending["request_id"], sending["status"], sending["lease_ran_out"]) == (
        sending_id,
        "SENDING",
        True,
    )

    text = cli("requests", "--status", "RETRY", *whole_day, "--limit", "1")[1]
    assert text.startswith(
        "RETRY send requests (waiting for their next delivery): 1 (newest first, at most 1;"
    )
    assert "scanned the whole table" in text
    assert retry_ids[1] in text
    assert retry_ids[0] not in text
    assert "ran out" in cli("requests", "--status", "SENDING", *whole_day)[1]

    # The scan stops at its budget (the table holds at least these three ledgers), and says so.
    code, out, _ = cli("--json", "requests", "--status", "RETRY", "--scan-limit", "2")
    assert code == 0
    assert json.loads(out)["scan"] == {"scanned": 2, "complete": False, "budget": 2}
    text = cli("requests", "--status", "RETRY", "--scan-limit", "2")[1]
    assert "not the whole table: there may be more" in text


# -- where a request_id is ---------------------------------------------------------------------------------
def test_a_request_id_the_ledger_does_not_hold_says_where_to_look(cli):
    request_id = new_id("never")
    code, out, err = cli("request", request_id)
    assert (code, out) == (1, "")
    assert f"no send request with request_id {request_id} in the ledger" in err
    assert f"send-dlq --list --request-id {request_id}" in err
    assert "requests --status REJECTED" in err
    assert "request --sha256 HEX" in err
    code, _, err = cli("request", "--sha256", "0" * 64)
    assert code == 1
    assert "one with a request_id is found by it: `request ID`" in err


def test_a_refused_body_is_found_by_the_request_id_it_carried(cli, sender, table):
    number = random.randrange(10**12, 10**13)  # a request_id that is a number: never a key
    older = message(json.dumps({"request_id": number, "action": "sendSMS", "to": "13125550147"}))
    newer = message(json.dumps({"request_id": number, "action": "sendSMS", "text": "hi"}))
    assert [r.outcome for r in run(sender, older, newer)] == ["rejected", "rejected"]

    code, out, _ = cli("--json", "request", str(number))
    assert code == 0
    document = json.loads(out)
    assert document["key"] == f"REJECTED#{sha256_hex(newer.body)}"  # the newest, stored by its hash
    assert (document["found_by"], document["request_id_given"]) == ("request_id_given", str(number))
    assert document["also_carried_by"] == [sha256_hex(older.body)]
    assert document["status"] == "REJECTED"
    text = cli("request", str(number))[1]
    assert f"found by the request_id it carried, {number}" in text
    assert f"request --sha256 {sha256_hex(newer.body)}" in text
    assert sha256_hex(older.body) in text

    long_id = "x" * 299 + uuid.uuid4().hex[:1]  # too long to be a key, still typed or pasted
    body = json.dumps({"request_id": long_id, "action": "sendSMS"})
    assert run(sender, message(body))[0].outcome == "rejected"
    code, out, _ = cli("--json", "request", long_id)
    assert (code, json.loads(out)["payload_sha256"]) == (0, sha256_hex(body))


# -- refusals: what passed, and tables that fit ------------------------------------------------------------
def test_a_refusal_shows_the_addressing_that_passed(cli, sender, table):
    day = past_day()
    request_id = new_id("refused")
    body = {"request_id": request_id, "action": "sendsms", "to": "+1 (774) 319-9144", "from": "12"}
    (result,) = run(sender, message(body))  # from invalid, text missing
    assert result.outcome == "rejected"
    ledger = SendLedger(table).get(request_id)
    assert (ledger["action"], ledger["to"], ledger.get("from")) == ("sendSMS", "17743199144", None)

    document = json.loads(cli("--json", "request", request_id)[1])
    assert (document["action"], document["to"], document["from"]) == ("sendSMS", "17743199144", None)
    assert {r["field"] for r in document["reasons"]} == {"from", "text"}
    text = cli("request", request_id)[1]
    assert "  action          sendSMS\n  to              17743199144\n  from            -\n" in text

    # A refusal recorded before the addressing was kept: read again from its stored body.
    old_id = new_id("old-refusal")
    old_body = json.dumps({"request_id": old_id, "action": "sendSMS", "to": "13125550147", "from": "1"})
    SendLedger(table).record_rejected(rejected_item(old_body, old_id, [("from", "is not valid")], day))
    _, out, _ = cli("--json", "requests", "--status", "REJECTED", *window(day, day + timedelta(days=1)))
    (row,) = json.loads(out)["requests"]
    assert (row["request_id"], row["action"], row["to"], row["from"]) == (
        old_id,
        "sendSMS",
        "13125550147",
        None,
    )


def test_rejected_rows_abbreviate_sha256_ids_and_fit_200_characters(cli, table):
    day = past_day()
    reasons = [(f"field_{n}", "is not what a send request may carry " * 3) for n in range(6)]
    body = json.dumps({"action": "sendSMS", "to": "13125550147", "marker": uuid.uuid4().hex})
    SendLedger(table).record_rejected(
        rejected_item(body, None, reasons, day, valid={"action": "sendSMS", "to": "13125550147"})
    )
    long_id = "y" * 200 + uuid.uuid4().hex  # keyable (at most 256) but longer than a valid id
    SendLedger(table).record_rejected(
        rejected_item(json.dumps({"request_id": long_id}), long_id, reasons, day + timedelta(hours=1))
    )
    whole_day = window(day, day + timedelta(days=1))

    text = cli("requests", "--status", "REJECTED", *whole_day)[1]
    lines = text.splitlines()
    assert all(len(line) <= 200 for line in lines), max(lines, key=len)
    digest = sha256_hex(body)
    assert f"sha256:{digest[:16]}… " in text
    assert digest not in text
    assert long_id not in text
    assert long_id[:63] + "…" in text
    assert "ids abbreviated: `--json` gives each whole" in text
    row = next(line for line in lines if digest[:16] in line)
    assert row.endswith("…")  # the reasons, cut to fit
    assert " sendSMS " in row
    assert " 13125550147 " in row

    requests = json.loads(cli("--json", "requests", "--status", "REJECTED", *whole_day)[1])["requests"]
    assert [(r["request_id"], r["payload_sha256"]) for r in requests] == [
        (long_id, sha256_hex(json.dumps({"request_id": long_id}))),
        (None, digest),
    ]
    assert requests[1]["detail"] == "; ".join(f"{field}: {reason}" for field, reason in reasons)  # whole


# -- resend of a permanent failure -------------------------------------------------------------------------
def test_resend_of_a_permanent_failure_needs_a_second_confirmation(cli, ledgers, send_queue):
    sqs, queue_url = send_queue
    request_id = new_id("failed")
    ledgers.failed(sms(request_id), NOW)  # E201, PERMANENT
    before = ledgers.get(request_id)

    for flags in (["--yes"], ["--even-if-permanent"], []):
        code, out, err = cli("resend", request_id, *flags)
        assert (code, out) == (2, ""), flags
        assert "without --yes --even-if-permanent; nothing changed" in err
        assert "refused" in err
        assert "for good (E201, PERMANENT: Invalid phone number)" in err
        assert "will fail the same way" in err
        assert ledgers.get(request_id) == before
    code, out, _ = cli("--json", "resend", request_id, "--yes")
    document = json.loads(out)
    assert (code, document["resent"], document["status"]) == (2, False, "FAILED")
    assert "--even-if-permanent" in document["refusal"]
    assert drain(sqs, queue_url) == []

    code, out, err = cli("resend", request_id, "--yes", "--even-if-permanent")
    assert code == 0
    assert f"resent {request_id}: FAILED -> RETRY" in out
    assert "warning: the provider refused" in err
    assert len(drain(sqs, queue_url)) == 1
    assert ledgers.get(request_id)["status"] == "RETRY"

    transient = new_id("failed")  # failed too often transiently: --yes is enough, and no warning
    ledgers.failed(sms(transient), NOW, error_class="TRANSIENT")
    code, _, err = cli("resend", transient, "--yes")
    assert (code, err) == (0, "")
    assert len(drain(sqs, queue_url)) == 1


# -- unrecognised postback events --------------------------------------------------------------------------
def test_unrecognised_events_are_listed_newest_first(cli, table):
    day = past_day()
    ids = [f"UkNT{uuid.uuid4().hex[:12]}" for _ in range(3)]
    for hour, tracking_id in enumerate(ids):
        moment = provider_time(day + timedelta(hours=hour))
        apply(table, sample("rcs_mt_n701.xml", TRACKINGID=tracking_id, TIMESTAMP=moment))
    whole_day = window(day, day + timedelta(days=1))

    code, out, _ = cli("--json", "unrecognised", *whole_day)
    assert code == 0
    document = json.loads(out)
    assert document["count"] == 3
    events = document["events"]
    assert [e["fields"]["TRACKINGID"] for e in events] == ids[::-1]
    newest = events[0]
    assert (newest["origin"], newest["code"]) == ("RCS_MT", "N701")
    assert newest["time"] == (day + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert newest["key"].startswith("OTHER#RCS_MT#")
    assert newest["raw_key"].startswith("raw/")

    _, out, _ = cli("--json", "unrecognised", *window(day, day + timedelta(hours=1)))
    assert [e["fields"]["TRACKINGID"] for e in json.loads(out)["events"]] == ids[:1]
    _, out, _ = cli("--json", "unrecognised", *whole_day, "--limit", "2")
    assert json.loads(out)["count"] == 2

    text = cli("unrecognised", *whole_day)[1]
    assert text.startswith("unrecognised postback events: 3 (newest first, at most 50)")
    assert text.index(ids[2]) < text.index(ids[0])
    assert "RCS_MT" in text
    assert "CHANNEL=rbm" in text
    assert all(len(line) <= 200 for line in text.splitlines())
