"""The send loop end to end on one local stack: a send request on the send queue, the sender calling the
provider simulator, the simulator's delivery reports through the ingest and the consumer onto the request's
outbound record; duplicates and an E113 storm never send a message twice nor lose one.

The stack runs in this process (`local.stack.start` on free ports), so that the tests hold the simulator
itself: its faults, its postback timing and its exact counters, fresh for each test."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local import stack as local_stack
from local.runtime import patched_environ
from local.simulator import ProviderFault, ProviderSimulator
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger import FINAL
from mmsbridge.sending.ledger_store import SendLedger
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STORM_REQUESTS = 30


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[local_stack.RunningStack]:
    environment = dict(os.environ)  # start() points this process's AWS clients at its moto
    running = local_stack.start(
        port=0,
        moto_port=0,
        simulator_port=0,
        endpoints_file=None,
        log_dir=tmp_path_factory.mktemp("send-loop-logs"),
    )
    try:
        yield running
    finally:
        running.stop()
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture
def simulator(running, aws) -> Iterator[ProviderSimulator]:
    """The stack's simulator with no calls, faults or queued postbacks; reports within a second, a refused
    postback retried after one (the account's default waits five minutes). Afterwards, its postbacks are
    delivered and consumed before the next test begins."""
    simulator = running.simulator
    assert simulator is not None
    simulator.reset()
    simulator.configure_postbacks(first_delay_s=0.1, outcome_delay_s=0.3, retry_interval_s=1.0, timeout_s=5.0)
    yield simulator
    simulator.wait_for_postbacks(timeout_s=10)
    eventually(lambda: depth(running, aws, "PostbackQueue") == 0, timeout=10)


@pytest.fixture(scope="module")
def aws(running) -> dict[str, Any]:
    with patched_environ(local_stack.aws_environment(running.endpoint_url, running.stack.region)):
        return {name: boto3.client(name) for name in ("sqs", "dynamodb")}


@pytest.fixture(scope="module")
def table(running, aws) -> StateTable:
    return StateTable(aws["dynamodb"], running.stack.tables()["StateTable"].name)


@pytest.fixture(scope="module")
def ledger(table) -> SendLedger:
    return SendLedger(table)


def sms(label: str) -> dict[str, Any]:
    """A send request whose request_id and text are this test's alone (the simulator's duplicate check keys
    on TO and content)."""
    unique = uuid.uuid4().hex[:12]
    return {
        "request_id": f"loop-{label}-{unique}",
        "action": "sendSMS",
        "to": "+1 (774) 319-9144",
        "from": "47215",
        "text": f"Northwind {label} {unique}",
    }


def enqueue(running, aws, *requests: dict[str, Any]) -> None:
    queue_url = running.endpoints()["send_queue_url"]
    for start in range(0, len(requests), 10):
        chunk = requests[start : start + 10]
        entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(chunk)]
        answer = aws["sqs"].send_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not answer.get("Failed"), answer


def depth(running, aws, queue: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=running.endpoints()["queues"][queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def final_ledgers(ledger: SendLedger, request_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    found = {request_id: ledger.get(request_id) for request_id in request_ids}
    if all(item is not None and item["status"] in FINAL for item in found.values()):
        return found  # type: ignore[return-value]
    return None


def statuses(ledger: SendLedger, request_ids: list[str]) -> dict[str, str | None]:
    return {rid: (item or {}).get("status") for rid in request_ids for item in [ledger.get(rid)]}


def provider_calls(simulator: ProviderSimulator, text: str) -> list[dict[str, Any]]:
    """The simulator's audit entries of API calls carrying `text` (every call, whatever its answer)."""
    return [
        entry
        for entry in simulator.log()
        if entry["type"] == "api" and entry.get("fields") and entry["fields"].get("TEXT") == text
    ]


def test_a_send_request_ends_accepted_and_its_delivery_reports_join_its_outbound_record(
    running, aws, simulator, table, ledger
):
    request = sms("delivered")
    enqueue(running, aws, request)

    ledgers = eventually(lambda: final_ledgers(ledger, [request["request_id"]]))
    assert ledgers, f"no final status within 20 s: {statuses(ledger, [request['request_id']])}"
    item = ledgers[request["request_id"]]
    assert item["status"] == "ACCEPTED", item
    tracking_id = item["tracking_id"]
    [call] = provider_calls(simulator, request["text"])
    assert call["accepted"]
    assert call["tracking_id"] == tracking_id

    def delivered() -> dict[str, Any] | None:
        message = table.message(tracking_id)
        return message if message and message["state"] == "DELIVERED" else None

    message = eventually(delivered)
    assert message, f"no DELIVERED state within 20 s: {table.message(tracking_id)}"
    assert message["request"]["request_id"] == request["request_id"]  # the outbound record the sender wrote
    assert message["request"]["to"] == "17743199144"
    assert [(e["code"], e["state"]) for e in message["history"]] == [("N201", "SENT"), ("N202", "DELIVERED")]
    assert message["conflict"] is False


def test_a_duplicate_request_never_reaches_the_provider_twice(running, aws, simulator, ledger):
    request = sms("duplicate")
    enqueue(running, aws, request)
    first = eventually(lambda: final_ledgers(ledger, [request["request_id"]]))
    assert first, f"no final status within 20 s: {statuses(ledger, [request['request_id']])}"
    assert first[request["request_id"]]["status"] == "ACCEPTED"

    # The producer sends it again (twice): each copy is a delivery of a request already closed.
    enqueue(running, aws, request, request)
    assert eventually(lambda: depth(running, aws, "SendQueue") == 0), "the copies stayed on the send queue"

    calls = provider_calls(simulator, request["text"])
    assert len(calls) == 1, calls
    stats = simulator.stats()
    assert stats["accepted_sends"] == 1
    assert stats["duplicates"] == 0
    item = ledger.get(request["request_id"])
    assert item is not None
    assert item["status"] == "ACCEPTED"
    assert (int(item["claims"]), int(item["calls"])) == (1, 1)
    assert item["tracking_id"] == first[request["request_id"]]["tracking_id"]
    assert depth(running, aws, "SendDLQ") == 0


def test_an_e113_storm_during_a_burst_loses_no_request_and_sends_none_twice(running, aws, simulator, ledger):
    requests = [sms(f"storm{n}") for n in range(STORM_REQUESTS)]
    request_ids = [request["request_id"] for request in requests]
    simulator.add_fault(ProviderFault("answer", code="E113", duration_s=2))
    enqueue(running, aws, *requests)

    ledgers = eventually(lambda: final_ledgers(ledger, request_ids), timeout=90, interval=0.5)
    assert ledgers, f"not all final within 90 s: {statuses(ledger, request_ids)}"
    assert {rid: item["status"] for rid, item in ledgers.items()} == dict.fromkeys(request_ids, "ACCEPTED")

    stats = simulator.stats()
    assert stats["e113"] > 0, "the storm never answered a call: the test proved nothing"
    assert sum(int(item.get("throttled") or 0) for item in ledgers.values()) > 0
    assert stats["accepted_sends"] == STORM_REQUESTS
    assert stats["duplicates"] == 0, stats["duplicate_sends"]
    for request in requests:
        accepted = [call for call in provider_calls(simulator, request["text"]) if call["accepted"]]
        assert len(accepted) == 1, (request["request_id"], accepted)
    tracking_ids = {item["tracking_id"] for item in ledgers.values()}
    assert len(tracking_ids) == STORM_REQUESTS
    assert eventually(lambda: depth(running, aws, "SendQueue") == 0), "requests stayed on the send queue"
    assert depth(running, aws, "SendDLQ") == 0
