"""The sender against the provider simulator's own "proxy" answers and failure reports, over real HTTP.

A proxy or load balancer in front of the API answers 429 with a Retry-After and 408, both without XML
(docs/provider-protocol.md §4.3); the simulator produces them when told through its control API, as a test
or an operator of the local stack would. A 429 is THROTTLE: the request is handed back for the Retry-After,
every invocation's limiter holds its calls back as long, and nothing looks like an account problem. A 408 is
TRANSIENT with the outcome unknown: the proxy may have passed the request on.

The last test runs the whole loop on a local stack of its own (as tests/e2e/test_send_loop.py does): a
delivery report N102 whose STATUS is a failure text (docs/provider-protocol.md §3.2) travels from the
simulator through the ingest and the consumer and leaves the message UNDELIVERED.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from local.simulator import ProviderSimulator
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.results import Disposition
from mmsbridge.sending.sender import Delivery, Sender
from tests.e2e import test_send_loop as send_loop
from tests.e2e.test_send_loop import enqueue, final_ledgers, statuses
from tests.integration import test_sender as sender_tests
from tests.integration.test_sender import calls, drain, message, sms
from tests.waiting import eventually

# The fixtures shared with those files, bound here (pytest finds a module's fixtures by attribute name).
simulator = sender_tests.simulator  # a fresh simulator per test, with template 48213
harness = sender_tests.harness  # the sender on the session's moto, calling `simulator`
running = send_loop.running  # a local stack of this module's own, with its simulator
aws = send_loop.aws
stack_simulator = send_loop.simulator  # that stack's simulator, reset, its postbacks consumed afterwards
stack_table = send_loop.table  # that stack's state table


def add_fault(simulator: ProviderSimulator, fault: dict) -> None:
    """Switch a fault on as the local stack's user would: through the control API."""
    response = requests.post(f"{simulator.base_url}/_sim/faults", json=fault, timeout=5)
    assert response.status_code == 200, response.text


def send(sender: Sender, *messages):
    """One batch as the handler hands it over, kept whole: `stopped` says whether the account alarm fires."""
    report = sender.send_batch([m.record() for m in messages], deadline=time.time() + 30)
    for m, result in zip(messages, report.results, strict=True):
        if result.disposition is Disposition.RETRY:
            m.receive_count += 1  # SQS delivers it again, once more received
    return report


def test_a_proxys_429_with_retry_after_is_throttle_and_holds_every_call_back(harness, table, simulator):
    add_fault(simulator, {"kind": "http_error", "status": 429, "retry_after_s": 7, "count": 1})
    messages = [message(sms()) for _ in range(3)]

    report = send(harness.sender(), *messages)

    assert [(r.outcome, r.code) for r in report.results] == [
        ("throttled", "http_429"),
        ("deferred", None),
        ("deferred", None),
    ]
    assert report.stopped == "throttled"  # not "account": no ProviderAuthError alarm
    assert harness.forgotten == 0  # the API key is kept
    # The throttled record and those it stopped come back when the proxy said calls may resume.
    assert {(r.disposition, r.visibility_s) for r in report.results} == {(Disposition.RETRY, 7)}
    ledger = SendLedger(table).get(report.results[0].request_id)
    assert (ledger["status"], int(ledger["throttled"])) == ("RETRY", 1)
    assert "account_errors" not in ledger
    (refused,) = simulator.log()
    assert (refused["answer"], refused["processed"]) == ("http_429", False)  # the API never saw it

    # The limiter's penalty is the Retry-After: every invocation waits those 7 seconds, not more.
    harness.clock_offset = 6.0
    assert harness.sender().limiter.acquire(max_wait_s=0.5) is None
    harness.clock_offset = 7.5
    assert harness.sender().limiter.acquire(max_wait_s=0.5) is not None
    settled = drain(harness.sender(), messages)
    assert {r.outcome for r in settled.values()} == {"accepted"}
    stats = simulator.stats()
    assert (calls(simulator), stats["accepted_sends"], stats["duplicates"]) == (4, 3, 0)


@pytest.mark.parametrize("passed_on", [False, True], ids=["refused-by-the-proxy", "read-by-the-api"])
def test_a_proxys_408_is_transient_with_the_outcome_unknown(harness, table, simulator, passed_on):
    add_fault(simulator, {"kind": "http_error", "status": 408, "count": 1, "accept": passed_on})
    request = sms()

    report = send(harness.sender(), message(request), message(sms()))

    assert [(r.outcome, r.code) for r in report.results] == [
        ("outcome_unknown", "http_408"),
        ("deferred", None),
    ]
    assert report.stopped != "account"
    assert harness.forgotten == 0
    assert report.results[0].disposition is Disposition.DONE  # at most once: never sent again
    ledger = SendLedger(table).get(request["request_id"])
    assert (ledger["status"], ledger["error_class"], int(ledger["http_status"])) == (
        "OUTCOME_UNKNOWN",
        "TRANSIENT",
        408,
    )
    assert "account_errors" not in ledger
    # Whether the provider took it is exactly what the sender cannot know: one call either way.
    assert calls(simulator) == 1
    assert simulator.stats()["accepted_sends"] == int(passed_on)


def test_at_least_once_sends_again_after_a_proxys_408(harness, simulator):
    add_fault(simulator, {"kind": "http_error", "status": 408, "count": 1})

    settled = drain(harness.sender(delivery=Delivery.AT_LEAST_ONCE), [message(sms())])

    assert [r.outcome for r in settled.values()] == ["accepted"]
    assert (calls(simulator), simulator.stats()["accepted_sends"]) == (2, 1)


# -- end to end: simulator → ingest → consumer → state table -------------------------------------------------
@pytest.mark.e2e
@pytest.mark.slow
def test_an_n102_with_a_failure_status_ends_undelivered_in_the_state_table(
    running, aws, stack_simulator, stack_table
):
    unique = uuid.uuid4().hex[:12]
    request = {
        "request_id": f"expired-{unique}",
        "action": "sendSavedMMS",
        "to": "+1 (774) 319-9144",
        "from": "47215",
        "mms_id": "48213",  # a template the local stack's simulator has
        "fallback_sms_text": "Northwind: see the offer",
        "custom_text": {"1": f"Hi Ana {unique}"},  # the simulator's duplicate check keys on content
    }
    stack_simulator.configure_postbacks(mms_outcome="N102", status_text="Message Sent/Expired")
    try:
        enqueue(running, aws, request)
        ledger = SendLedger(stack_table)
        ledgers = eventually(lambda: final_ledgers(ledger, [request["request_id"]]))
        assert ledgers, f"no final status within 20 s: {statuses(ledger, [request['request_id']])}"
        item = ledgers[request["request_id"]]
        assert item["status"] == "ACCEPTED", item

        def undelivered() -> dict | None:
            found = stack_table.message(item["tracking_id"])
            return found if found and found["state"] == "UNDELIVERED" else None

        found = eventually(undelivered)
    finally:
        stack_simulator.configure_postbacks(status_text=None)
    assert found, f"no UNDELIVERED state within 20 s: {stack_table.message(item['tracking_id'])}"
    assert [(e["code"], e["state"]) for e in found["history"]] == [("N101", "SENT"), ("N102", "UNDELIVERED")]
    assert found["failure_reason"] == "Expired"
    assert found["request"]["request_id"] == request["request_id"]
    assert found["conflict"] is False
