"""The send path's resilience matrix: for each fault, 100 send requests (a seeded mix of sendSMS, sendMMS and
sendSavedMMS) go on the send queue, the real sender handler takes them through the template's SQS mapping
against the provider simulator, and the audit accounts for every one: one ledger in one final status, or
dead-lettered with its reason where that is the documented disposition; none lost; the send queue drained;
no request accepted by the provider twice, and every SENT (ACCEPTED) request with exactly one outbound
record, the one of the send the provider accepted.

Provider faults: the provider answering 5xx, timing out, dropping the answer or answering broken XML on a
share of calls (outcome unknown: at most once these are OUTCOME_UNKNOWN, never resent); an E113 storm (all
sent, exactly once, none dead-lettered). AWS faults: DynamoDB throttling and failing the sender's writes. And
the sender dying after the provider accepted a request, before it recorded the outcome or the outbound record.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid

import pytest

from local import aws_faults
from local import stack as local_stack
from local.simulator import ProviderFault, e113_storm
from local.sqs_mapping import RECEIVE_WAIT_S
from mmsbridge.sending.ledger_store import SendLedger
from tests.resilience.send_audit import (
    Audit,
    FailedWrites,
    ProviderReply,
    SendRig,
    audit,
    request_id_in,
    send_requests,
    send_rig,
)

pytestmark = pytest.mark.slow

REQUESTS = 100
FAST = {"SendThroughputPerSecond": "1000"}  # the limiter out of the way: throughput is not a fault here


@pytest.fixture(scope="module")
def send_path(moto_server, aws_stack):
    """The sender behind the template's send queue mapping, for this module (its containers stay warm);
    each test starts it afresh with `send_path.scenario(seed)`. The stack is the template's under a name of
    its own: its queues, table and secret are this module's alone. (`aws_stack` first: it resets moto.)"""
    endpoint = moto_server.endpoint_url
    own = local_stack.load_local_stack(endpoint, stack_name=f"send-faults-{uuid.uuid4().hex[:8]}")
    local_stack.provision(own, endpoint)
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        send_rig(endpoint, own, monkeypatch, overrides=FAST) as rig,
    ):
        yield rig


def run(rig: SendRig, label: str, *, seed: int, timeout: float = 40.0) -> Audit:
    """REQUESTS requests on the send queue; the audit once the queue has settled."""
    requests = send_requests(label, REQUESTS, seed=seed)
    rig.enqueue(requests)
    settled = rig.settle(timeout)
    result = audit(rig, requests)
    print(f"{label}: {result}")
    assert settled, f"the send queue did not settle within {timeout:.0f} s: {result}"
    return result


def assert_accounted(result: Audit, *, statuses: set[str], dead_letter: str | None = None) -> None:
    """Every request in one of `statuses`, or dead-lettered with a reason containing `dead_letter` (None: the
    DLQ must stay empty); none lost, nothing left on the queue, nothing sent twice, no record out of place."""
    assert result.send_queue_left == 0, result
    assert not result.lost, f"{result}; lost: {[(r, result.status[r]) for r in result.lost[:5]]}"
    assert result.duplicated == 0, f"{result}; {result.provider.get('duplicate_sends')}"
    assert not result.problems, result
    if dead_letter is None:
        assert not result.dead_lettered, f"{result}; {result.dead_lettered}"
    for request_id, attributes in result.dead_lettered.items():
        assert dead_letter in attributes.get("mmsbridge-reason", ""), f"{result}; {request_id}: {attributes}"
    unexpected = {
        request_id: result.status[request_id]
        for request_id in result.request_ids
        if request_id not in result.dead_lettered and result.status[request_id] not in statuses
    }
    assert not unexpected, f"{result}; unexpected statuses: {unexpected}"


# ------------------------------------------------------------ 1-3: the provider fails a share of calls

