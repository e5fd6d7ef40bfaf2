"""Every event type, end to end on the running local stack: the provider's postbacks posted to the ingest URL
and send requests put on the send queue go through the consumer and the sender into the state table, its
stream is read by the local stream mapping into the event publisher, and the rule `make run` adds on the bus
delivers each event to the watch queue, where it validates against its JSON Schema (docs/events/). A
duplicate postback and a late lower-ranked report publish nothing."""

from __future__ import annotations

import json
import random
import re
import urllib.request
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
import pytest
from jsonschema import Draft202012Validator

from local.runtime import patched_environ
from local.stack import ROOT, aws_environment
from ops.watch import WatchQueue
from tests.conftest import SAMPLES
from tests.e2e.test_ingest_over_http import post
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

SCHEMAS = ROOT / "docs" / "events"
DEADLINE_S = 45.0


@cache
def validator(detail_type: str) -> Draft202012Validator:
    path = SCHEMAS / f"{detail_type.lower().replace(' ', '-')}.schema.json"
    return Draft202012Validator(
        json.loads(path.read_text()), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def fixture(name: str, **fields: str) -> bytes:
    """A provider fixture with some fields replaced (added when absent)."""
    text = (SAMPLES / "postbacks" / name).read_text()
    for tag, value in fields.items():
        pattern = re.compile(rf"<{tag}>[^<]*</{tag}>")
        if pattern.search(text):
            text = pattern.sub(f"<{tag}>{value}</{tag}>", text)
        else:
            text = text.replace("</POSTBACK>", f"<{tag}>{value}</{tag}></POSTBACK>")
    return text.encode()


def mobile() -> str:
    return f"1312555{random.randint(0, 9999):04d}"


class Watched:
    """Every event read from the watch queue so far (other tests' too; each check picks its own)."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.queue = WatchQueue(sqs, url)
        self.events: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        self.events.extend(self.queue.receive(wait_s=1))
        return self.events

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [e for e in self.events if predicate(e["detail"])]

    def wait(self, predicate: Callable[[dict[str, Any]], bool], count: int = 1) -> list[dict[str, Any]]:
        found = eventually(lambda: self.read() and len(self.matching(predicate)) >= count, timeout=DEADLINE_S)
        assert found, f"fewer than {count} matching event(s) within {DEADLINE_S:g} s"
        return self.matching(predicate)


@pytest.fixture(scope="module")
def watched(endpoints) -> Watched:
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        return Watched(boto3.client("sqs"), endpoints["events_watch_queue_url"])


@pytest.fixture(scope="module")
def sqs(endpoints) -> Any:
    with patched_environ(aws_environment(endpoints["aws_endpoint_url"], endpoints["region"])):
        return boto3.client("sqs")


def posted(endpoints, *bodies: bytes) -> None:
    for body in bodies:
        assert post(endpoints["postback_url"], body)[0] == 200


def test_delivery_reports_publish_each_new_state_once(endpoints, watched, table):
    tracking_id = f"E2E-EV-{uuid.uuid4().hex}"
    posted(endpoints, fixture("mms_mt_n101.xml", TRACKINGID=tracking_id))
    posted(endpoints, fixture("mms_mt_n102.xml", TRACKINGID=tracking_id))
    watched.wait(lambda d: d.get("tracking_id") == tracking_id and d.get("new_state") == "DELIVERED")
    states = watched.matching(lambda d: d.get("tracking_id") == tracking_id)
    # Both reports may reach the publisher in one stream batch: then only the newest state is told
    # (docs/events.md), never a step backwards.
    assert [e["detail"]["new_state"] for e in states] in (["SENT", "DELIVERED"], ["DELIVERED"])
    for event in states:
        validator(event["detail-type"]).validate(event["detail"])

    # A provider retry of the DELIVERED report, then a late SENT report of another time: state, no event.
    late = fixture("mms_mt_n101.xml", TRACKINGID=tracking_id, TIMESTAMP="2024-02-06T09:14:40-05:00")
    posted(endpoints, fixture("mms_mt_n102.xml", TRACKINGID=tracking_id), late)
    assert eventually(lambda: len((table.message(tracking_id) or {}).get("history", [])) == 3, timeout=20)
    # The stream is read in order: once a later write's event is in, nothing from these is still coming.
    sentinel = f"E2E-EV-{uuid.uuid4().hex}"
    posted(endpoints, fixture("mms_mt_n101.xml", TRACKINGID=sentinel))
    watched.wait(lambda d: d.get("tracking_id") == sentinel)
    assert watched.matching(lambda d: d.get("tracking_id") == tracking_id) == states
    assert table.message(tracking_id)["state"] == "DELIVERED"


def test_inbound_subscriptions_and_templates_publish_their_events(endpoints, watched):
    sms_from, mms_from, subscriber, stopper = mobile(), mobile(), mobile(), mobile()
    emails = [f"{uuid.uuid4().hex[:10]}@example.net" for _ in range(2)]
    mms_id = str(random.randint(10**8, 10**9))
    posted(
        endpoints,
        fixture("sms_mo_n211.xml", FROM=sms_from, TRANSACTIONID=f"TX-{uuid.uuid4().hex}"),
        fixture("mms_mo_n401.xml", FROM=mms_from, TRACKINGID=f"MMS_MO_{uuid.uuid4().hex}"),
        fixture("sub_n301.xml", MOBILE=subscriber),
        fixture("sms_mo_n211_stop.xml", FROM=stopper, TRANSACTIONID=f"TX-{uuid.uuid4().hex}"),
        fixture("email_sub_n303.xml", EMAIL=emails[0]),
        fixture("email_sub_n304.xml", EMAIL=emails[1]),
        fixture("mms_mt_n003.xml", MMSID=mms_id),
    )
    # The later change of each pair only once the first is out: two changes of one item read in one stream
    # batch tell only the newest (docs/events.md).
    watched.wait(lambda d: d.get("mobile") == subscriber, count=2)
    watched.wait(lambda d: d.get("mms_id") == mms_id)
    posted(endpoints, fixture("sub_n302.xml", MOBILE=subscriber), fixture("mms_mt_e004.xml", MMSID=mms_id))

    (sms,) = watched.wait(lambda d: d.get("from") == sms_from)
    assert (sms["detail-type"], sms["detail"]["kind"]) == ("Inbound Message Received", "SMS")
    (mms,) = watched.wait(lambda d: d.get("from") == mms_from)
    assert (mms["detail"]["kind"], len(mms["detail"]["files"])) == ("MMS", 2)
    changes = watched.wait(lambda d: d.get("mobile") == subscriber, count=4)
    by_scope: dict[str, list[bool]] = {}
    for change in changes:
        by_scope.setdefault(change["detail"]["scope"], []).append(change["detail"]["opted_in"])
    assert len(by_scope) == 2  # the campaign's subscription and the number's opt-in state
    assert all(sequence == [True, False] for sequence in by_scope.values()), by_scope
    stop = watched.wait(lambda d: stopper in (d.get("from"), d.get("mobile")), count=2)
    assert {e["detail-type"] for e in stop} == {"Inbound Message Received", "Subscription Changed"}
    for email in emails:
        (change,) = watched.wait(lambda d, email=email: d.get("email") == email)
        assert change["detail-type"] == "Subscription Changed"
    templates = watched.wait(lambda d: d.get("mms_id") == mms_id, count=2)
    assert [e["detail"]["new_state"] for e in templates] == ["READY", "BROKEN"]

    for event in [sms, mms, *changes, *stop, *templates]:
        assert event["source"] == "mmsbridge"
        validator(event["detail-type"]).validate(event["detail"])


def test_send_requests_publish_their_settlement(endpoints, watched, sqs, table):
    run = uuid.uuid4().hex[:8]
    opted_out = mobile()
    posted(endpoints, fixture("sub_n302.xml", MOBILE=opted_out))
    assert eventually(lambda: table.suppressed(opted_out), timeout=20)

    def request(label: str, **fields: str) -> dict[str, str]:
        body = {
            "request_id": f"e2e-events-{label}-{run}",
            "action": "sendSMS",
            "to": "+1 (774) 319-9144",
            "from": "47215",
            "text": f"Northwind events {label} {run}",
            **fields,
        }
        sqs.send_message(QueueUrl=endpoints["send_queue_url"], MessageBody=json.dumps(body))
        return body

    # FAILED first and alone: the simulator refuses its next sendSMS with a permanent error.
    control = endpoints["simulator"]["control_url"]
    fault = json.dumps({"kind": "answer", "code": "E110", "count": 1, "actions": ["sendSMS"]}).encode()
    with urllib.request.urlopen(
        urllib.request.Request(f"{control}faults", data=fault, headers={"Content-Type": "application/json"})
    ) as answer:
        assert answer.status in (200, 201)
    failed = request("failed")
    (failed_event,) = watched.wait(lambda d: d.get("request_id") == failed["request_id"])
    expected = {failed["request_id"]: "FAILED"}
    # OUTCOME_UNKNOWN alone too: the simulator takes the next sendSMS and closes the connection unanswered.
    fault = json.dumps({"kind": "drop", "accept": True, "count": 1, "actions": ["sendSMS"]}).encode()
    with urllib.request.urlopen(
        urllib.request.Request(f"{control}faults", data=fault, headers={"Content-Type": "application/json"})
    ) as answer:
        assert answer.status in (200, 201)
    unknown = request("unknown")
    watched.wait(lambda d: d.get("request_id") == unknown["request_id"])
    expected[unknown["request_id"]] = "OUTCOME_UNKNOWN"
    for label, status, fields in (
        ("accepted", "ACCEPTED", {}),
        ("rejected", "REJECTED", {"to": "555-0100"}),
        ("suppressed", "SUPPRESSED", {"to": opted_out}),
    ):
        expected[request(label, **fields)["request_id"]] = status

    settled = {failed["request_id"]: failed_event}
    for request_id in expected:
        found = watched.wait(lambda d, rid=request_id: d.get("request_id") == rid)
        settled[request_id] = next(e for e in found if e["detail-type"] == "Send Request Settled")
    assert {rid: e["detail"]["status"] for rid, e in settled.items()} == expected
    for event in settled.values():
        validator(event["detail-type"]).validate(event["detail"])
    rejected = next(e for e in settled.values() if e["detail"]["status"] == "REJECTED")
    assert [r["field"] for r in rejected["detail"]["reasons"]] == ["to"]

    accepted = next(e for e in settled.values() if e["detail"]["status"] == "ACCEPTED")
    tracking_id = accepted["detail"]["tracking_id"]
    states = watched.wait(lambda d: d.get("tracking_id") == tracking_id and "new_state" in d)
    for event in states:
        assert event["detail"]["request_id"] == accepted["detail"]["request_id"]
        validator(event["detail-type"]).validate(event["detail"])
