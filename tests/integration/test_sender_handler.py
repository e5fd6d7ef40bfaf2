"""The sender's Lambda handler, wired from template.yaml, on moto's real send queue with the simulator:
partial batch responses, visibility timeouts on handed-back records, dead-lettering with reasons, the API
key from Secrets Manager (never in a log line: test_no_secrets_in_logs.py)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from local import stack as local_stack
from local.runtime import patched_environ
from local.simulator import ProviderFault, ProviderSimulator
from local.sqs_mapping import lambda_record
from mmsbridge.aws.state_table import StateTable, to_dynamo
from mmsbridge.sending.ledger_store import SendLedger

EVENTS = Path(__file__).resolve().parents[2] / "events" / "sender"
SECRET_NAME = f"test/sender-{uuid.uuid4().hex[:8]}"
API_KEY = f"KEY-{uuid.uuid4().hex}"
SAMPLE_NUMBERS = ("17743199144", "13125550147", "13125550188", "13125550199")


@pytest.fixture(scope="module")
def simulator():
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as sim:
        yield sim


@pytest.fixture(scope="module")
def aws(moto_server, aws_stack):
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)):
        clients = {name: boto3.client(name) for name in ("sqs", "dynamodb", "secretsmanager")}
    clients["secretsmanager"].create_secret(Name=SECRET_NAME, SecretString=API_KEY)
    return clients


@pytest.fixture(scope="module")
def queues(aws_stack):
    return aws_stack.queues()


@pytest.fixture(scope="module")
def sender(moto_server, aws_stack, aws, simulator):
    environment = {
        "PROVIDER_API_URL": simulator.api_url,
        "PROVIDER_API_KEY_SECRET": SECRET_NAME,
        "THROUGHPUT_PER_SECOND": "1000",
    }
    return local_stack.function_for(
        aws_stack,
        "SenderFunction",
        moto_server.endpoint_url,
        environment=environment,
        name_suffix="UnderTest",
        max_containers=1,
    )


@pytest.fixture(scope="module")
def table(aws_stack, aws):
    return StateTable(aws["dynamodb"], aws_stack.tables()["StateTable"].name)


def drain(sqs, url: str) -> list[dict]:
    messages = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def deliver(sqs, queue, bodies: list[str], region: str) -> dict:
    """Put the bodies on the send queue and receive them as Lambda would: the event for one invocation."""
    drain(sqs, queue.url)
    for body in bodies:
        sqs.send_message(QueueUrl=queue.url, MessageBody=body)
    received: list[dict] = []
    while len(received) < len(bodies):
        received += sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
    return {"Records": [lambda_record(m, queue.arn, region) for m in received]}


def failed_ids(response: dict) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


@pytest.fixture
def opted_in(table):
    """Other tests share this table and may have opted the samples' numbers out: here the latest event
    opts them in, and is removed afterwards."""
    keys = [{"pk": f"SUPPRESS#{n}", "sk": "AT#9999-12-31T00:00:00.000000Z#N301"} for n in SAMPLE_NUMBERS]
    table.put_all([{**key, "suppressed": False} for key in keys])
    yield
    for key in keys:
        table.client.delete_item(TableName=table.name, Key=to_dynamo(key))


def api_calls(simulator, since: int) -> list[dict]:
    return [entry for entry in simulator.log(since) if "client" in entry and entry.get("fields")]


def last_seq(simulator) -> int:
    entries = simulator.log()
    return entries[-1]["seq"] if entries else 0


def test_the_sample_batch_sends_refuses_and_records(sender, table, simulator, opted_in):
    event = json.loads((EVENTS / "send-batch.json").read_text())
    since = last_seq(simulator)
    response = sender.invoke(event)
    assert response == {"batchItemFailures": []}
    ledger = SendLedger(table)
    assert ledger.get("order-1042-shipped")["status"] == "ACCEPTED"
    assert ledger.get("spring-deals-ana")["status"] == "ACCEPTED"
    assert ledger.get("welcome-13125550188")["status"] == "ACCEPTED"
    # Each refused example breaks one rule, and is recorded with it.
    for request_id, field in [
        ("order-1043-shipped", "to"),
        ("spring-deals-ben", "custom_text"),
        ("welcome-13125550174", "fallback_sms_text"),
        ("order-1044-shipped", "campaign_ref"),
    ]:
        refused = ledger.get(request_id)
        assert refused["status"] == "REJECTED"
        assert [reason["field"] for reason in refused["reasons"]] == [field]
    calls = api_calls(simulator, since)
    # opted-out.json's number is opted in here (the opted_in fixture), so its SMS goes out too.
    assert [entry["action"] for entry in calls] == ["sendSMS", "sendSavedMMS", "sendMMS", "sendSMS"]
    assert calls[1]["fields"]["CAMPAIGNREF"] == "Spring Deals 2025"
    assert calls[2]["fields"]["FALLBACKSMSTEXT"] == "Welcome to Northwind"
    # The template's ProviderServiceId is empty by default: no SERVICEID.
    assert not [entry for entry in calls if "SERVICEID" in entry["fields"]]


@pytest.fixture(scope="module")
def sender_with_service_id(moto_server, aws_stack, aws, simulator):
    environment = {
        "PROVIDER_API_URL": simulator.api_url,
        "PROVIDER_API_KEY_SECRET": SECRET_NAME,
        "THROUGHPUT_PER_SECOND": "1000",
        "PROVIDER_SERVICE_ID": "svc-00417",
    }
    return local_stack.function_for(
        aws_stack,
        "SenderFunction",
        moto_server.endpoint_url,
        environment=environment,
        name_suffix="WithServiceId",
        max_containers=1,
    )


def test_a_configured_service_id_goes_on_every_call(
    sender_with_service_id, aws, queues, aws_stack, simulator, opted_in
):
    bodies = [
        json.dumps({**json.loads((EVENTS / name).read_text()), "request_id": f"s-{i}-{uuid.uuid4().hex[:6]}"})
        for i, name in enumerate(("sms.json", "saved-mms.json", "inline-mms.json"))
    ]
    event = deliver(aws["sqs"], queues["SendQueue"], bodies, aws_stack.region)
    since = last_seq(simulator)
    assert sender_with_service_id.invoke(event) == {"batchItemFailures": []}
    calls = api_calls(simulator, since)
    assert sorted(entry["action"] for entry in calls) == ["sendMMS", "sendSMS", "sendSavedMMS"]
    assert [entry["fields"]["SERVICEID"] for entry in calls] == ["svc-00417"] * 3


def test_throttled_records_come_back_later_and_unsent_ones_with_them(
    sender, aws, queues, aws_stack, simulator
):
    sqs = aws["sqs"]
    queue = queues["SendQueue"]
    bodies = [
        json.dumps(
            {**json.loads((EVENTS / "sms.json").read_text()), "request_id": f"t-{i}-{uuid.uuid4().hex[:6]}"}
        )
        for i in range(3)
    ]
    event = deliver(sqs, queue, bodies, aws_stack.region)
    simulator.add_fault(ProviderFault("answer", code="E113", count=1))
    response = sender.invoke(event)
    assert failed_ids(response) == {r["messageId"] for r in event["Records"]}
    # Handed back with a jittered visibility of at least a second: not visible right away.
    assert sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=0).get("Messages", []) == []
    assert simulator.stats()["e113"] >= 1
    for record in event["Records"]:  # not to come back into later tests that share the queue
        sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=record["receiptHandle"])


def test_a_poison_record_goes_to_the_dlq_with_its_reason(sender, aws, queues, aws_stack, monkeypatch):
    sqs = aws["sqs"]
    queue, dlq = queues["SendQueue"], queues["SendDLQ"]
    drain(sqs, dlq.url)
    body = json.dumps(
        {**json.loads((EVENTS / "sms.json").read_text()), "request_id": f"p-{uuid.uuid4().hex}"}
    )
    event = deliver(sqs, queue, [body], aws_stack.region)
    monkeypatch.setattr(
        StateTable, "suppressed", lambda self, mobile: (_ for _ in ()).throw(RuntimeError("boom"))
    )
    for _ in range(4):  # the same message failing: handed back, its errors counted
        assert sender.invoke(event) == {
            "batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]
        }
    response = sender.invoke(event)
    assert response == {"batchItemFailures": []}  # the fifth error: moved, so acknowledged
    (moved,) = drain(sqs, dlq.url)
    assert moved["Body"] == body
    attributes = {k: v["StringValue"] for k, v in moved["MessageAttributes"].items()}
    assert "boom" in attributes["mmsbridge-reason"]
    assert attributes["mmsbridge-outcome"] == "error"
