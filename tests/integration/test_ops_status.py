"""`ops status` against the local stack's endpoints file and a deployed stack's outputs (moto's
CloudFormation and CloudWatch): queue depths and the oldest message's age (a peek on the local stack,
CloudWatch when deployed), and what the ledger and the worklists add up to. The table is shared with other
tests, so the ledger's figures are checked as what this test's records add to them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from local import stack as local_stack
from mmsbridge.sending.conflicts import record_conflict
from mmsbridge.sending.ledger_store import SendLedger
from ops.cli import main
from tests.integration.test_ops_cli import apply, drain, provider_time, sample
from tests.integration.test_ops_send import Ledgers, sms


@pytest.fixture
def ledgers(table):
    """Ledgers as the sender writes them; the requests' items are deleted afterwards, so no other test's
    worklist (an OUTCOME_UNKNOWN one at the current time, say) holds them."""
    made = Ledgers(table)
    yield made
    for page in table.client.get_paginator("scan").paginate(
        TableName=table.name,
        FilterExpression="begins_with(pk, :req) AND contains(pk, :mark)",
        ExpressionAttributeValues={":req": {"S": "REQ#"}, ":mark": {"S": MARK}},
        ProjectionExpression="pk, sk",
    ):
        for key in page.get("Items", []):
            table.client.delete_item(TableName=table.name, Key=key)


MARK = f"status-{uuid.uuid4().hex[:6]}"  # in every request_id this module makes


def new_id(label: str) -> str:
    return f"{MARK}-{label}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def empty_queues(aws_clients, names):
    sqs = aws_clients["sqs"]
    for name in ("queue", "dlq", "send_queue", "send_dlq"):
        drain(sqs, names[name])
    yield sqs
    for name in ("queue", "dlq", "send_queue", "send_dlq"):
        drain(sqs, names[name])


def status(cli, *args) -> dict:
    code, out, _ = cli("--json", "status", *args)
    assert code == 0
    return json.loads(out)


def queue(document: dict, label: str) -> dict:
    return next(q for q in document["queues"] if q["queue"] == label)


def test_queue_depths_and_the_oldest_age_from_a_peek_that_leaves_messages_visible(cli, names, empty_queues):
    sqs = empty_queues
    dlq = names["send_dlq"]
    before = queue(status(cli), "send DLQ")  # other tests may have left messages in flight
    for body in ("oldest", "second"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    time.sleep(2.2)
    sqs.send_message(QueueUrl=dlq, MessageBody="third")
    sqs.send_message(QueueUrl=dlq, MessageBody="later", DelaySeconds=900)
    held = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=1, VisibilityTimeout=300)["Messages"]
    assert held[0]["Body"] == "oldest"  # moto hands out the oldest visible message first
    sqs.send_message(QueueUrl=names["queue"], MessageBody="a postback")

    document = status(cli)
    send_dlq = queue(document, "send DLQ")
    grown = [send_dlq[name] - before[name] for name in ("visible", "in_flight", "delayed")]
    assert grown == [2, 1, 1]
    assert send_dlq["age_source"] == "peek"
    assert send_dlq["oldest_age_s"] >= 2  # "second" (the oldest is in flight): sent 2 s before "third"
    postbacks = queue(document, "postback queue")
    assert postbacks["visible"] >= 1
    assert postbacks["oldest_age_s"] is not None

    text = cli("status")[1]
    assert text.startswith("mmsbridge status at ")
    row = f"  send DLQ        {send_dlq['visible']:<9}{send_dlq['in_flight']:<11}{send_dlq['delayed']:<9}"
    assert row in text
    assert "from a peek; local stack" in text

    # The peeks hid nothing: every visible message is still there, at once.
    bodies = [m["Body"] for m in drain(sqs, dlq)]
    assert {"second", "third"} <= set(bodies)


def test_account_errors_throttling_waiting_and_worklists_add_up(cli, ledgers, table):
    before = status(cli)
    now = datetime.now(UTC)
    store = SendLedger(table)

    account_id = new_id("account")
    claim = ledgers.claim(sms(account_id), now - timedelta(minutes=3))
    # Released at `now`, after every earlier test of this worker wrote its own: the newest account error.
    store.release(
        claim,
        now,
        outcome="account",
        code="E104",
        detail="Invalid API Key",
        called=True,
        counter="account_errors",
    )
    throttled_id = new_id("throttled")
    ledgers.throttled(sms(throttled_id), now - timedelta(minutes=5))
    ledgers.throttled(sms(throttled_id), now - timedelta(minutes=4))
    old = new_id("old-throttle")  # throttled two days ago: outside the window, though still waiting
    ledgers.throttled(sms(old), now - timedelta(days=2))
    in_flight = new_id("sending")
    ledgers.claim(sms(in_flight), now - timedelta(hours=1))  # its lease ran out
    ledgers.outcome_unknown(sms(new_id("unknown")), now - timedelta(minutes=1))
    ledgers.failed(sms(new_id("failed")), now - timedelta(minutes=1))
    conflicted = new_id("conflicted")
    ledgers.accepted(sms(conflicted), now - timedelta(minutes=1), f"T-{uuid.uuid4()}")
    record_conflict(table, conflicted, sms(conflicted, text="other"), now)
    apply(table, b"<POSTBACK><ORIGIN>" + uuid.uuid4().hex.encode(), quarantined=1)
    apply(table, sample("rcs_mt_n701.xml", TRACKINGID=uuid.uuid4().hex, TIMESTAMP=provider_time(now)))

    after = status(cli)
    path, earlier = after["send_path"], before["send_path"]
    assert path["account_errors"]["calls"] - earlier["account_errors"]["calls"] == 1
    latest = path["account_errors"]["latest"][0]
    assert (latest["request_id"], latest["code"], latest["detail"]) == (account_id, "E104", "Invalid API Key")
    assert path["throttled"]["calls"] - earlier["throttled"]["calls"] == 2  # the old one is not in the 24 h
    assert path["throttled"]["requests"] - earlier["throttled"]["requests"] == 1
    assert path["pending"]["retry"] - earlier["pending"]["retry"] == 3  # account, throttled, old: all waiting
    assert path["pending"]["sending"] - earlier["pending"]["sending"] == 1
    # At least this one: another test's lease may run out between the two readings.
    assert path["pending"]["lease_ran_out"] - earlier["pending"]["lease_ran_out"] >= 1
    assert path["scan"]["complete"] is True

    def grew(*where: str) -> int:
        new, old_value = after["worklists"], before["worklists"]
        for step in where:
            new, old_value = new[step], old_value[step]
        return new["count"] - old_value["count"]

    assert grew("outcome_unknown", "outstanding") == 1
    assert grew("outcome_unknown", "last_24h") == 1
    assert grew("failed_24h") == 1
    assert grew("conflicting_duplicates_24h") == 1
    assert grew("quarantined", "total") == 1
    assert grew("quarantined", "last_24h") == 1
    assert grew("unrecognised_24h") == 1

    text = cli("status")[1]
    assert f"{account_id} E104 Invalid API Key" in text
    assert "(AUTH_CONFIG: sending pauses until fixed)" in text
    assert "ledger scan" in text
    assert "(whole table)" in text

    partial = status(cli, "--scan-limit", "2")["send_path"]["scan"]
    assert partial == {"scanned": 2, "complete": False, "budget": 2}
    assert "stopped at --scan-limit 2: partial" in cli("status", "--scan-limit", "2")[1]


def test_a_deployed_stack_reads_the_oldest_age_from_cloudwatch_and_never_peeks(
    monkeypatch, moto_server, aws_stack, names, empty_queues, capsys
):
    sqs = empty_queues
    for variable, value in local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region).items():
        monkeypatch.setenv(variable, value)
    stack_name = f"ops-status-{uuid.uuid4().hex[:8]}"
    outputs = {
        "StateTableName": names["table"],
        "PostbackQueueUrl": names["queue"],
        "PostbackDLQUrl": names["dlq"],
        "SendQueueUrl": names["send_queue"],
        "SendDLQUrl": names["send_dlq"],
    }
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    send_queue_name = names["send_queue"].rsplit("/", 1)[-1]
    boto3.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": send_queue_name}],
                "Timestamp": datetime.now(UTC) - timedelta(minutes=1),
                "Value": 4321.0,
                "Unit": "Seconds",
            }
        ],
    )
    sqs.send_message(QueueUrl=names["send_queue"], MessageBody="waiting")

    code = main(["--stack", stack_name, "--region", aws_stack.region, "--json", "status"])
    out, _ = capsys.readouterr()
    assert code == 0
    document = json.loads(out)
    assert document["where"] == f"stack {stack_name} in {aws_stack.region}"
    send_queue = queue(document, "send queue")
    assert (send_queue["visible"], send_queue["age_source"], send_queue["oldest_age_s"]) == (
        1,
        "cloudwatch",
        4321,
    )
    assert queue(document, "postback queue")["oldest_age_s"] is None  # no datapoints: nothing made up
    # Never peeked: the message's first receive is this one.
    (message,) = sqs.receive_message(
        QueueUrl=names["send_queue"], AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"

    assert main(["--stack", stack_name, "--region", aws_stack.region, "status"]) == 0
    assert "CloudWatch ApproximateAgeOfOldestMessage" in capsys.readouterr().out
