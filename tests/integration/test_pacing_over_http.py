"""The shared limiter doing its job over real HTTP: the real sender handler behind the template's SQS mapping,
several invocations at once, against the provider simulator on loopback, read from the simulator's call log
and from the limiter's item in DynamoDB.

- At a low agreed rate (5 calls a second, the simulator limited to the same), 40 requests through the
  mapping with the template's MaximumConcurrency: no one-second window of the simulator's log holds more
  calls than the limiter's own constants allow (its spacing at HEADROOM x rate, plus a slot used up to its
  late tolerance), and E113 stays at (nearly) zero. With the limiter's acquire skipped, the same run puts
  about a dozen calls in the first second and is answered E113 over and over.
- A provider's Retry-After (a proxy's 429, an E113 answer carrying one) travels over HTTP into the limiter's
  penalty: the item's next slot is pushed by exactly the Retry-After (at most MAX_PENALTY_S), and the batch
  comes back after it; without one, by E113_PAUSE_INTERVALS call intervals.

Every sender test elsewhere runs at 1000 calls a second, where the limiter never holds a call back.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import boto3
import pytest

from local import stack as local_stack
from local.simulator import ProviderFault, ProviderSimulator
from local.sqs_mapping import mappings_from_stack
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import _LATE_FLOOR_S, HEADROOM, LATE_FRACTION, MAX_PENALTY_S
from mmsbridge.sending.sender import E113_PAUSE_INTERVALS
from tests.integration.sender_stack import (
    SENDER,
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
from tests.waiting import eventually

RATE = 5  # calls a second: the deployment's SendThroughputPerSecond and the simulator's own limit
REQUESTS = 40  # about 8 s of calls at that rate
LOG_RESOLUTION_S = 0.001  # the simulator's log times are whole milliseconds
# E113 answers allowed in the paced run: one request in ten. At this rate a slot may be used up to 52 ms late
# (a quarter interval), more than the 31 ms the 97% spacing leaves, so a late call can still meet the
# provider's window: measured 0-2 per run, idle or under the full suite. Without the limiter: 13 or more.
E113_ALLOWED = REQUESTS // 10


def window_bound(rate: float) -> int:
    """The most calls the limiter lets into any one-second window of the provider's log, from its constants.

    Slots are at least one interval (1 / (HEADROOM x rate)) apart; a call leaves no earlier than its slot and
    at most the late tolerance (max(LATE_FRACTION x interval, _LATE_FLOOR_S)) after it. Calls logged less than
    1 s (plus the log's resolution, at each end) apart therefore had slots less than 1 s + 2 x resolution +
    tolerance apart, and that span holds at most ceil(span / interval) slots."""
    interval = 1.0 / (rate * HEADROOM)
    tolerance = max(LATE_FRACTION * interval, _LATE_FLOOR_S)
    return math.ceil((1.0 + 2 * LOG_RESOLUTION_S + tolerance) / interval)


def busiest_second(moments: list[float]) -> int:
    """The most calls in any one-second window (calls less than 1 s + the log's resolution apart)."""
    moments = sorted(moments)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= 1.0 + LOG_RESOLUTION_S:
            first += 1
        most = max(most, last - first + 1)
    return most


def api_calls(simulator: ProviderSimulator) -> list[dict[str, Any]]:
    return [entry for entry in simulator.log() if entry["type"] == "api"]


def moment(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"]).timestamp()


def sms(label: str, number: int) -> dict[str, Any]:
    request_id = f"{label}-{uuid.uuid4().hex[:8]}-{number:03d}"
    return {
        "request_id": request_id,
        "action": "sendSMS",
        "to": f"+1 646 555 {number:04d}",
        "from": "47215",
        "text": f"Northwind {request_id}",
    }


@pytest.fixture(scope="module")
def stack(moto_server, aws_stack):
    """The template under a stack name of this module's own: its limiter item and queues are this module's.
    (`aws_stack` first: it resets moto.) AWS clients a handler creates lazily reach moto too."""
    own = own_stack(moto_server.endpoint_url, "pacing")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in local_stack.aws_environment(moto_server.endpoint_url, own.region).items():
            monkeypatch.setenv(name, value)
        yield own


@pytest.fixture(scope="module")
def aws(moto_server, stack):
    session = boto3.session.Session()
    return {
        name: session.client(name, endpoint_url=moto_server.endpoint_url, region_name=stack.region)
        for name in ("sqs", "dynamodb")
    }


@pytest.fixture
def table_name(stack, aws):
    """The state table, its limiter item removed before and after the test."""
    name = stack.tables()["StateTable"].name
    clear_pace(aws["dynamodb"], name)
    yield name
    clear_pace(aws["dynamodb"], name)


class Overlap:
    """A function's invoke, counting how many invocations ran at once."""

    def __init__(self, function: Any) -> None:
        self._function = function
        self._lock = threading.Lock()
        self._running = 0
        self.most = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            self._running += 1
            self.most = max(self.most, self._running)
        try:
            return self._function.invoke(event)
        finally:
            with self._lock:
                self._running -= 1


# ------------------------------------------------------------------------- calls at the agreed rate


def test_concurrent_invocations_keep_every_one_second_window_within_the_rate(
    moto_server, stack, aws, table_name
):
    endpoint = moto_server.endpoint_url
    bound = window_bound(RATE)
    assert bound <= RATE + 1  # what the constants promise at this rate (a late slot may add one call)
    with ProviderSimulator(api_key=api_key(stack, endpoint), throughput_per_s=RATE) as simulator:
        resolved, function = sender_function(
            stack,
            endpoint,
            api_url=simulator.api_url,
            suffix="Paced",
            overrides={"SendThroughputPerSecond": str(RATE)},
            max_containers=None,  # one container per poller, as the local stack runs it
        )
        overlap = Overlap(function)
        (mapping,) = [
            m
            for m in mappings_from_stack(
                resolved,
                {SENDER: overlap},
                sqs=lambda: boto3.session.Session().client(
                    "sqs", endpoint_url=endpoint, region_name=resolved.region
                ),
            )
            if m.name.startswith(f"{SENDER}.")
        ]
        assert mapping.pollers == function.max_containers >= 2  # the template's MaximumConcurrency
        queue_url = resolved.queues()["SendQueue"].url
        drain(aws["sqs"], queue_url)
        requests = [sms("paced", n) for n in range(REQUESTS)]
        for start in range(0, REQUESTS, 10):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(r)}
                for i, r in enumerate(requests[start : start + 10])
            ]
            assert not aws["sqs"].send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
        mapping.start()
        try:
            sent = eventually(
                lambda: simulator.stats()["accepted_sends"] >= REQUESTS, timeout=60, interval=0.5
            )
            idle = mapping.wait_idle(timeout=15)
        finally:
            mapping.stop()
        calls = api_calls(simulator)
        stats = simulator.stats()
        limiters = [module.SENDING.sender.limiter for module in function.modules]

    summary = (
        f"calls={len(calls)} accepted={stats['accepted_sends']} e113={stats['e113']} "
        f"duplicates={stats['duplicates']} busiest second={busiest_second([moment(c) for c in calls])} "
        f"(bound {bound}) invocations at once={overlap.most} "
        f"reservations per container={[limiter.reservations for limiter in limiters]} "
        f"slots missed={sum(limiter.missed for limiter in limiters)}"
    )
    print(summary)
    assert sent, summary
    assert idle, summary
    # Every call, whatever its answer, is in the log: none of them crowded a one-second window, and the
    # provider, limited to the same rate, refused (nearly) none.
    assert busiest_second([moment(entry) for entry in calls]) <= bound, summary
    assert stats["e113"] <= E113_ALLOWED, summary
    # Several invocations were sending at the same time, each taking slots from the one shared item.
    assert overlap.most >= 2, summary
    assert sum(1 for limiter in limiters if limiter.reservations) >= 2, summary
    # Everything sent, once.
    assert (stats["accepted_sends"], stats["duplicates"]) == (REQUESTS, 0), summary
    table = StateTable(aws["dynamodb"], table_name)
    statuses = {(SendLedger(table).get(r["request_id"]) or {}).get("status") for r in requests}
    assert statuses == {"ACCEPTED"}, summary


def test_the_window_bound_follows_the_constants():
    """The bound the test above holds the log to: at 5/s one more than the rate (a quarter interval of late
    tolerance, 52 ms, is more than the 31 ms the 97% spacing leaves); at 20/s the rate itself."""
    assert window_bound(5) == 6
    assert window_bound(20) == 20


# --------------------------------------------------------------------- a Retry-After into the penalty

THROTTLES = {
    "proxy-429-retry-after-7": (
        ProviderFault("http_error", status=429, retry_after_s=7, count=1),
        7,
        "http_429",
    ),
    "e113-retry-after-5": (ProviderFault("answer", code="E113", retry_after_s=5, count=1), 5, "E113"),
    "proxy-429-retry-after-120": (
        ProviderFault("http_error", status=429, retry_after_s=120, count=1),
        120,
        "http_429",
    ),
    "e113-no-retry-after": (ProviderFault("answer", code="E113", count=1), None, "E113"),
}


@pytest.mark.parametrize("case", list(THROTTLES))
def test_a_retry_after_over_http_pushes_the_limiters_next_slot(moto_server, stack, aws, table_name, case):
    """The simulator answers the first call with the throttle; its Retry-After header reaches the handler over
    HTTP and becomes the limiter's penalty for every invocation (the item's TAT is now + Retry-After, at most
    MAX_PENALTY_S) and the visibility of the batch's records (exactly the Retry-After). Without a
    Retry-After the penalty is E113_PAUSE_INTERVALS call intervals and the records back off (1 s at the
    first receive)."""
    fault, retry_after, code = THROTTLES[case]
    endpoint = moto_server.endpoint_url
    sqs, dynamodb = aws["sqs"], aws["dynamodb"]
    with ProviderSimulator(api_key=api_key(stack, endpoint)) as simulator:
        resolved, function = sender_function(
            stack, endpoint, api_url=simulator.api_url, suffix=f"RetryAfter{case.replace('-', '')}"
        )
        rate = float(function.environment["THROUGHPUT_PER_SECOND"])
        queue = resolved.queues()["SendQueue"]
        drain(sqs, queue.url)
        event = receive(sqs, queue, resolved.region, [(json.dumps(sms("throttled", n)), 1) for n in range(3)])
        simulator.add_fault(fault)
        try:
            with VisibilitySpy(function.module.SENDING.queue._sqs) as spy:
                before = time.time()
                response = function.invoke(event)
                after = time.time()
        finally:
            delete_records(sqs, queue.url, event)
        (call,) = api_calls(simulator)

    assert call["answer"] == code
    handles = {r["messageId"]: r["receiptHandle"] for r in event["Records"]}
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == set(handles)
    penalty = (
        E113_PAUSE_INTERVALS / (rate * HEADROOM) if retry_after is None else min(retry_after, MAX_PENALTY_S)
    )
    tat = pace_tat(dynamodb, table_name)
    assert tat is not None
    # The penalty was set during the invocation, `penalty` seconds ahead of the moment it was set.
    assert before + penalty - 1e-3 <= tat <= after + penalty + 1e-3, (before, tat, after, penalty)
    assert not spy.failed
    expected = 1 if retry_after is None else retry_after
    assert spy.timeouts() == dict.fromkeys(handles.values(), expected)