# Per case: provider faults, 3% of calls each, one the provider does not process and one it processes
# first (the send is accepted, only the answer is lost); and, by the simulator's label of the fault, how the
# ledger names the failure and whether the provider sent the message. With this seed, the 100 calls of a run
# draw 3 of the first and 4 of the second.
SEED_1_3 = 21
OUTCOME_UNKNOWN_PROVIDER_FAULTS = {
    "http-5xx": (
        [
            ProviderFault("http_error", status=502, rate=0.03),
            ProviderFault("http_error", status=503, rate=0.03, accept=True),
        ],
        {"http_error:502": ("http_5xx", False), "http_error:503": ("http_5xx", True)},
    ),
    "timeout": (
        # The delayed answer comes twice the client's read timeout late: always after it gave up.
        [ProviderFault("delay", delay_s=6.0, rate=0.03), ProviderFault("drop", rate=0.03, accept=True)],
        {"delay:6s": ("read_timeout", True), "drop": ("connection_lost", True)},
    ),
    "malformed-xml": (
        [
            ProviderFault("malformed", rate=0.03),
            ProviderFault("malformed", body="<RESPONSE><STATUS>Succ", rate=0.03, accept=True),
        ],
        {"malformed": ("not_xml", None)},
    ),
}


@pytest.mark.parametrize("name", list(OUTCOME_UNKNOWN_PROVIDER_FAULTS))
def test_at_most_once_a_call_with_an_unknown_outcome_is_never_resent(send_path, name):
    """HTTP 5xx, a read timeout (the answer 6 s late, the client waits 3 s), a dropped connection, broken
    XML: the provider may have sent the message, so the request ends OUTCOME_UNKNOWN and is never called
    again, whether the provider did process it (accepted once) or not; every other request is SENT."""
    faults, expected = OUTCOME_UNKNOWN_PROVIDER_FAULTS[name]
    rig = send_path.scenario(seed=SEED_1_3)
    for fault in faults:
        rig.simulator.add_fault(fault)
    result = run(rig, name.replace("-", "")[:12], seed=SEED_1_3)

    assert_accounted(result, statuses={"ACCEPTED", "OUTCOME_UNKNOWN"})
    fired = {label for labels in result.faults.values() for label in labels}
    assert fired == set(expected), f"{result}; faults that answered: {fired}"
    assert any(result.accepted[r] for r in result.faults), f"{result}; no faulted call was processed"
    # At most once: one call per request, whatever it was answered.
    resent = {r: n for r, n in result.calls.items() if n != 1}
    assert not resent, f"{result}; calls per request: {resent}"
    assert len(result.calls) == REQUESTS, f"{result}; requests never called: {REQUESTS - len(result.calls)}"
    for request_id in result.request_ids:
        ledger = result.ledgers[request_id]
        if request_id in result.faults:
            (label,) = result.faults[request_id]
            transport_error, processed = expected[label]
            assert ledger["status"] == "OUTCOME_UNKNOWN", f"{result}; {request_id}: {ledger['status']}"
            assert ledger.get("transport_error") == transport_error, f"{result}; {request_id}: {ledger}"
            if processed is not None:
                assert result.accepted[request_id] == int(processed), f"{result}; {request_id}"
        else:
            assert ledger["status"] == "ACCEPTED", f"{result}; {request_id}: {ledger}"
    assert result.count("OUTCOME_UNKNOWN") == result.provider["faults"], result


# ------------------------------------------------------------------------------------ 4: an E113 storm


def test_an_e113_storm_ends_with_every_request_sent_exactly_once(send_path):
    """Every call answered E113 for 1.5 s, then one in ten for 1.5 s more: each refused request is handed back
    with a jittered backoff (the batch's unsent ones with it) and comes again until the provider takes it.
    All SENT, each exactly once, none dead-lettered, within the bounded wait."""
    rig = send_path.scenario(seed=113)
    rig.simulator.add_fault(e113_storm(1.5))
    rig.simulator.add_fault(ProviderFault("answer", code="E113", rate=0.1, duration_s=3.0))
    result = run(rig, "e113", seed=113, timeout=45)

    assert_accounted(result, statuses={"ACCEPTED"})
    assert result.provider["e113"] > 0, f"{result}; no E113 was answered: the test proved nothing"
    for request_id in result.request_ids:
        ledger = result.ledgers[request_id]
        # Every call but the accepted one was an E113, and the ledger counted each.
        assert result.calls[request_id] == result.faulted[request_id] + 1, f"{result}; {request_id}"
        assert int(ledger.get("throttled", 0)) == result.faulted[request_id], f"{result}; {ledger}"


