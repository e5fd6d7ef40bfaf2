"""The operator CLI (`python -m ops`) in-process against moto, on the template's table, bucket and queues:
state written by the real consumer, archived objects as the ingest stores them, replays fed back to the
consumer."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from local import stack as local_stack
from mmsbridge.core import envelope
from mmsbridge.core.times import iso
from mmsbridge.postbacks.consume import consume
from ops import replay as ops_replay
from ops import resources as ops_resources
from ops.cli import main
from ops.progress import Progress
from tests.conftest import SAMPLES, ingest_record

POSTBACKS = SAMPLES / "postbacks"
NOW = datetime.now(UTC).replace(microsecond=0)


# -- fixtures and helpers ------------------------------------------------------------------------------------
@pytest.fixture
def queue(aws_clients, names):
    """The template's postback queue, emptied first (other tests send to it too)."""
    drain(aws_clients["sqs"], names["queue"])
    return names["queue"]


def drain(sqs, url: str) -> list[dict]:
    messages = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages"
    ):
        messages += batch
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


def sample(name: str, **fields: str) -> bytes:
    body = (POSTBACKS / name).read_bytes()
    for field, value in fields.items():
        body = re.sub(rf"<{field}>[^<]*</{field}>".encode(), f"<{field}>{value}</{field}>".encode(), body)
    return body


def archive(s3, bucket: str, body: bytes, *, received_at: datetime | None, request_id: str = "req-1") -> str:
    """The object the ingest stores (ReceivedPostback.archive_key / archive_metadata)."""
    sha = hashlib.sha256(body).hexdigest()
    key = f"raw/{sha}.xml"
    metadata = {
        "source-ip": "34.198.230.58",
        "request-id": request_id,
        "content-type": "text/xml",
        "sha256": sha,
    }
    if received_at is not None:
        metadata["received-at"] = received_at.isoformat()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=metadata)
    return key


def apply(table, *bodies: bytes, received_at: datetime = NOW, quarantined: int = 0) -> None:
    outcome = consume([ingest_record(b, received_at) for b in bodies], table=table, fetch=lambda key: b"")
    assert outcome.failed == set(), outcome.errors
    assert len(outcome.quarantined) == quarantined, outcome.quarantined


def consume_messages(table, s3, bucket: str, messages: list[dict]) -> None:
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
    fetch = lambda key: s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # noqa: E731
    outcome = consume(records, table=table, fetch=fetch)
    assert outcome.failed == set(), outcome.errors


def unique_digits(n: int) -> str:
    return "".join(random.choice("0123456789") for _ in range(n))


def us_number(area: str) -> str:
    """A random valid US number in `area`: the exchange starts 2-9, as the numbering plan requires."""
    return f"1{area}{random.choice('23456789')}{unique_digits(6)}"


def provider_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


# -- message -------------------------------------------------------------------------------------------------
def test_message_shows_state_facts_and_history_in_order(cli, table):
    tid = f"T-{uuid.uuid4()}"
    n101, n102 = sample("mms_mt_n101.xml", TRACKINGID=tid), sample("mms_mt_n102.xml", TRACKINGID=tid)
    apply(table, n102)  # the delivery report first: history is still in provider-time order
    apply(table, n101)

    code, out, _ = cli("--json", "message", tid)
    assert code == 0
    document = json.loads(out)
    assert document["found"] is True
    assert (document["state"], document["state_code"]) == ("DELIVERED", "N102")
    assert document["sent_at"] == "2024-02-06T14:14:37.000000Z"
    assert (document["carrier"], document["sent_as"]) == ("0001470", "MMS")
    assert document["conflict"] is False
    assert document["terminal_codes"] == ["N102"]
    assert [e["code"] for e in document["history"]] == ["N101", "N102"]
    assert [e["state"] for e in document["history"]] == ["SENT", "DELIVERED"]
    assert [e["raw_key"] for e in document["history"]] == [
        f"raw/{hashlib.sha256(b).hexdigest()}.xml" for b in (n101, n102)
    ]
    assert document["history"][0]["timestamp"] < document["history"][1]["timestamp"]

    code, text, _ = cli("message", tid)
    assert code == 0
    assert "DELIVERED (N102)" in text
    assert "2024-02-06T14:14:37.000000Z" in text
    lines = text.splitlines()
    n101_line = next(i for i, line in enumerate(lines) if " N101 " in line)
    n102_line = next(i for i, line in enumerate(lines) if " N102 " in line and "raw/" in line)
    assert n101_line < n102_line
    assert f"raw/{hashlib.sha256(n101).hexdigest()}.xml" in lines[n101_line]


