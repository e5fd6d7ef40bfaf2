"""The consumer on moto, wired from template.yaml: every postback to state, once, in any order."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.awsrequest import AWSResponse

from local import aws_faults
from local import stack as local_stack
from local.aws_faults import StaticBody
from mmsbridge.aws.state_table import StateTable
from mmsbridge.core import envelope
from mmsbridge.core.table_model import inbound_shard, inbound_to
from mmsbridge.postbacks.consume import consume
from mmsbridge.sending.ledger import outbound_items
from tests.conftest import SAMPLES

POSTBACKS = SAMPLES / "postbacks"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    return StateTable(aws_clients["dynamodb"], aws_stack.tables()["StateTable"].name)


@pytest.fixture(scope="module")
def consumer(moto_server, aws_stack):
    function = local_stack.load_functions(aws_stack, moto_server.endpoint_url)["ConsumerFunction"]
    return function


def record(body: bytes, *, inline: bool = True, key: str | None = None) -> dict:
    sha = hashlib.sha256(body).hexdigest()
    message = envelope.encode(
        key=key or f"raw/{sha}.xml",
        sha256=sha,
        body=body,
        received_at=NOW,
        source_ip="127.0.0.1",
        request_id="r",
    )
    if not inline:
        message = message.split(',"body_b64"')[0] + "}"
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "rh",
        "body": message,
        "attributes": {},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
    }


def sample(name: str, tracking_id: str | None = None) -> bytes:
    body = (POSTBACKS / name).read_bytes()
    if tracking_id is not None:
        body = re.sub(
            rb"<TRACKINGID>[^<]*</TRACKINGID>", f"<TRACKINGID>{tracking_id}</TRACKINGID>".encode(), body
        )
    return body


def apply(table, *bodies: bytes, **kwargs):
    return consume([record(b) for b in bodies], table=table, fetch=lambda key: b"", now=NOW, **kwargs)


def test_delivery_reports_make_a_message_state_with_history(table):
    tid = f"T-{uuid.uuid4()}"
    outcome = apply(table, sample("mms_mt_n101.xml", tid), sample("mms_mt_n102.xml", tid))
    assert outcome.failed == set()
    assert outcome.applied == 2
    message = table.message(tid)
    assert message["state"] == "DELIVERED"
    assert message["state_code"] == "N102"
    assert message["sent_at"] == "2024-02-06T14:14:37.000000Z"  # from N101's TIMESTAMP, in UTC
    assert message["carrier"] == "0001470"
    assert message["sent_as"] == "MMS"
    assert message["conflict"] is False
    assert message["final_codes"] == ["N102"]
    history = message["history"]
    assert history == table.history(f"MSG#{tid}")
    assert [event["code"] for event in history] == ["N101", "N102"]
    assert all(event["raw_key"].startswith("raw/") for event in history)


@pytest.mark.parametrize(
    ("names", "final", "conflict"),
    [
        (["mms_mt_n101.xml", "mms_mt_n102.xml"], "DELIVERED", False),
        (["mms_mt_n101.xml", "mms_mt_e102.xml"], "UNDELIVERED", False),
        (["mms_mt_n101.xml", "mms_mt_e102.xml", "mms_mt_n102.xml"], "DELIVERED", True),
        (["mms_mt_n101.xml", "mms_mt_n501.xml", "mms_mt_n502.xml", "mms_mt_n102.xml"], "DELIVERED", False),
        (["sms_mt_n201.xml", "sms_mt_n202.xml"], "DELIVERED", False),
        (["sms_mt_n201.xml", "sms_mt_e202.xml"], "UNDELIVERED", False),
        (["sms_mt_e201.xml", "sms_mt_n201.xml"], "FAILED", False),
    ],
)
def test_every_arrival_order_gives_the_same_state(table, names, final, conflict):
    outcomes = []
    for order in itertools.permutations(names):
        for together in (False, True):
            tid = f"T-{uuid.uuid4()}"
            bodies = [sample(name, tid) for name in order]
            if together:
                assert apply(table, *bodies).failed == set()
            else:
                for body in bodies:
                    assert apply(table, body).failed == set()
            message = table.message(tid)
            outcomes.append(
                (
                    message["state"],
                    message["conflict"],
                    message["final_codes"],
                    message.get("sent_at"),
                    message["carrier"],
                    [e["code"] for e in message["history"]],
                )
            )
    assert {o[0] for o in outcomes} == {final}
    assert {o[1] for o in outcomes} == {conflict}
    assert len({repr(o) for o in outcomes}) == 1  # identical facts and history whatever the order


def test_duplicates_change_nothing(table):
    tid = f"T-{uuid.uuid4()}"
    body = sample("sms_mt_n201.xml", tid)
    assert apply(table, body, body, body).failed == set()  # three in one batch
    first = list(table.query(f"MSG#{tid}"))
    for _ in range(5):  # and five more deliveries, one by one
        assert apply(table, body).failed == set()
    assert list(table.query(f"MSG#{tid}")) == first  # every item exactly as it was
    assert [item["sk"].split("#")[0] for item in first] == ["EVT", "RANK"]


def test_reformatted_retry_is_the_same_event(table):
    tid = f"T-{uuid.uuid4()}"
    body = sample("sms_mt_n202.xml", tid)
    apply(table, body, body.replace(b"\n", b"\r\n").replace(b"    ", b"\t"))
    assert len(table.history(f"MSG#{tid}")) == 1


def test_late_lower_event_fills_in_missing_facts(table):
    tid = f"T-{uuid.uuid4()}"
    apply(table, sample("mms_mt_n102.xml", tid))
    assert "sent_at" not in table.message(tid)
    assert table.message(tid)["sent_as"] == "MMS"
    apply(table, sample("mms_mt_n101.xml", tid))
    message = table.message(tid)
    assert message["state"] == "DELIVERED"
    assert message["sent_at"] == "2024-02-06T14:14:37.000000Z"


def test_open_messages_are_findable_until_final(table):
    tid = f"T-{uuid.uuid4()}"
    apply(table, sample("mms_mt_n101.xml", tid))
    assert tid in {m["tracking_id"] for m in table.open_messages(older_than="9999")}
    assert tid not in {m["tracking_id"] for m in table.open_messages(older_than="2000")}
    apply(table, sample("mms_mt_e102.xml", tid))
    assert tid not in {m["tracking_id"] for m in table.open_messages(older_than="9999")}


def test_templates(table):
    apply(table, sample("mms_mt_n003.xml"))
    assert table.template("51876")["state"] == "READY"
    e003 = sample("mms_mt_e003.xml")
    apply(table, e003)
    broken = table.template(_field(e003, "MMSID"))
    assert broken["state"] == "BROKEN"
    assert broken["videoname"] == _field(e003, "VIDEONAME")
    apply(table, sample("mms_mt_n003.xml").replace(b"51876", _field(e003, "MMSID").encode()))
    assert table.template(_field(e003, "MMSID"))["state"] == "BROKEN"  # a broken template stays broken


def test_inbound_messages_by_receiver_and_sender(table):
    assert apply(table, sample("sms_mo_n211.xml"), sample("mms_mo_n401.xml")).failed == set()
    sms = next(table.query("FROM#" + _field(sample("sms_mo_n211.xml"), "FROM"), index="gsi2"))
    assert sms["origin"] == "SMS_MO"
    assert sms["text"]
    pk = "IN#MMS_MO#" + _field(sample("mms_mo_n401.xml"), "TRACKINGID")
    mms = next(
        table.query(inbound_to("63184", inbound_shard(pk)), index="gsi1", sk_prefix="2024-02-06T19:26:08")
    )
    assert mms["pk"] == pk
    assert mms["origin"] == "MMS_MO"
    assert len(mms["files"]) == 2
    assert mms["raw_key"].startswith("raw/")


def test_opt_out_and_stop_suppress_and_a_later_opt_in_lifts(table):
    apply(table, sample("sub_n302.xml"))
    mobile = _field(sample("sub_n302.xml"), "MOBILE")
    assert table.suppressed(mobile)
    apply(table, sample("sub_n301.xml"))  # the opt-in two days before the opt-out, arriving late
    assert table.suppressed(mobile)
    stop = (
        b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>15555550100</FROM><TO>47215</TO>"
        b"<TEXT> stop </TEXT><TRANSACTIONID>x1</TRANSACTIONID>"
        b"<RECEIVED>2026-01-01T00:00:00Z</RECEIVED></POSTBACK>"
    )
    apply(table, stop)
    assert table.suppressed("15555550100")
    opt_in = (
        b"<POSTBACK><ORIGIN>SUB</ORIGIN><CODE>N301</CODE><MOBILE>15555550100</MOBILE><CAMPAIGNID>9</CAMPAIGNID>"
        b"<TIMESTAMP>2026-02-01T00:00:00Z</TIMESTAMP></POSTBACK>"
    )
    apply(table, opt_in)
    assert not table.suppressed("15555550100")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><POSTBACK>&b;</POSTBACK>',
            "entities",
        ),
        (b'<?xml version="1.0"?><!DOCTYPE p SYSTEM "file:///etc/passwd"><POSTBACK/>', "doctype"),
        (b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN>", "not-well-formed"),
        (b"\xff\xfe<POSTBACK/>", None),
        (b"<RESPONSE><STATUS>Success</STATUS></RESPONSE>", "wrong-root"),
        (b'{"origin": "MMS_MT"}', None),
        (b"<POSTBACK><CODE>N101</CODE></POSTBACK>", "no-origin"),
        (b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE></POSTBACK>", "missing-key"),
        (b"<a>" * 100 + b"</a>" * 100, "too-deep"),
    ],
)
def test_hostile_or_broken_bodies_are_quarantined_and_acknowledged(table, body, reason):
    outcome = apply(table, body)
    assert outcome.failed == set()
    (quarantined,) = outcome.quarantined
    if reason:
        assert quarantined.reason == reason
    item = table.get(f"QUARANTINE#{hashlib.sha256(body).hexdigest()}", "Q")
    assert item["reason"] == quarantined.reason
    assert item["raw_key"] == f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    listed = {q["sha256"] for q in table.query("QUARANTINE", index="gsi1")}
    assert hashlib.sha256(body).hexdigest() in listed


def test_a_message_that_is_not_an_envelope_is_quarantined(table):
    bad = {"messageId": "m-1", "body": "hello"}
    outcome = consume([bad], table=table, fetch=lambda key: b"", now=NOW)
    assert outcome.failed == set()
    assert outcome.quarantined[0].reason == "not-an-envelope"


def test_body_travelling_by_key_is_read_from_the_archive(table, aws_stack, aws_clients):
    tid = f"T-{uuid.uuid4()}"
    body = sample("sms_mt_n201.xml", tid)
    key = f"raw/{hashlib.sha256(body).hexdigest()}.xml"
    bucket = aws_stack.buckets()["ArchiveBucket"].name
    aws_clients["s3"].put_object(Bucket=bucket, Key=key, Body=body)
    fetched = []

    def fetch(k):
        fetched.append(k)
        return aws_clients["s3"].get_object(Bucket=bucket, Key=k)["Body"].read()

    assert consume([record(body, inline=False, key=key)], table=table, fetch=fetch, now=NOW).failed == set()
    assert fetched == [key]
    assert table.message(tid)["state"] == "SENT"


def test_unreadable_archive_fails_the_record_for_retry(table):
    def fetch(key):
        raise OSError("S3 is down")

    r = record(sample("sms_mt_n201.xml", "T-x"), inline=False)
    assert consume([r], table=table, fetch=fetch, now=NOW).failed == {r["messageId"]}


def test_dynamodb_failure_fails_the_batch_and_a_retry_loses_nothing(consumer, table):
    tids = [f"T-{uuid.uuid4()}" for _ in range(4)]
    event = {"Records": [record(sample("sms_mt_n201.xml", t)) for t in tids]}
    client = consumer.module.CONSUMER.table._dynamodb
    with (
        aws_faults.inject(client, "BatchWriteItem", rate=1.0, status=400, code="ThrottlingException"),
        pytest.raises(BatchProcessingError, match="All records failed"),
    ):
        consumer.invoke(event)  # every record failed: the invocation fails and SQS delivers them all again
    assert all(table.message(t) is None for t in tids)
    assert consumer.invoke(event) == {"batchItemFailures": []}
    assert [table.message(t)["state"] for t in tids] == ["SENT"] * 4


def test_handler_reports_only_failed_records(consumer, table, aws_stack):
    good = record(sample("sms_mt_n201.xml", f"T-{uuid.uuid4()}"))
    broken = record(b"<not-a-postback/>")
    unreadable = record(sample("sms_mt_n201.xml", f"T-{uuid.uuid4()}"), inline=False, key="raw/missing.xml")
    response = consumer.invoke({"Records": [good, broken, unreadable]})
    assert response == {"batchItemFailures": [{"itemIdentifier": unreadable["messageId"]}]}


def _field(body: bytes, name: str) -> str:
    return re.search(rf"<{name}>([^<]*)</{name}>".encode(), body)[1].decode()


def test_unprocessed_items_fail_only_the_records_that_needed_them(consumer, table):
    keep = [f"T-keep-{uuid.uuid4()}" for _ in range(3)]
    drop = [f"T-drop-{uuid.uuid4()}" for _ in range(2)]
    event = {"Records": [record(sample("sms_mt_n201.xml", t)) for t in keep + drop]}
    client = consumer.module.CONSUMER.table._dynamodb
    held = {"items": [], "all": False}

    def hold_back(params, **_):  # DynamoDB accepts part of a batch and returns the rest as unprocessed
        requests = next(iter(params["RequestItems"].values()))
        held["items"] = [r for r in requests if "T-drop-" in r["PutRequest"]["Item"]["pk"]["S"]]
        held["all"] = len(held["items"]) == len(requests)
        if not held["all"]:
            requests[:] = [r for r in requests if r not in held["items"]]

    def nothing_processed(request, **_):  # a retry of held-back items only: none of them gets written
        if held["all"]:
            body = json.dumps({"UnprocessedItems": {table.name: held["items"]}}).encode()
            return AWSResponse(
                request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, StaticBody(body)
            )
        return None

    def report(parsed, **_):
        parsed["UnprocessedItems"] = {table.name: list(held["items"])} if held["items"] else {}

    hooks = [
        ("before-parameter-build.dynamodb.BatchWriteItem", hold_back),
        ("before-send.dynamodb.BatchWriteItem", nothing_processed),
        ("after-call.dynamodb.BatchWriteItem", report),
    ]
    for name, hook in hooks:
        client.meta.events.register(name, hook, unique_id=f"test-{hook.__name__}")
    try:
        response = consumer.invoke(event)
    finally:
        for name, hook in hooks:
            client.meta.events.unregister(name, unique_id=f"test-{hook.__name__}")
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {r["messageId"] for r in event["Records"][3:]}
    assert [table.message(t)["state"] for t in keep] == ["SENT"] * 3
    assert all(table.message(t) is None for t in drop)
    retry = {"Records": [r for r in event["Records"] if r["messageId"] in failed]}
    assert consumer.invoke(retry) == {"batchItemFailures": []}
    assert [table.message(t)["state"] for t in drop] == ["SENT"] * 2


def test_stale_messages_are_counted_once_each_and_final_ones_leave_the_index(moto_server, aws_stack, table):
    stale = local_stack.load_functions(aws_stack, moto_server.endpoint_url)["StaleMessagesFunction"]
    open_tid, final_tid, both_tid = (f"T-{name}-{uuid.uuid4()}" for name in ("open", "final", "both"))
    apply(table, sample("mms_mt_n101.xml", open_tid), sample("mms_mt_n101.xml", final_tid))  # sent in 2024
    apply(table, sample("mms_mt_n102.xml", final_tid))
    ledger = {"tracking_id": both_tid, "accepted_at": "2024-02-06T14:14:00.000000Z", "request_id": "r-1"}
    table.put_all(outbound_items(ledger))  # the sender's SUBMITTED marker...
    apply(table, sample("mms_mt_n101.xml", both_tid))  # ...and the SENT report: two markers, one message

    def indexed():
        shards = (table.query(f"OPEN#{n}", index="gsi1") for n in range(8))
        return [marker["tracking_id"] for shard in shards for marker in shard]

    assert {open_tid, final_tid} <= set(indexed())  # the final one's SENT marker is still on the index...
    assert indexed().count(both_tid) == 2
    listed = [m["tracking_id"] for m in table.open_messages(older_than="9999")]
    assert open_tid in listed
    assert final_tid not in listed
    assert listed.count(both_tid) == 1  # once, by its oldest marker
    result = stale.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    counted = [m["tracking_id"] for m in table.open_messages(older_than=result["cutoff"])]
    assert result["stale"] == len(counted) == len(set(counted))
    assert {open_tid, both_tid} <= set(counted)
    assert open_tid in indexed()
    assert final_tid not in indexed()  # ...until the stale check takes it off


@pytest.mark.parametrize("reports_first", [True, False], ids=["reports-first", "record-first"])
def test_reports_and_the_senders_record_join_in_either_order(table, reports_first):
    tid = f"T-join-{uuid.uuid4()}"
    ledger = {"tracking_id": tid, "accepted_at": "2024-02-06T14:14:00.000000Z", "request_id": f"r-{tid}"}
    steps = [
        lambda: apply(table, sample("mms_mt_n102.xml", tid), sample("mms_mt_n101.xml", tid)),
        lambda: table.put_all(outbound_items(ledger)),
    ]
    for step in steps if reports_first else steps[::-1]:
        step()
    message = table.message(tid)
    assert message["state"] == "DELIVERED"  # the SUBMITTED marker never moves it back
    assert message["request"]["request_id"] == f"r-{tid}"
    assert message["sent_at"] == "2024-02-06T14:14:37.000000Z"
    assert tid not in {m["tracking_id"] for m in table.open_messages(older_than="9999")}


def test_sample_sqs_event(consumer, table):
    event = json.loads(
        (Path(__file__).resolve().parents[2] / "events/consumer/postback-batch.json").read_text()
    )
    assert consumer.invoke(event) == {"batchItemFailures": []}
    assert table.message("U01TXzkwMDAwMQ==")["state"] == "DELIVERED"
    assert table.suppressed("13125550188")
