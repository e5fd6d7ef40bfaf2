"""`python -m ops events` on moto: events put on a bus, delivered by a rule to a watch queue as the local
stack wires it, printed one line each (or whole with --json), filtered by detail-type, followed until
Ctrl-C."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from local import stack as local_stack
from local.runtime import patched_environ
from ops.cli import main
from ops.commands import events as events_command
from ops.watch import WatchQueue

REGION = "us-east-1"

SETTLED = {
    "event_id": "e1",
    "request_id": "order-1042-shipped",
    "status": "ACCEPTED",
    "to": "17743199144",
    "tracking_id": "TRK-1",
}
STATE = {
    "event_id": "e2",
    "tracking_id": "TRK-1",
    "request_id": "order-1042-shipped",
    "old_state": "SENT",
    "new_state": "DELIVERED",
    "code": "N202",
    "to": "17743199144",
}
INBOUND = {"event_id": "e3", "kind": "SMS", "from": "12175550141", "to": "63184", "text": "STOP\nnow"}


@pytest.fixture(scope="module")
def aws(moto_server) -> dict[str, Any]:
    with patched_environ(local_stack.aws_environment(moto_server.endpoint_url, REGION)):
        return {name: boto3.client(name) for name in ("events", "sqs")}


@pytest.fixture
def watched(aws) -> dict[str, str]:
    """A bus, a watch queue and the rule between them, as `make run` adds them."""
    suffix = uuid.uuid4().hex[:8]
    bus = aws["events"].create_event_bus(Name=f"ops-events-{suffix}")["EventBusArn"].rsplit("/", 1)[-1]
    url = aws["sqs"].create_queue(QueueName=f"ops-events-watch-{suffix}")["QueueUrl"]
    arn = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"watch-{suffix}"
    aws["events"].put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["mmsbridge"]}))
    aws["events"].put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return {"bus": bus, "queue_url": url}


def publish(aws, bus: str, *entries: tuple[str, dict[str, Any]]) -> None:
    response = aws["events"].put_events(
        Entries=[
            {"Source": "mmsbridge", "DetailType": kind, "Detail": json.dumps(detail), "EventBusName": bus}
            for kind, detail in entries
        ]
    )
    assert response["FailedEntryCount"] == 0


@pytest.fixture
def ops(tmp_path, moto_server, watched, capsys):
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps(
            {
                "aws_endpoint_url": moto_server.endpoint_url,
                "region": REGION,
                "events_watch_queue_url": watched["queue_url"],
            }
        )
    )

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--endpoints-file", str(path), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_each_event_is_one_line_and_reading_consumes_them(aws, watched, ops):
    publish(
        aws,
        watched["bus"],
        ("Send Request Settled", SETTLED),
        ("Message State Changed", STATE),
        ("Inbound Message Received", INBOUND),
    )
    code, out, _ = ops("events")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "3 event(s)"
    by_type = {kind: line for line in lines[:-1] for kind in ("Settled", "State", "Inbound") if kind in line}
    assert "ACCEPTED" in by_type["Settled"]
    assert "request_id=order-1042-shipped" in by_type["Settled"]
    assert "SENT -> DELIVERED" in by_type["State"]
    assert "tracking_id=TRK-1" in by_type["State"]
    assert "text=STOP\\nnow" in by_type["Inbound"]  # one line, whatever the text holds
    assert ops("events")[1].splitlines() == ["0 event(s)"]


def test_json_prints_the_whole_events(aws, watched, ops):
    publish(aws, watched["bus"], ("Message State Changed", STATE))
    code, out, _ = ops("events", "--json")
    assert code == 0
    document = json.loads(out)
    (event,) = document["events"]
    assert document["count"] == 1
    assert event["source"] == "mmsbridge"
    assert event["detail-type"] == "Message State Changed"
    assert event["detail"] == STATE


def test_a_type_filter_leaves_the_other_types_on_the_queue(aws, watched, ops):
    publish(aws, watched["bus"], ("Send Request Settled", SETTLED), ("Inbound Message Received", INBOUND))
    out = ops("events", "--type", "Send Request Settled")[1].splitlines()
    assert len(out) == 2
    assert "Send Request Settled" in out[0]
    out = ops("events")[1].splitlines()
    assert len(out) == 2
    assert "Inbound Message Received" in out[0]


def test_follow_prints_events_as_they_arrive_until_ctrl_c(aws, watched, ops, monkeypatch):
    monkeypatch.setattr(events_command, "FOLLOW_WAIT_S", 1)
    receive = WatchQueue.receive
    calls = []

    def receive_then_interrupt(self: WatchQueue, wait_s: int) -> list[dict[str, Any]]:
        calls.append(wait_s)
        if len(calls) == 2:
            publish(aws, watched["bus"], ("Message State Changed", STATE))
        if len(calls) == 4:
            raise KeyboardInterrupt
        return receive(self, wait_s)

    monkeypatch.setattr(WatchQueue, "receive", receive_then_interrupt)
    code, out, err = ops("events", "--follow", "--json")
    assert code == 0
    assert "Ctrl-C" in err
    (line,) = out.splitlines()
    assert json.loads(line)["detail"] == STATE
    assert set(calls) == {1}  # bounded long polls


def test_without_a_watch_queue_it_says_where_to_look(tmp_path, moto_server, capsys):
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"aws_endpoint_url": moto_server.endpoint_url, "region": REGION}))
    assert main(["--endpoints-file", str(path), "events"]) == 2
    assert "events_watch_queue_url" in capsys.readouterr().err