def test_message_with_two_different_final_reports_is_a_conflict(cli, table):
    tid = f"T-{uuid.uuid4()}"
    apply(
        table, *(sample(n, TRACKINGID=tid) for n in ("mms_mt_n101.xml", "mms_mt_e102.xml", "mms_mt_n102.xml"))
    )
    code, out, _ = cli("message", tid, "--json")  # --json after the command works too
    document = json.loads(out)
    assert code == 0
    assert document["state"] == "DELIVERED"
    assert document["conflict"] is True
    assert document["terminal_codes"] == ["E102", "N102"]
    assert [e["code"] for e in document["history"]] == ["N101", "N102", "E102"]
    assert document["history"][2]["failure_reason"] == "Expired"
    code, text, _ = cli("message", tid)
    assert "conflict" in text
    assert "yes: final codes E102, N102" in text


def test_message_shows_the_senders_record_before_any_report(cli, aws_clients, names):
    tid = f"T-{uuid.uuid4()}"
    request = {  # MSG#<trackingid> REQUEST: the sender's record (state_writes' key design)
        "pk": f"MSG#{tid}",
        "sk": "REQUEST",
        "type": "request",
        "request_id": "order-1234",
        "action": "sendSMS",
        "accepted_at": "2026-11-25T10:00:00.000000Z",
    }
    aws_clients["dynamodb"].put_item(TableName=names["table"], Item={k: {"S": v} for k, v in request.items()})
    code, out, _ = cli("--json", "message", tid)
    assert code == 0
    document = json.loads(out)
    assert document["state"] is None
    assert document["history"] == []
    assert document["sender"] == {
        "accepted_at": "2026-11-25T10:00:00.000000Z",
        "action": "sendSMS",
        "request_id": "order-1234",
    }
    text = cli("message", tid)[1]
    assert "none yet" in text
    assert re.search(r"sender request_id +order-1234\n", text)
    assert "history: 0 events" in text


def test_unknown_message_exits_1(cli):
    code, out, err = cli("message", "T-never-seen")
    assert code == 1
    assert out == ""
    assert "no message with TRACKINGID T-never-seen" in err
    code, out, _ = cli("--json", "message", "T-never-seen")
    assert code == 1
    assert json.loads(out) == {"found": False, "tracking_id": "T-never-seen"}


