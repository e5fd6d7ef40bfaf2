"""The visibility timeout the sender's handler sets on each record it hands back, read from the SQS calls it
makes: every ChangeMessageVisibilityBatch entry is recorded through botocore's event hooks on the handler's
own client, as sent and as SQS (moto) answered it. The handler runs from template.yaml on a stack of this
module's own, against the provider simulator over real HTTP.

The backoff's full jitter is pinned at both ends of its range (the sender's random source always draws 0.0,
or always 1.0), so each record's timeout is exact: the policy's floor, or its ceiling for the record's receive
count (1, 3 and 10 here) up to its cap. The policies are the ones docs/send-requests.md documents:

| hand-back | backoff |
|---|---|
| E113 (the called record and the batch's unsent ones), a slot too far away (`paced`) | 1 s base, 300 s cap |
| an account problem (E104) | 30 s-15 min |
| a transient failure (E503; a refused connection, the unsent ones with it) | 2 s base, 300 s cap |
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

import boto3
import pytest

from local import stack as local_stack
from local.simulator import ProviderFault, ProviderSimulator
from mmsbridge.aws.state_table import StateTable, to_dynamo
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import KEY as PACE_KEY
from tests.integration.sender_stack import (
    Pinned,
    VisibilitySpy,
    api_key,
    clear_pace,
    delete_records,
    drain,
    own_stack,
    pace_tat,
    receive,
    sender_function,
)

# (base, cap, floor) in seconds, as docs/send-requests.md documents them.
THROTTLED = (1, 300, 1)
ACCOUNT = (30, 900, 30)
TRANSIENT = (2, 300, 1)
RECEIVES = (3, 1, 10)  # the batch's records' ApproximateReceiveCount, in order; the first is called
NOWHERE = "http://127.0.0.1:9/API/wxml/1.3/"  # the discard port: nothing listens, the connection is refused


def expected_timeout(policy: tuple[int, int, int], receive_count: int, draw: float) -> int:
    """Full jitter drawn at `draw` (0.0 or 1.0) of min(cap, base x 2^(receive count - 1)), whole seconds,
    not under the floor."""
    base, cap, floor = policy
    return max(floor, math.ceil(draw * min(cap, base * 2 ** (receive_count - 1))))


@pytest.fixture(scope="module")
def stack(moto_server, aws_stack):
    """The template under a stack name of this module's own. (`aws_stack` first: it resets moto.)"""
    own = own_stack(moto_server.endpoint_url, "visibility")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in local_stack.aws_environment(moto_server.endpoint_url, own.region).items():
            monkeypatch.setenv(name, value)  # clients a handler creates lazily reach moto too
        yield own


@pytest.fixture(scope="module")
def aws(moto_server, stack):
    session = boto3.session.Session()
    return {
        name: session.client(name, endpoint_url=moto_server.endpoint_url, region_name=stack.region)
        for name in ("sqs", "dynamodb")
    }


@pytest.fixture(scope="module")
def simulator(moto_server, stack):
    with ProviderSimulator(api_key=api_key(stack, moto_server.endpoint_url)) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def senders(moto_server, stack, simulator):
    """The handler calling the simulator, and one calling a port where nothing listens."""
    endpoint = moto_server.endpoint_url
    resolved, calling = sender_function(stack, endpoint, api_url=simulator.api_url, suffix="Visibility")
    _, refused = sender_function(stack, endpoint, api_url=NOWHERE, suffix="VisibilityRefused")
    return resolved, {"simulator": calling, "refused": refused}


@pytest.fixture
def table(stack, aws):
    """The state table, with no limiter item before or after the test."""
    name = stack.tables()["StateTable"].name
    clear_pace(aws["dynamodb"], name)
    yield StateTable(aws["dynamodb"], name)
    clear_pace(aws["dynamodb"], name)


def sms(label: str) -> dict[str, Any]:
    request_id = f"vis-{label}-{uuid.uuid4().hex[:10]}"
    return {
        "request_id": request_id,
        "action": "sendSMS",
        "to": "+1 646 555 0142",
        "from": "47215",
        "text": f"Northwind {request_id}",
    }


def hand_back(senders, aws, simulator, which: str, draw: float, *, fault: ProviderFault | None = None):
    """One batch of len(RECEIVES) records through the handler with the jitter pinned at `draw`: the
    response, the records, the requests and the visibility timeouts set (receipt handle -> seconds)."""
    resolved, functions = senders
    function = functions[which]
    queue = resolved.queues()["SendQueue"]
    sqs = aws["sqs"]
    drain(sqs, queue.url)
    requests = [sms(which) for _ in RECEIVES]
    event = receive(
        sqs, queue, resolved.region, [(json.dumps(r), n) for r, n in zip(requests, RECEIVES, strict=True)]
    )
    simulator.reset()
    if fault is not None:
        simulator.add_fault(fault)
    sender = function.module.SENDING.sender
    drawn_before, sender._rng = sender._rng, Pinned(draw)
    try:
        with VisibilitySpy(function.module.SENDING.queue._sqs) as spy:
            response = function.invoke(event)
    finally:
        sender._rng = drawn_before
        delete_records(sqs, queue.url, event)
    assert not spy.failed, spy.failed  # SQS took every timeout the handler set
    return response, event["Records"], requests, spy.timeouts()