# ------------------------------------------------------------------ 5: DynamoDB fails the sender's writes

DYNAMODB_AWS_FAULTS = [
    {"rate": 0.02, "status": 400, "code": "ProvisionedThroughputExceededException"},
    {"rate": 0.25, "status": 500, "code": "InternalServerError"},
]


def test_dynamodb_throttling_and_errors_on_the_senders_writes_lose_nothing_and_send_nothing_twice(send_path):
    """A share of PutItem (ledger claims and outcomes), UpdateItem (the limiter) and BatchWriteItem (outbound
    records) is throttled or fails. botocore retries them (standard mode, 3 attempts); what still fails fails
    the record: it is handed back, or at most once ends OUTCOME_UNKNOWN when the failed write came after the
    provider call (found once the attempt's lease is over), or goes to the DLQ with the error as its reason at
    its 5th error. Never called twice, never lost.

    The unknown ones are bounded by the faults themselves: each write that failed for good is recorded with
    its parameters, and a request may end OUTCOME_UNKNOWN only if a ledger write of its after the claim
    failed (the outcome after the call, or the hand-back of an attempt that stopped before it: either leaves
    the ledger SENDING until its lease runs out). A request whose claim failed was never claimed: it is
    handed back and sent later, never unknown. And every request left SENDING is found: it ends unknown (or,
    at its fifth error, in the DLQ)."""
    rig = send_path.scenario(seed=5)
    seeds = iter(range(5000, 6000))
    injected: list[aws_faults.AwsFaultStats] = []
    failed = FailedWrites()
    with contextlib.ExitStack() as faults:

        def inject(client) -> None:
            faults.enter_context(failed.watching(client))
            for operation in ("PutItem", "UpdateItem", "BatchWriteItem"):
                for fault in DYNAMODB_AWS_FAULTS:
                    stats = aws_faults.inject(client, operation, seed=next(seeds), **fault)
                    injected.append(faults.enter_context(stats))

        rig.on_dynamodb_clients(inject)
        result = run(rig, "ddb", seed=5, timeout=45)
    print(failed)

    assert_accounted(result, statuses={"ACCEPTED", "OUTCOME_UNKNOWN"}, dead_letter="last error")
    assert sum(s.injected for s in injected) > 0, f"{result}; no fault was injected"
    # About one write in fifty still fails after botocore's retries: the sender met some of them.
    assert result.mapping["failures_reported"] > 0, f"{result}; no error reached the sender"
    called_twice = {r: n for r, n in result.calls.items() if n > 1}
    assert not called_twice, f"{result}; {called_twice}"
    unknown = set(result.with_status("OUTCOME_UNKNOWN"))
    after_claim = failed.after_claim()
    assert unknown <= after_claim, (
        f"{result}; {failed}; OUTCOME_UNKNOWN with no failed ledger write after its claim: "
        f"{sorted(unknown - after_claim)[:5]} (failed claims only: "
        f"{sorted((unknown - after_claim) & set(failed.claims))[:5]})"
    )
    left_sending = failed.after_claim(injected_only=True)
    assert left_sending - unknown <= set(result.dead_lettered), (
        f"{result}; {failed}; left SENDING by a failed write, yet not unknown: "
        f"{[(r, result.status[r], failed.endings[r]) for r in sorted(left_sending - unknown)[:5]]}"
    )
    for request_id in unknown:
        outcomes = [entry.get("outcome") for entry in result.ledgers[request_id].get("attempt_log", [])]
        assert outcomes[-1] == "orphaned", f"{result}; {request_id}: {outcomes}"


# ------------------------------------------------------------ 6: the sender dies in the middle of a batch