# -- inbound -------------------------------------------------------------------------------------------------
def test_inbound_by_receiver_and_sender_newest_first_within_range(cli, table):
    to, sender = "8" + unique_digits(5), us_number("415")
    base = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    times = [base, base + timedelta(hours=1), base + timedelta(hours=2)]
    for i, moment in enumerate(times):
        body = (
            f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>{sender}</FROM><TO>{to}</TO>"
            f"<TEXT>message {i}\x9b2J</TEXT><RECEIVED>{provider_time(moment)}</RECEIVED>"
            f"<TRANSACTIONID>tx-{uuid.uuid4()}</TRANSACTIONID></POSTBACK>"
        ).encode()
        apply(table, body)
    mms = sample(
        "mms_mo_n401.xml", TO=to, FROM="16305550153", TRACKINGID=f"MMS_MO_{uuid.uuid4().hex[:8]}"
    )  # 2024: older than the SMS
    apply(table, mms)

    code, out, _ = cli("--json", "inbound", "--to", to)
    assert code == 0
    document = json.loads(out)
    assert [m["text"] for m in document["messages"]] == [
        "message 2\x9b2J",
        "message 1\x9b2J",
        "message 0\x9b2J",
        None,
    ]
    assert document["messages"][0]["time"] == iso(times[2])
    assert document["messages"][3]["origin"] == "MMS_MO"
    assert document["messages"][3]["subject"] == "Latte art entry"
    assert document["messages"][3]["keyword"] == "LATTE"
    assert len(document["messages"][3]["files"]) == 2

    _, out, _ = cli("--json", "inbound", "--to", to, "--limit", "2")
    assert [m["text"] for m in json.loads(out)["messages"]] == ["message 2\x9b2J", "message 1\x9b2J"]

    # The sender as a person types it; stored in the provider's format. --since inclusive, --until exclusive.
    pretty = f"+1 ({sender[1:4]}) {sender[4:7]}-{sender[7:]}"
    _, out, _ = cli("--json", "inbound", "--from", pretty, "--since", iso(times[1]), "--until", iso(times[2]))
    document = json.loads(out)
    assert [m["text"] for m in document["messages"]] == ["message 1\x9b2J"]
    assert document["messages"][0]["from"] == sender

    code, text, _ = cli("inbound", "--to", to, "--since", "2025-05-01")
    assert code == 0
    assert "3 (newest first" in text
    assert "message 2\\x9b2J" in text  # a terminal control character (CSI) in an SMS is shown, not obeyed
    assert "\x9b" not in text
    assert "Latte art entry" not in text  # the 2024 MMS is before --since


def test_inbound_without_a_number_lists_every_numbers_across_days(cli, table):
    def sms(to: str, sender: str, moment: datetime, text: str) -> bytes:
        return (
            f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>{sender}</FROM><TO>{to}</TO>"
            f"<TEXT>{text}</TEXT><RECEIVED>{provider_time(moment)}</RECEIVED>"
            f"<TRANSACTIONID>tx-{uuid.uuid4()}</TRANSACTIONID></POSTBACK>"
        ).encode()

    # A UTC midnight of its own (2019), so no other test's messages fall in the range.
    midnight = datetime(2019, 1, 1, tzinfo=UTC) + timedelta(days=int(unique_digits(3)))
    moments = [
        midnight - timedelta(minutes=30),
        midnight + timedelta(minutes=10),
        midnight + timedelta(hours=2),
    ]
    numbers = [("8" + unique_digits(5), us_number("415")) for _ in moments]
    for (to, sender), moment, text in zip(numbers, moments, ("first", "second", "third"), strict=True):
        apply(table, sms(to, sender, moment, text))

    since, until = iso(midnight - timedelta(hours=1)), iso(midnight + timedelta(hours=3))
    code, out, _ = cli("--json", "inbound", "--since", since, "--until", until)
    assert code == 0
    document = json.loads(out)
    assert [m["text"] for m in document["messages"]] == ["third", "second", "first"]  # across two UTC days
    assert [m["to"] for m in document["messages"]] == [to for to, _ in numbers[::-1]]
    assert document["to"] is None
    assert document["from"] is None
    _, out, _ = cli("--json", "inbound", "--since", since, "--until", iso(moments[2]), "--limit", "1")
    assert [m["text"] for m in json.loads(out)["messages"]] == ["second"]  # --until exclusive, --limit

    # Without --since: the last days up to now.
    recent = datetime.now(UTC) - timedelta(minutes=5)
    to, sender = "8" + unique_digits(5), us_number("415")
    apply(table, sms(to, sender, recent, "just now"))
    code, text, _ = cli("inbound", "--limit", "500")
    assert code == 0
    window = re.search(r"inbound messages to any number from (\S+) until now", text)
    assert window, text.splitlines()[0]  # it says which window it looked at
    looked_from = datetime.fromisoformat(window.group(1))
    assert abs(looked_from - (datetime.now(UTC) - timedelta(days=7))) < timedelta(minutes=5)
    code, out, _ = cli("--json", "inbound", "--limit", "1")
    assert datetime.fromisoformat(json.loads(out)["since"]) - looked_from < timedelta(minutes=5)
    assert f"to {to}" in text
    assert "just now" in text
    assert "text     first" not in text  # 2019: long before the default window


