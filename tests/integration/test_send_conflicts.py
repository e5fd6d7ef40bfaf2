"""A request_id reused with a different body: never sent, recorded beside the request's ledger (count, the
first sightings), counted by the handler's ConflictingDuplicates metric, and shown by `ops request ID`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import boto3
import pytest

from local import stack as local_stack
from local.runtime import patched_environ
from local.simulator import ProviderFault, ProviderSimulator
from mmsbridge.sending.conflicts import CONFLICTS_SK, KEEP, record_conflict, same_body
from mmsbridge.sending.ledger import sha256_hex
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.results import Disposition
from tests.integration.test_sender import API_KEY, Harness, calls, message, run, sms
from tests.integration.test_sender_handler import deliver


@pytest.fixture
def simulator():
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as sim:
        yield sim


@pytest.fixture
def harness(table, simulator):
    return Harness(table, simulator)


def conflicts(table, request_id: str) -> dict | None:
    return table.get(f"REQ#{request_id}", CONFLICTS_SK)


def sent_texts(simulator) -> list[str]:
    return [e["fields"].get("TEXT") for e in simulator.log() if "client" in e and e.get("fields")]


def test_a_different_body_under_a_sent_request_id_is_recorded_and_never_sent(harness, table, simulator):
    first = sms()
    request_id = first["request_id"]
    (accepted,) = run(harness.sender(), message(first))
    assert accepted.outcome == "accepted"
    ledger_before = SendLedger(table).get(request_id)

    other = {**first, "to": "+1 312 555 0147", "text": "a different message"}
    second = message(other)
    (result,) = run(harness.sender(), second)
    assert (result.outcome, result.disposition) == ("conflicting_duplicate", Disposition.DONE)
    assert "already used by a different body" in result.reason
    assert calls(simulator) == 1  # never sent
    assert SendLedger(table).get(request_id) == ledger_before  # the request stands, untouched

    record = conflicts(table, request_id)
    assert record["count"] == 1
    assert record["last_sha256"] == sha256_hex(second.body)
    assert record["first_seen_at"] == record["last_seen_at"]
    (seen,) = record["seen"]
    assert seen["sha256"] == sha256_hex(second.body)
    assert seen["message_id"] == second.message_id
    assert (seen["action"], seen["to"]) == ("sendSMS", "+1 312 555 0147")  # as the body gave them
    assert record["gsi1pk"] == "SEND#CONFLICTING_DUPLICATE"

    # The same request again, serialised differently (key order, spacing), is a plain duplicate.
    reserialised = json.dumps(dict(reversed(list(first.items()))), indent=1)
    (again,) = run(harness.sender(), message(reserialised))
    assert again.outcome == "duplicate"
    assert conflicts(table, request_id)["count"] == 1
    assert calls(simulator) == 1


def test_sightings_are_kept_up_to_the_bound_and_counted_beyond(table):
    request_id = f"bounded-{uuid.uuid4().hex[:8]}"
    for number in range(KEEP + 3):
        body = json.dumps({"request_id": request_id, "n": number})
        count = record_conflict(table, request_id, body, datetime.now(UTC), message_id=f"m-{number}")
        assert count == number + 1
    record = conflicts(table, request_id)
    assert record["count"] == KEEP + 3
    assert [s["message_id"] for s in record["seen"]] == [f"m-{n}" for n in range(KEEP)]  # the first KEEP
    assert record["last_sha256"] == sha256_hex(json.dumps({"request_id": request_id, "n": KEEP + 2}))


def test_a_conflict_while_the_request_waits_never_replaces_what_is_sent(harness, table, simulator):
    first = sms()
    request_id = first["request_id"]
    original = message(first)
    simulator.add_fault(ProviderFault("answer", code="E113", count=1))
    (throttled,) = run(harness.sender(), original)
    assert throttled.outcome == "throttled"
    assert SendLedger(table).get(request_id)["status"] == "RETRY"

    (result,) = run(harness.sender(), message({**first, "text": "not this one"}))
    assert result.outcome == "conflicting_duplicate"
    (sent,) = run(harness.sender(), original)  # the original's next delivery
    assert sent.outcome == "accepted"
    assert sent_texts(simulator)[-1] == first["text"]
    assert "not this one" not in sent_texts(simulator)
    ledger = SendLedger(table).get(request_id)
    assert ledger["body"] == original.body
    assert conflicts(table, request_id)["count"] == 1


def test_an_invalid_body_under_a_used_request_id_is_a_conflict_with_its_refusal(harness, table, simulator):
    first = sms()
    request_id = first["request_id"]
    run(harness.sender(), message(first))
    (result,) = run(harness.sender(), message({**first, "to": "12"}))
    assert result.outcome == "conflicting_duplicate"
    assert SendLedger(table).get(request_id)["status"] == "ACCEPTED"
    (seen,) = conflicts(table, request_id)["seen"]
    assert seen["refused"].startswith("to: ")
    # A refused body delivered again is not a conflict with itself.
    bad = message(sms(f"bad-{uuid.uuid4().hex[:8]}", to="12"))
    assert run(harness.sender(), bad)[0].outcome == "rejected"
    bad.receive_count = 2
    assert run(harness.sender(), bad)[0].outcome == "rejected"
    assert conflicts(table, json.loads(bad.body)["request_id"]) is None


def test_the_same_body_is_the_same_request():
    body = json.dumps({"request_id": "r", "action": "sendSMS", "to": "1", "text": "hi"})
    ledger = {"body": body, "payload_sha256": sha256_hex(body)}
    assert same_body(ledger, body)
    assert same_body(ledger, json.dumps(json.loads(body), indent=2, sort_keys=True))
    assert not same_body(ledger, body.replace('"hi"', '"ho"'))
    assert not same_body(ledger, body.replace('"1"', "1"))  # a number is not its digits
    assert not same_body(ledger, "not json")
    assert same_body({}, body)  # nothing stored: no evidence of a conflict


# -- the handler's metric -------------------------------------------------------------------------------
SECRET_NAME = f"test/conflicts-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def handler_simulator():
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as sim:
        yield sim


@pytest.fixture(scope="module")
def sender_function(moto_server, aws_stack, aws_clients, handler_simulator):
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=API_KEY)
    environment = {
        "PROVIDER_API_URL": handler_simulator.api_url,
        "PROVIDER_API_KEY_SECRET": SECRET_NAME,
        "THROUGHPUT_PER_SECOND": "1000",
    }
    return local_stack.function_for(
        aws_stack,
        "SenderFunction",
        moto_server.endpoint_url,
        environment=environment,
        name_suffix="Conflicts",
        max_containers=1,
    )


def emf_metrics(text: str) -> dict[str, float]:
    """The metrics in the EMF documents printed, with their namespace and dimensions checked."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "mmsbridge"
        assert directive["Dimensions"] == [["service"]]
        assert document["service"] == "sender"
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found


def test_the_handler_counts_conflicting_duplicates(sender_function, aws_clients, aws_stack, capfd):
    sqs = aws_clients["sqs"]
    queue = aws_stack.queues()["SendQueue"]
    first = sms(to=f"1774{2 + uuid.uuid4().int % 8}{uuid.uuid4().int % 10**6:06d}")  # its own number
    event = deliver(sqs, queue, [json.dumps(first)], aws_stack.region)
    assert sender_function.invoke(event) == {"batchItemFailures": []}
    capfd.readouterr()
    bodies = [json.dumps({**first, "text": f"other {n}"}) for n in range(2)]
    event = deliver(sqs, queue, bodies, aws_stack.region)
    assert sender_function.invoke(event) == {"batchItemFailures": []}
    out, err = capfd.readouterr()
    assert emf_metrics(out + err)["ConflictingDuplicates"] == 2
