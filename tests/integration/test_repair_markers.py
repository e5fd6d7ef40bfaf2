"""Repairing a table written before N102/N202 carried failures: `ops replay`, then `ops prune-markers`.

The table is made to hold exactly what the earlier reading stored for an N102 `Message Sent/Expired`: the
event and a DELIVERED marker (`RANK#4#N102`), planned and applied by the real consumer code from the postback
with its state read as DELIVERED.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

import pytest

from mmsbridge.aws.state_table import to_dynamo
from mmsbridge.core.states import MessageState
from mmsbridge.postbacks.consume import consume
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback
from ops.markers import unbacked
from tests.conftest import ingest_record
from tests.integration.test_ops_cli import NOW, archive, consume_messages, drain

EXPIRED_DETAILS = "Carrier reports validity period elapsed"


def report(tracking_id: str, code: str, status: str, details: str | None = None) -> bytes:
    extra = f"<STATUSDETAILS>{details}</STATUSDETAILS>" if details else ""
    return (
        f"<?xml version='1.0'?><POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>{code}</CODE><STATUS>{status}</STATUS>"
        f"<SENTAS>MMS</SENTAS><TO>13125550163</TO><FROM>40611</FROM><TRACKINGID>{tracking_id}</TRACKINGID>"
        f"<TIMESTAMP>2025-06-02T09:1{len(code)}:00-04:00</TIMESTAMP>{extra}</POSTBACK>"
    ).encode()


def sent(tracking_id: str) -> bytes:
    return report(tracking_id, "N101", "Message Sent").replace(b"09:14", b"09:10")


def store_as_before(table, body: bytes) -> None:
    """What the earlier reading wrote: the same items, with the report taken as DELIVERED."""
    parsed = parse_postback(body, received_at=NOW)
    old = dataclasses.replace(parsed, state=MessageState.DELIVERED, failure_reason=None)
    record = ingest_record(body, NOW)
    sha = hashlib.sha256(body).hexdigest()
    plan = plan_batch([Received(record["messageId"], old, f"raw/{sha}.xml", sha, NOW)])
    assert not table.apply(plan).failed_records


@pytest.fixture
def queue(aws_clients, names):
    drain(aws_clients["sqs"], names["queue"])
    return names["queue"]


def message(cli, tracking_id: str) -> dict:
    code, out, _ = cli("--json", "message", tracking_id)
    assert code == 0
    return json.loads(out)


def test_replay_then_prune_repairs_a_delivered_marker_the_report_does_not_back(
    cli, table, aws_clients, names, queue
):
    tid = f"T-{uuid.uuid4()}"
    expired = report(tid, "N102", "Message Sent/Expired", EXPIRED_DETAILS)
    consume([ingest_record(sent(tid), NOW)], table=table, fetch=lambda key: b"")
    store_as_before(table, expired)
    key = archive(aws_clients["s3"], names["bucket"], expired, received_at=NOW)
    assert message(cli, tid)["state"] == "DELIVERED"  # the wrong state the table holds

    code, _, _ = cli("replay", "--key", key)
    assert code == 0
    consume_messages(table, aws_clients["s3"], names["bucket"], drain(aws_clients["sqs"], queue))
    replayed = message(cli, tid)
    # The replay rewrote the event and added the right marker; the old one still ranks higher.
    assert replayed["state"] == "DELIVERED"
    assert [e["state"] for e in replayed["history"]] == ["SENT", "UNDELIVERED"]

    code, out, _ = cli("--json", "prune-markers", "--tracking-id", tid, "--dry-run")
    assert code == 0
    planned = json.loads(out)
    stale = {"marker": "RANK#4#N102", "marker_state": "DELIVERED", "state_after": "UNDELIVERED"}
    assert planned["removed"] == [{"tracking_id": tid, **stale}]
    assert message(cli, tid)["state"] == "DELIVERED"  # a dry run changes nothing

    code, out, _ = cli("prune-markers", "--tracking-id", tid)
    assert code == 0
    assert "1 marker(s) removed" in out
    repaired = message(cli, tid)
    assert (repaired["state"], repaired["state_code"]) == ("UNDELIVERED", "N102")
    assert repaired["failure_reason"] == "Expired"
    assert repaired["status_details"] == EXPIRED_DETAILS
    assert repaired["terminal_codes"] == ["N102"]

    code, out, _ = cli("--json", "prune-markers", "--tracking-id", tid)  # safe to repeat
    assert json.loads(out)["removed"] == []


def test_prune_without_ids_leaves_backed_and_sender_markers_alone(cli, table):
    tid = f"T-{uuid.uuid4()}"
    delivered = report(tid, "N102", "Message Sent/Delivered")
    consume([ingest_record(b, NOW) for b in (sent(tid), delivered)], table=table, fetch=lambda key: b"")
    submitted = {"pk": f"MSG#{tid}", "sk": "RANK#0#SUBMITTED", "type": "message_state", "rank": 0}
    submitted |= {"state": "SUBMITTED", "code": "SUBMITTED"}  # as the sender's ledger writes it
    table.client.put_item(TableName=table.name, Item=to_dynamo(submitted))
    before = sorted(item["sk"] for item in table.query(f"MSG#{tid}"))

    code, out, _ = cli("--json", "prune-markers")
    assert code == 0
    assert tid not in {r["tracking_id"] for r in json.loads(out)["removed"]}
    assert json.loads(out)["messages"] >= 1
    assert sorted(item["sk"] for item in table.query(f"MSG#{tid}")) == before
    assert message(cli, tid)["state"] == "DELIVERED"


def test_unbacked_is_by_code_and_state():
    def event(code, state):
        return {"sk": f"EVT#t#{code}#k", "code": code, "state": state}

    def marker(code, state):
        return {"sk": f"RANK#x#{code}", "type": "message_state", "code": code, "state": state}

    items = [
        event("N101", "SENT"),
        event("N102", "UNDELIVERED"),
        event("N102", "DELIVERED"),  # a second N102 that did report a delivery
        event("N501", None),
        marker("N101", "SENT"),
        marker("N102", "DELIVERED"),
        marker("N102", "UNDELIVERED"),
        marker("SUBMITTED", "SUBMITTED"),
        marker("E102", "UNDELIVERED"),  # no E102 event kept (expired from the history): left alone
    ]
    assert unbacked(items) == []
    assert unbacked(items[:2] + items[4:]) == [marker("N102", "DELIVERED")]