def test_inbound_merges_every_shard_and_the_unsharded_partitions_older_tables_hold(
    cli, table, aws_clients, names
):
    """A surge to one number lands on several shards (TO#<number>#<shard>, INDAY#<date>#<shard>); messages
    stored before the sharding are under TO#<number> and INDAY#<date>. Both listings read them all, newest
    first, and --limit is exact."""
    to = "8" + unique_digits(5)
    # A UTC day of its own (2010-2012), so no other test's messages fall in it.
    day = datetime(2010, 1, 1, tzinfo=UTC) + timedelta(days=int(unique_digits(3)))
    ids = [f"tx-{uuid.uuid4()}" for _ in range(24)]
    bodies = [
        (
            f"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>{us_number('415')}</FROM><TO>{to}</TO>"
            f"<TEXT>vote {n}</TEXT><RECEIVED>{provider_time(day + timedelta(minutes=7 * n))}</RECEIVED>"
            f"<TRANSACTIONID>{identifier}</TRANSACTIONID></POSTBACK>"
        ).encode()
        for n, identifier in enumerate(ids)
    ]
    apply(table, *bodies)
    items = [table.get(f"IN#SMS_MO#{identifier}", "MSG") for identifier in ids]
    assert len({item["gsi1pk"] for item in items}) > 1  # several shards
    assert all(item["gsi3pk"].startswith(f"INDAY#{day.date()}#") for item in items)
    legacy = (10, 23)  # one in the middle, and the newest: written as a table before the sharding holds it
    for n in legacy:
        aws_clients["dynamodb"].update_item(
            TableName=names["table"],
            Key={"pk": {"S": f"IN#SMS_MO#{ids[n]}"}, "sk": {"S": "MSG"}},
            UpdateExpression="SET gsi1pk = :to, gsi3pk = :day",
            ExpressionAttributeValues={":to": {"S": f"TO#{to}"}, ":day": {"S": f"INDAY#{day.date()}"}},
        )
    newest_first = [f"vote {n}" for n in reversed(range(24))]

    _, out, _ = cli("--json", "inbound", "--to", to, "--limit", "100")
    assert [m["text"] for m in json.loads(out)["messages"]] == newest_first
    _, out, _ = cli("--json", "inbound", "--to", to, "--limit", "5")  # the newest, a legacy one, among them
    assert [m["text"] for m in json.loads(out)["messages"]] == newest_first[:5]

    since, until = iso(day), iso(day + timedelta(days=1))
    _, out, _ = cli("--json", "inbound", "--since", since, "--until", until, "--limit", "100")
    assert [m["text"] for m in json.loads(out)["messages"]] == newest_first
    _, out, _ = cli("--json", "inbound", "--since", since, "--until", until, "--limit", "5")
    document = json.loads(out)
    assert [m["text"] for m in document["messages"]] == newest_first[:5]
    assert document["count"] == 5