@pytest.fixture
def send_queue_visibility(aws_stack):
    """Sets the send queue's VisibilityTimeout for this test; the template's value afterwards."""
    changed: list[SendRig] = []

    def change(rig: SendRig, seconds: int) -> None:
        rig.sqs.set_queue_attributes(QueueUrl=rig.queue_url, Attributes={"VisibilityTimeout": str(seconds)})
        changed.append(rig)
        # A receive takes the queue's visibility timeout when it starts: let the pollers' current long polls
        # end before anything is enqueued.
        time.sleep(RECEIVE_WAIT_S + 0.2)

    yield change
    template_value = aws_stack.queues()["SendQueue"].attributes["VisibilityTimeout"]
    for rig in changed:
        rig.sqs.set_queue_attributes(QueueUrl=rig.queue_url, Attributes={"VisibilityTimeout": template_value})


class RuntimeKilled(BaseException):
    """The runtime ending an invocation (its timeout, a crash): no handler code runs after it."""


def test_a_sender_that_dies_after_the_provider_accepted_never_sends_again(
    send_path, monkeypatch, send_queue_visibility
):
    """24 requests die once each, right after the provider accepted them. 10 before the ledger records it,
    with an error that fails their record (the batch goes on), and 2 with their whole invocation killed (the
    runtime's timeout or a crash: the batch comes back after the queue's visibility timeout, shortened from
    the template's 190 s); 10 + 2 likewise after the ledger says ACCEPTED, before the outbound record. At most
    once, the first delivery after the dead attempt's lease records OUTCOME_UNKNOWN ("an earlier attempt
    stopped after it may have called the provider") and does not call again; one that finds ACCEPTED has the
    proof it was SENT and writes the outbound record. The rest of a killed batch comes again too: those done
    already are duplicates of themselves."""
    rig = send_path.scenario(seed=6)
    # Records fail early (among the first 50 enqueued, taken first), invocations die later, 12 apart (one to
    # a batch), so that the leases run out while the rest is being sent.
    errors = [f"{n:03d}" for n in random.Random(6).sample(range(50), 20)]
    killed = ["054", "078", "066", "090"]
    deaths = {
        "after_call": dict.fromkeys(errors[:10], RuntimeError) | dict.fromkeys(killed[:2], RuntimeKilled),
        "before_outbound": dict.fromkeys(errors[10:], RuntimeError)
        | dict.fromkeys(killed[2:], RuntimeKilled),
    }
    died: dict[str, str] = {}

    def die(where: str, request_id: str | None) -> None:
        death = deaths[where].get((request_id or "")[-3:])
        if request_id and death and request_id not in died:
            died[request_id] = where
            raise death(f"died {where.replace('_', ' ')} of {request_id}")

    def die_after_call(xml: bytes, reply: ProviderReply) -> None:
        if reply.result.ok:
            die("after_call", request_id_in(xml))

    write_outbound = SendLedger.write_outbound

    def die_before_outbound(self, ledger: dict, *, retention_days: int) -> None:
        die("before_outbound", ledger["request_id"])
        write_outbound(self, ledger, retention_days=retention_days)

    monkeypatch.setattr(SendLedger, "write_outbound", die_before_outbound)
    rig.hooks.after_call = die_after_call
    send_queue_visibility(rig, 8)
    result = run(rig, "crash", seed=6, timeout=60)

    assert_accounted(result, statuses={"ACCEPTED", "OUTCOME_UNKNOWN"})
    assert len(died) == 24, f"{result}; {len(died)} deaths: {died}"
    for request_id in result.request_ids:
        ledger = result.ledgers[request_id]
        assert result.calls[request_id] == result.accepted[request_id] == 1, f"{result}; {request_id}"
        if died.get(request_id) == "after_call":
            outcomes = [entry.get("outcome") for entry in ledger.get("attempt_log", [])]
            assert ledger["status"] == "OUTCOME_UNKNOWN", f"{result}; {request_id}: {ledger['status']}"
            assert outcomes[-1] == "orphaned", f"{result}; {request_id}: {outcomes}"
            reason = ledger.get("outcome_unknown_reason", "")
            assert "may have called the provider" in reason, f"{result}; {request_id}: {reason}"
        else:  # SENT, with its outbound record (the audit matched it to the provider's send)
            assert ledger["status"] == "ACCEPTED", f"{result}; {request_id}: {ledger['status']}"
    assert result.count("OUTCOME_UNKNOWN") == 12, result