def handed_back(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


CASES = {
    "e113": (ProviderFault("answer", code="E113", count=1), "simulator", THROTTLED, "throttled"),
    "account-e104": (ProviderFault("answer", code="E104", count=1), "simulator", ACCOUNT, "account"),
    "refused-connection": (None, "refused", TRANSIENT, "transient_retry"),
}


@pytest.mark.parametrize("draw", [0.0, 1.0], ids=["jitter-floor", "jitter-ceiling"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_stopped_batch_comes_back_after_its_policys_backoff(senders, aws, simulator, table, case, draw):
    """The called record and every unsent one behind it are handed back, each with the timeout its policy
    gives its receive count; nothing is acknowledged."""
    fault, which, policy, outcome = CASES[case]
    response, records, requests, timeouts = hand_back(senders, aws, simulator, which, draw, fault=fault)
    assert handed_back(response) == {r["messageId"] for r in records}
    assert timeouts == {
        record["receiptHandle"]: expected_timeout(policy, count, draw)
        for record, count in zip(records, RECEIVES, strict=True)
    }
    first = SendLedger(table).get(requests[0]["request_id"])
    assert first["status"] == "RETRY"
    assert first["attempt_log"][-1]["outcome"] == {"throttled": "throttled", "account": "account"}.get(
        outcome, "transient"
    )


@pytest.mark.parametrize("draw", [0.0, 1.0], ids=["jitter-floor", "jitter-ceiling"])
def test_a_transient_answer_backs_off_that_record_and_the_batch_goes_on(senders, aws, simulator, table, draw):
    response, records, requests, timeouts = hand_back(
        senders, aws, simulator, "simulator", draw, fault=ProviderFault("answer", code="E503", count=1)
    )
    first = records[0]
    assert handed_back(response) == {first["messageId"]}
    assert timeouts == {first["receiptHandle"]: expected_timeout(TRANSIENT, RECEIVES[0], draw)}
    ledger = SendLedger(table)
    assert [ledger.get(r["request_id"])["status"] for r in requests] == ["RETRY", "ACCEPTED", "ACCEPTED"]


@pytest.mark.parametrize("draw", [0.0, 1.0], ids=["jitter-floor", "jitter-ceiling"])
def test_a_slot_too_far_away_hands_the_batch_back_instead_of_waiting(senders, aws, simulator, table, draw):
    """The limiter's next slot is 30 s away (another invocation's penalty), more than the 10 s the sender
    waits: the batch is handed back with the throttle's backoff, nothing is reserved (the item is as it
    was), the provider is not called, and the request is RETRY with the attempt ending `paced`."""
    far = time.time() + 30
    aws["dynamodb"].put_item(
        TableName=table.name, Item=to_dynamo({**PACE_KEY, "tat": round(far * 1_000_000)})
    )
    response, records, requests, timeouts = hand_back(senders, aws, simulator, "simulator", draw)
    assert handed_back(response) == {r["messageId"] for r in records}
    assert timeouts == {
        record["receiptHandle"]: expected_timeout(THROTTLED, count, draw)
        for record, count in zip(records, RECEIVES, strict=True)
    }
    assert simulator.stats()["calls"] == 0
    assert pace_tat(aws["dynamodb"], table.name) == round(far * 1_000_000) / 1_000_000
    first = SendLedger(table).get(requests[0]["request_id"])
    assert (first["status"], int(first.get("calls", 0))) == ("RETRY", 0)
    assert first["attempt_log"][-1]["outcome"] == "paced"
    for request in requests[1:]:  # never claimed: the batch stopped before them
        assert SendLedger(table).get(request["request_id"]) is None


def test_the_expected_timeouts_are_the_documented_ranges():
    """The table above in numbers: E113 from 1 s up to 5 min, an account problem from 30 s up to 15 min, a
    transient failure from 1 s up to 5 min; each ceiling doubling with the receive count."""
    assert [expected_timeout(THROTTLED, n, 1.0) for n in (1, 3, 10)] == [1, 4, 300]
    assert [expected_timeout(ACCOUNT, n, d) for n, d in ((1, 0.0), (3, 1.0), (10, 1.0))] == [30, 120, 900]
    assert [expected_timeout(TRANSIENT, n, 1.0) for n in (1, 3, 10)] == [2, 8, 300]