# -- quarantine ----------------------------------------------------------------------------------------------
def test_quarantine_lists_newest_first_and_shows_raw_bytes(cli, table, aws_clients, names):
    s3 = aws_clients["s3"]
    marker = uuid.uuid4().hex.encode()
    broken = b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><TEXT>" + marker + b"\xff\xfe caf\xc3\xa9"
    wrong_root = b"<RESPONSE><STATUS>" + marker + b"</STATUS></RESPONSE>"
    first_seen = datetime(2021, 6, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=random.randrange(10_000))
    for body, moment in ((broken, first_seen), (wrong_root, first_seen + timedelta(minutes=5))):
        archive(s3, names["bucket"], body, received_at=moment)
        apply(table, body, received_at=moment, quarantined=1)
    shas = [hashlib.sha256(b).hexdigest() for b in (wrong_root, broken)]  # newest first

    window = ["--since", iso(first_seen), "--until", iso(first_seen + timedelta(minutes=6))]
    code, out, _ = cli("--json", "quarantine", *window)
    assert code == 0
    listed = json.loads(out)["postbacks"]
    assert [q["sha256"] for q in listed] == shas
    assert [q["reason"] for q in listed] == ["wrong-root", "invalid-utf8"]
    assert listed[1]["first_seen"] == iso(first_seen)
    assert listed[1]["raw_key"] == f"raw/{shas[1]}.xml"
    _, out, _ = cli("--json", "quarantine", *window, "--limit", "1")
    assert [q["sha256"] for q in json.loads(out)["postbacks"]] == shas[:1]
    code, text, _ = cli("quarantine", *window)
    assert "invalid-utf8" in text
    assert shas[0] in text

    code, out, err = cli("quarantine", "--show", shas[1].upper())
    assert code == 0
    assert out == (broken.decode("utf-8", errors="replace") + "\n")  # the bytes, never parsed
    assert "\ufffd\ufffd caf\u00e9" in out
    assert "invalid-utf8" in err
    code, out, _ = cli("--json", "quarantine", "--show", shas[1])
    document = json.loads(out)
    assert base64.b64decode(document["body_b64"]) == broken
    assert document["reason"] == "invalid-utf8"

    assert cli("quarantine", "--show", "0" * 64)[0] == 1
    code, _, err = cli("quarantine", "--show", "not-a-hash")
    assert code == 2
    assert "64 hexadecimal digits" in err


# -- stale ---------------------------------------------------------------------------------------------------
def test_stale_lists_only_open_messages_older_than_the_threshold(cli, table):
    old, recent, finished = (f"T-{uuid.uuid4()}" for _ in range(3))
    three_hours_ago, ten_minutes_ago = NOW - timedelta(hours=3), NOW - timedelta(minutes=10)
    apply(table, sample("sms_mt_n201.xml", TRACKINGID=old, TIMESTAMP=provider_time(three_hours_ago)))
    apply(table, sample("sms_mt_n201.xml", TRACKINGID=recent, TIMESTAMP=provider_time(ten_minutes_ago)))
    apply(
        table,
        sample("sms_mt_n201.xml", TRACKINGID=finished, TIMESTAMP=provider_time(three_hours_ago)),
        sample("sms_mt_n202.xml", TRACKINGID=finished, TIMESTAMP=provider_time(ten_minutes_ago)),
    )
    code, out, _ = cli("--json", "stale", "--hours", "1")
    assert code == 0
    document = json.loads(out)
    stale = {m["tracking_id"]: m for m in document["messages"]}
    assert old in stale
    assert recent not in stale
    assert finished not in stale
    assert stale[old]["state"] == "SENT"
    assert stale[old]["age_hours"] == pytest.approx(3, abs=0.2)
    assert document["hours"] == 1
    assert document["count"] == len(document["messages"])

    code, text, _ = cli("stale", "--hours", "0.5")
    assert code == 0
    assert old in text
    assert recent not in text
    assert cli("stale", "--hours", "0")[0] == 2


# -- suppression ---------------------------------------------------------------------------------------------
def test_suppression_since_when_and_why(cli, table):
    mobile = us_number("312")
    pretty = f"+1 {mobile[1:4]} {mobile[4:7]} {mobile[7:]}"
    code, out, _ = cli("--json", "suppression", pretty)
    assert code == 0
    assert json.loads(out)["suppressed"] is False
    assert "no opt-out on record" in cli("suppression", mobile)[1]

    apply(table, sample("sub_n302.xml", MOBILE=mobile))  # 2024-02-08T17:42:11-05
    code, out, _ = cli("--json", "suppression", pretty)
    document = json.loads(out)
    assert code == 0
    assert document["mobile"] == mobile
    assert document["suppressed"] is True
    assert document["since"] == "2024-02-08T22:42:11.000000Z"
    assert document["code"] == "N302"
    assert "SUB N302" in document["source"]
    assert document["raw_key"].startswith("raw/")
    assert [(s["campaign_id"], s["subscribed"]) for s in document["subscriptions"]] == [("5307", False)]
    assert "SUPPRESSED since 2024-02-08T22:42:11.000000Z" in cli("suppression", mobile)[1]

    apply(table, sample("sub_n301.xml", MOBILE=mobile, TIMESTAMP="2024-04-01T00:00:00Z"))  # opted back in
    document = json.loads(cli("--json", "suppression", mobile)[1])
    assert document["suppressed"] is False
    assert document["since"] == "2024-04-01T00:00:00.000000Z"
    assert "opted back in" in cli("suppression", mobile)[1]


# -- replay --------------------------------------------------------------------------------------------------
def state_of(table, tracking_id: str) -> list[dict]:
    return list(table.query(f"MSG#{tracking_id}"))


def test_replay_by_key_sends_the_archived_bytes_and_changes_nothing_already_applied(
    cli, table, aws_clients, names, queue
):
    s3, sqs = aws_clients["s3"], aws_clients["sqs"]
    applied_before, never_applied = f"T-{uuid.uuid4()}", f"T-{uuid.uuid4()}"
    received = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    body_a = sample("sms_mt_n201.xml", TRACKINGID=applied_before)
    body_b = sample("sms_mt_n202.xml", TRACKINGID=never_applied)
    key_a = archive(s3, names["bucket"], body_a, received_at=received, request_id="apigw-a")
    key_b = archive(s3, names["bucket"], body_b, received_at=received, request_id="apigw-b")
    apply(table, body_a, received_at=received)  # the original delivery
    before = state_of(table, applied_before)
    assert state_of(table, never_applied) == []

    code, out, err = cli("--json", "replay", "--key", key_a, "--key", key_b, "--key", key_a)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["found"], summary["sent"], summary["failed"], summary["skipped"]) == (2, 2, 0, 0)
    assert "replaying 2/2" in err  # stderr is not a terminal: progress lines, not a bar

    messages = drain(sqs, queue)
    envelopes = sorted((envelope.decode(m["Body"]) for m in messages), key=lambda e: e.key != key_a)
    assert [e.key for e in envelopes] == [key_a, key_b]
    assert envelopes[0].body == body_a
    assert envelopes[0].sha256 == hashlib.sha256(body_a).hexdigest()
    assert envelopes[0].request_id == "replay:apigw-a"
    assert envelopes[0].source_ip == "34.198.230.58"
    assert datetime.fromisoformat(envelopes[0].received_at) == received

    for _ in range(2):  # replayed, and replayed again: the same state as applying once
        consume_messages(table, s3, names["bucket"], messages)
        assert state_of(table, applied_before) == before
        assert len([i for i in state_of(table, applied_before) if i["sk"].startswith("EVT#")]) == 1
    assert table.message(never_applied)["state"] == "DELIVERED"
    assert len(table.message(never_applied)["history"]) == 1

    code, out, err = cli("replay", "--key", "raw/" + "0" * 64 + ".xml")
    assert code == 1
    assert "found 1, sent 0, failed 0, skipped 1" in out
    assert "not found" in out

    # A bare SHA-256, as `quarantine` and `message` print it, names the archive key the ingest stored.
    sha_b = hashlib.sha256(body_b).hexdigest()
    code, out, _ = cli("--json", "replay", "--key", sha_b.upper(), "--key", key_b, "--dry-run")
    assert code == 0
    assert json.loads(out)["keys"] == [key_b]


def test_replay_by_time_range_selects_by_received_at(cli, table, aws_clients, names, queue, tmp_path):
    s3, sqs = aws_clients["s3"], aws_clients["sqs"]
    start = datetime(2020, 3, 1, tzinfo=UTC) + timedelta(days=random.randrange(1000))
    tids = {name: f"T-{uuid.uuid4()}" for name in ("before", "first", "second", "after", "undated")}
    moments = {
        "before": start - timedelta(seconds=1),
        "first": start,  # --since is inclusive
        "second": start + timedelta(hours=23),
        "after": start + timedelta(days=1),  # --until is exclusive
        "undated": None,  # no received-at: LastModified (now) decides
    }
    keys = {
        name: archive(
            s3, names["bucket"], sample("sms_mt_n201.xml", TRACKINGID=tids[name]), received_at=moment
        )
        for name, moment in moments.items()
    }
    window = ["--since", start.isoformat(), "--until", (start + timedelta(days=1)).isoformat()]

    code, out, _ = cli("replay", *window, "--dry-run")
    assert code == 0
    listed = [line for line in out.splitlines() if not line.startswith("#")]
    assert listed == [keys["first"], keys["second"]]  # in received order
    assert "would send 2" in out
    assert drain(sqs, queue) == []  # a dry run sends nothing
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(out)  # a dry run's output reads back as a keys file
    code, out, _ = cli("--json", "replay", "--keys-file", str(keys_file), "--dry-run")
    assert (code, json.loads(out)["keys"]) == (0, [keys["first"], keys["second"]])
    assert drain(sqs, queue) == []

    code, out, _ = cli("--json", "replay", *window)
    assert code == 0
    summary = json.loads(out)
    assert (summary["found"], summary["sent"], summary["failed"]) == (2, 2, 0)
    assert summary["listed"] >= 5
    messages = drain(sqs, queue)
    assert sorted(envelope.decode(m["Body"]).key for m in messages) == sorted([keys["first"], keys["second"]])
    consume_messages(table, s3, names["bucket"], messages)
    assert {name for name, tid in tids.items() if table.message(tid)} == {"first", "second"}


class FailEntries:
    """botocore event hooks on SendMessageBatch: an entry whose envelope names one of the keys is taken out
    of the request and answered in `Failed`, as SQS answers an entry it could not store."""

    def __init__(self, *, always: set[str], once: set[str]) -> None:
        self.always, self.once = always, set(once)
        self.attempts: dict[str, int] = {}

    def register(self, events) -> None:
        events.register("before-parameter-build.sqs.SendMessageBatch", self.before_parameter_build)
        events.register("before-call.sqs.SendMessageBatch", self.before_call)
        events.register("after-call.sqs.SendMessageBatch", self.after_call)

    def before_parameter_build(self, params, context, **_):
        kept, dropped = [], []
        for entry in params["Entries"]:
            key = json.loads(entry["MessageBody"])["key"]
            self.attempts[key] = self.attempts.get(key, 0) + 1
            if key in self.always or key in self.once:
                self.once.discard(key)
                dropped.append(entry["Id"])
            else:
                kept.append(entry)
        params["Entries"] = kept
        context["dropped"], context["nothing_left"] = dropped, not kept

    def before_call(self, context, model, **_):
        if context.get("nothing_left"):  # every entry failed: answer without a request
            return AWSResponse("http://sqs.invalid/", 200, {}, None), {"Successful": [], "Failed": []}
        return None

    def after_call(self, parsed, context, **_):
        for entry_id in context.pop("dropped", []):
            parsed.setdefault("Failed", []).append(
                {"Id": entry_id, "SenderFault": False, "Code": "InternalError", "Message": "injected fault"}
            )


def test_replay_retries_failed_entries_and_reports_the_ones_that_keep_failing(
    cli, aws_clients, names, queue, monkeypatch
):
    monkeypatch.setattr(ops_replay, "sleep", lambda seconds: None)
    s3, sqs = aws_clients["s3"], aws_clients["sqs"]
    keys = [
        archive(
            s3, names["bucket"], sample("sms_mt_n201.xml", TRACKINGID=f"T-{uuid.uuid4()}"), received_at=NOW
        )
        for _ in range(3)
    ]
    flaky, broken, fine = keys
    faults = FailEntries(always={broken}, once={flaky})
    session = boto3.Session()
    faults.register(session.events)

    code, out, _ = cli("replay", *(arg for key in keys for arg in ("--key", key)), session=session)
    assert code == 1
    assert "found 3, sent 2, failed 1, skipped 0" in out
    assert f"failed   {broken}: InternalError: injected fault" in out
    assert faults.attempts == {flaky: 2, broken: ops_replay.SEND_ATTEMPTS, fine: 1}
    sent = [envelope.decode(m["Body"]).key for m in drain(sqs, queue)]
    assert sorted(sent) == sorted([flaky, fine])  # the retried entry went exactly once


def test_replay_splits_batches_at_ten_entries_and_256_kib():
    small = [(f"k{i}", "x" * 100) for i in range(25)]
    assert [len(b) for b in ops_replay.batches(small)] == [10, 10, 5]
    large = [(f"k{i}", "x" * 150_000) for i in range(3)]  # two would exceed 256 KiB
    assert [len(b) for b in ops_replay.batches(large)] == [1, 1, 1]


def test_replay_usage_errors(cli):
    assert cli("replay")[0] == 2  # one of --since, --key, --keys-file
    code, _, err = cli("replay", "--key", "raw/x.xml", "--until", "2026-01-01")
    assert code == 2
    assert "--until goes with --since" in err
    code, _, err = cli("replay", "--since", "last tuesday")
    assert code == 2
    assert "not an ISO 8601 time" in err
    code, _, err = cli("replay", "--keys-file", "/nonexistent/keys.txt")
    assert code == 2
    assert "keys file" in err


# -- progress ------------------------------------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_hundred_otherwise():
    log = io.StringIO()
    with Progress("replaying", 250, stream=log) as progress:
        for _ in range(250):
            progress.advance()
    lines = log.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "replaying 100/250",
        "replaying 200/250",
        "replaying 250/250",
    ]
    assert all(line.endswith("/s)") for line in lines)

    terminal = Terminal()
    with Progress("replaying", 4, stream=terminal) as progress:
        progress.advance(4)
    assert terminal.getvalue().startswith("\rreplaying [")
    assert "] 4/4 (" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")


# -- where the resources come from ---------------------------------------------------------------------------
def test_without_an_endpoints_file_or_a_stack_it_says_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ops_resources, "DEFAULT_ENDPOINTS_FILE", tmp_path / "missing" / "endpoints.json")
    code = main(["message", "T-1"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "make run" in err
    assert "--stack NAME" in err
    assert "--endpoints-file PATH" in err

    assert main(["--endpoints-file", str(tmp_path / "nope.json"), "message", "T-1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["--endpoints-file", str(tmp_path / "bad.json"), "message", "T-1"]) == 2
    assert "not readable JSON" in capsys.readouterr().err
    assert main(["--stack", "s", "--endpoints-file", str(tmp_path / "bad.json"), "message", "T-1"]) == 2


def test_a_deployed_stack_is_found_by_its_outputs(monkeypatch, moto_server, aws_stack, names, table, capsys):
    """--stack against moto's CloudFormation: a tiny stack whose outputs carry the template's output names."""
    environment = local_stack.aws_environment(moto_server.endpoint_url, aws_stack.region)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    stack_name = f"ops-{uuid.uuid4().hex[:8]}"
    outputs = {
        "StateTableName": names["table"],
        "ArchiveBucketName": names["bucket"],
        "PostbackQueueUrl": names["queue"],
        "PostbackDLQUrl": names["dlq"],
    }
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    tid = f"T-{uuid.uuid4()}"
    apply(table, sample("sms_mt_n201.xml", TRACKINGID=tid))

    code = main(["--stack", stack_name, "--region", aws_stack.region, "--json", "message", tid])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out)["state"] == "SENT"

    code = main(["--stack", "no-such-stack", "message", tid])
    _, err = capsys.readouterr()
    assert code == 2
    assert "no-such-stack" in err
