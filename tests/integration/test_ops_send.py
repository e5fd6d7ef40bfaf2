"""The operator CLI's send-path commands (request, requests, unknown, send-dlq, resend) in-process against
moto, on the template's table and send queues: ledgers written by the sender's own store (SendLedger), DLQ
messages dead-lettered by its own SendQueue, re-driven requests claimed by the sender's own claim."""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from mmsbridge.aws.state_table import StateTable
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import SendStatus, accepted_fields, rejected_item, sha256_hex
from mmsbridge.sending.ledger_store import ClaimKind, SendLedger
from mmsbridge.sending.provider_xml import ProviderResult
from mmsbridge.sending.request import parse_send_request_json
from mmsbridge.sending.results import BatchReport, Disposition, RecordResult
from mmsbridge.sending.settle import SendQueue
from ops.cli import main
from tests.integration.test_ops_cli import apply, drain, sample

NOW = datetime.now(UTC).replace(microsecond=0)
STATUSES_REFUSED = ("ACCEPTED", "SENDING", "RETRY", "REJECTED", "SUPPRESSED")


# -- fixtures and helpers ------------------------------------------------------------------------------------
@pytest.fixture
def queues(aws_clients, names):
    """The send queue and its DLQ, emptied first: (sqs client, queue url, dlq url)."""
    sqs = aws_clients["sqs"]
    drain(sqs, names["send_queue"])
    drain(sqs, names["send_dlq"])
    return sqs, names["send_queue"], names["send_dlq"]


def sms(request_id: str, *, to: str = "13125550147", sender: str = "47215", **extra) -> str:
    return json.dumps(
        {"request_id": request_id, "action": "sendSMS", "to": to, "from": sender, "text": "hi", **extra}
    )


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


class Ledgers:
    """Ledgers as the sender writes them: its own claims and outcomes (SendLedger)."""

    def __init__(self, table: StateTable) -> None:
        self.table = table
        self.store = SendLedger(table)

    def claim(self, body: str, at: datetime):
        claim = self.store.claim(
            parse_send_request_json(body), body, now=at, lease_until=at.timestamp() + 60, resend_orphans=False
        )
        assert claim.kind is ClaimKind.CLAIMED, claim
        return claim

    def throttled(self, body: str, at: datetime) -> None:
        self.store.release(
            self.claim(body, at), at, outcome="throttled", code="E113", called=True, counter="throttled"
        )

    def final(self, body: str, status: SendStatus, at: datetime, fields: dict, *, code: str | None = None):
        outcome = status.value.lower()
        ledger = self.store.finish(
            self.claim(body, at), status, at, fields, outcome=outcome, called=True, code=code
        )
        assert ledger is not None
        return ledger

    def accepted(self, body: str, at: datetime, tracking_id: str) -> dict:
        result = ProviderResult(
            ok=True, tracking_id=tracking_id, to="13125550147", from_="47215", status_details="Queued"
        )
        ledger = self.final(body, SendStatus.ACCEPTED, at, accepted_fields(result, at))
        self.store.write_outbound(ledger, retention_days=0)
        return ledger

    def outcome_unknown(self, body: str, at: datetime) -> dict:
        fields = {
            "error_class": "TRANSIENT",
            "error_info": "read timeout after the request was sent",
            "transport_error": "read_timeout",
            "outcome_unknown_reason": "read timeout after the request was sent",
        }
        return self.final(body, SendStatus.OUTCOME_UNKNOWN, at, fields, code="read_timeout")

    def failed(
        self, body: str, at: datetime, *, transient_failures: int = 0, error_class: str = "PERMANENT"
    ) -> dict:
        fields = {
            "error_code": "E201",
            "error_class": error_class,
            "error_info": "Invalid phone number",
            "http_status": 200,
            "transient_failures": transient_failures or None,
        }
        return self.final(body, SendStatus.FAILED, at, fields, code="E201")

    def get(self, request_id: str) -> dict | None:
        return self.store.get(request_id)


@pytest.fixture
def ledgers(table):
    return Ledgers(table)


class Fault:
    """botocore event hooks: a call whose parameters match `when` is answered with an error (HTTP 500,
    code InternalError) instead of reaching moto; `calls` counts the matching ones."""

    def __init__(self, service: str, operation: str, when=lambda params: True, *, times: int | None = None):
        self.service, self.operation, self.when, self.times = service, operation, when, times
        self.calls = 0

    def session(self) -> boto3.Session:
        session = boto3.Session()
        event = f"{self.service}.{self.operation}"
        session.events.register(f"before-parameter-build.{event}", self.inspect)
        session.events.register(f"before-call.{event}", self.answer)
        return session

    def inspect(self, params, context, **_):
        failing = self.when(params) and (self.times is None or self.calls < self.times)
        context["fault"] = failing
        self.calls += failing

    def answer(self, context, **_):
        if not context.get("fault"):
            return None
        error = {"Error": {"Code": "InternalError", "Message": "injected fault"}}
        return AWSResponse("http://aws.invalid/", 500, {}, None), {
            **error,
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }


def window(start: datetime, end: datetime) -> list[str]:
    return ["--since", iso(start), "--until", iso(end)]


def past_day() -> datetime:
    """A day of its own in the past, so a test's listing window holds only its own requests."""
    return datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=random.randrange(3000))


# -- request -------------------------------------------------------------------------------------------------
def test_request_shows_an_accepted_request_and_the_message_it_became(cli, ledgers, table):
    request_id, tracking_id = new_id("order"), f"T-{uuid.uuid4()}"
    body = sms(request_id)
    ledgers.throttled(body, NOW - timedelta(minutes=2))
    ledgers.accepted(body, NOW - timedelta(minutes=1), tracking_id)
    apply(
        table,
        sample("mms_mt_n101.xml", TRACKINGID=tracking_id),
        sample("mms_mt_n102.xml", TRACKINGID=tracking_id),
    )

    code, out, _ = cli("--json", "request", request_id)
    assert code == 0
    document = json.loads(out)
    assert document["found"] is True
    assert (document["request_id"], document["key"], document["status"]) == (
        request_id,
        f"REQ#{request_id}",
        "ACCEPTED",
    )
    assert (document["action"], document["to"], document["from"]) == ("sendSMS", "13125550147", "47215")
    assert [a["outcome"] for a in document["attempts"]] == ["throttled", "accepted"]
    assert document["attempts"][0]["code"] == "E113"
    assert document["counts"] == {
        "claims": 2,
        "calls": 2,
        "throttled": 1,
        "transient_failures": 0,
        "account_errors": 0,
    }
    assert document["provider"]["tracking_id"] == tracking_id
    assert document["provider"]["accepted_at"] == iso(NOW - timedelta(minutes=1))
    assert document["provider"]["error_code"] is None
    assert document["body"] == body
    assert document["payload_sha256"] == sha256_hex(body)
    message = document["message"]
    assert (message["tracking_id"], message["state"], message["state_code"]) == (
        tracking_id,
        "DELIVERED",
        "N102",
    )
    assert [e["code"] for e in message["history"]] == ["N101", "N102"]
    assert message["sender"]["request_id"] == request_id

    code, text, _ = cli("request", request_id)
    assert code == 0
    assert text.startswith(f"send request {request_id}: ACCEPTED\n")
    assert "attempts: 2 logged" in text
    assert "counts          claims 2, calls 2, throttled 1, transient failures 0, account errors 0" in text
    assert re.search(r"\n  \S+Z +throttled +E113 +-\n  \S+Z +accepted +- +-\n", text)  # oldest first
    assert re.search(rf"tracking id +{tracking_id}\n", text)
    assert f"message {tracking_id}" in text  # rendered as `message` renders it
    assert "DELIVERED (N102)" in text
    assert text.index(" N101 ") < text.index(" N102 ")


def test_request_accepted_before_any_outbound_record_says_so(cli, ledgers):
    request_id, tracking_id = new_id("order"), f"T-{uuid.uuid4()}"
    body = sms(request_id)
    result = ProviderResult(ok=True, tracking_id=tracking_id)
    ledgers.final(body, SendStatus.ACCEPTED, NOW, accepted_fields(result, NOW))  # no write_outbound
    code, out, _ = cli("--json", "request", request_id)
    assert code == 0
    assert json.loads(out)["message"] is None
    assert "nothing under this TRACKINGID yet" in cli("request", request_id)[1]


def test_request_shows_why_a_request_was_not_sent(cli, ledgers, table):
    unknown_id, failed_id = new_id("unknown"), new_id("failed")
    ledgers.outcome_unknown(sms(unknown_id), NOW)
    code, out, _ = cli("--json", "request", unknown_id)
    document = json.loads(out)
    assert code == 0
    assert document["status"] == "OUTCOME_UNKNOWN"
    assert document["provider"]["outcome_unknown_reason"] == "read timeout after the request was sent"
    assert document["provider"]["transport_error"] == "read_timeout"
    assert document["message"] is None
    assert document["attempts"][-1]["outcome"] == "outcome_unknown"
    text = cli("request", unknown_id)[1]
    assert "OUTCOME_UNKNOWN" in text
    assert "may or may not have reached the provider" in text
    assert "resend REQUEST_ID --yes" in text
    assert "read timeout after the request was sent" in text

    ledgers.failed(sms(failed_id), NOW)
    text = cli("request", failed_id)[1]
    assert "FAILED" in text
    assert "E201" in text
    assert "PERMANENT" in text
    assert "Invalid phone number" in text

    # Refused with a usable request_id: under REQ#<id>, with each field's reason.
    rejected_id = new_id("rejected")
    bad = json.dumps({"request_id": rejected_id, "action": "sendSMS", "to": "12", "from": "47215"})
    SendLedger(table).record_rejected(
        rejected_item(bad, rejected_id, [("to", "is not a valid number"), ("text", "is required")], NOW)
    )
    code, out, _ = cli("--json", "request", rejected_id)
    document = json.loads(out)
    assert (code, document["status"]) == (0, "REJECTED")
    assert document["reasons"] == [
        {"field": "to", "reason": "is not a valid number"},
        {"field": "text", "reason": "is required"},
    ]
    text = cli("request", rejected_id)[1]
    assert "refused: 2 reason(s)" in text
    assert "is not a valid number" in text


def test_a_refused_body_without_a_request_id_is_found_by_its_sha256(cli, table):
    body = json.dumps({"action": "sendSMS", "to": "13125550147", "marker": uuid.uuid4().hex})
    digest = sha256_hex(body)
    SendLedger(table).record_rejected(rejected_item(body, None, [("request_id", "is required")], NOW))

    code, out, _ = cli("--json", "request", "--sha256", digest.upper())
    assert code == 0
    document = json.loads(out)
    assert document["request_id"] is None
    assert document["key"] == f"REJECTED#{digest}"
    assert document["reasons"] == [{"field": "request_id", "reason": "is required"}]
    assert document["body"] == body
    code, text, _ = cli("request", "--sha256", digest)
    assert code == 0
    assert f"send request (none; REJECTED#{digest}): REJECTED" in text


def test_unknown_request_exits_1_and_bad_arguments_exit_2(cli):
    code, out, err = cli("request", "never-sent")
    assert (code, out) == (1, "")
    assert "no send request with request_id never-sent" in err
    code, out, _ = cli("--json", "request", "never-sent")
    assert code == 1
    assert json.loads(out) == {"found": False, "request_id": "never-sent", "payload_sha256": None}
    assert cli("request", "--sha256", "0" * 64)[0] == 1

    code, _, err = cli("request", "--sha256", "not-a-hash")
    assert code == 2
    assert "64 hexadecimal digits" in err
    code, _, err = cli("request")
    assert code == 2
    assert "REQUEST_ID or --sha256" in err
    assert cli("request", "x", "--sha256", "0" * 64)[0] == 2


# -- requests, unknown ---------------------------------------------------------------------------------------
def test_requests_lists_one_status_newest_first_within_range(cli, ledgers, table):
    day = past_day()
    ids = [new_id("unknown") for _ in range(3)]
    for hour, request_id in enumerate(ids):
        ledgers.outcome_unknown(sms(request_id), day + timedelta(hours=hour))
    failed_id = new_id("failed")
    ledgers.failed(sms(failed_id), day + timedelta(hours=1))
    body = json.dumps({"action": "sendSMS", "marker": uuid.uuid4().hex})  # no request_id: by its hash
    SendLedger(table).record_rejected(
        rejected_item(body, None, [("request_id", "is required")], day + timedelta(hours=2))
    )
    whole_day = window(day, day + timedelta(days=1))

    code, out, _ = cli("--json", "requests", "--status", "OUTCOME_UNKNOWN", *whole_day)
    assert code == 0
    document = json.loads(out)
    assert document["status"] == "OUTCOME_UNKNOWN"
    assert [r["request_id"] for r in document["requests"]] == ids[::-1]  # newest first
    first = document["requests"][-1]
    assert first["at"] == iso(day)
    assert (first["to"], first["from"], first["action"]) == ("13125550147", "47215", "sendSMS")
    assert first["code"] == "read_timeout"
    assert first["detail"] == "read timeout after the request was sent"
    assert document["count"] == 3

    # `unknown` is the same worklist; --since inclusive, --until exclusive; --limit.
    _, out, _ = cli("--json", "unknown", *window(day + timedelta(hours=1), day + timedelta(hours=2)))
    assert [r["request_id"] for r in json.loads(out)["requests"]] == [ids[1]]
    _, out, _ = cli("--json", "unknown", *whole_day, "--limit", "2")
    assert [r["request_id"] for r in json.loads(out)["requests"]] == ids[:0:-1]

    _, out, _ = cli("--json", "requests", "--status", "failed", *whole_day)  # any casing
    assert [(r["request_id"], r["code"]) for r in json.loads(out)["requests"]] == [(failed_id, "E201")]
    _, out, _ = cli("--json", "requests", "--status", "REJECTED", *whole_day)
    rejected = json.loads(out)["requests"]
    assert [(r["request_id"], r["payload_sha256"]) for r in rejected] == [(None, sha256_hex(body))]
    assert rejected[0]["detail"] == "request_id: is required"

    code, text, _ = cli("unknown", *whole_day)
    assert code == 0
    assert text.startswith("OUTCOME_UNKNOWN send requests: 3 (newest first, at most 50)")
    assert text.index(ids[2]) < text.index(ids[1]) < text.index(ids[0])
    assert "resend REQUEST_ID --yes" in text
    text = cli("requests", "--status", "REJECTED", *whole_day)[1]
    assert f"sha256:{sha256_hex(body)[:16]}…" in text  # abbreviated in the table, whole in --json
    assert sha256_hex(body) not in text
    assert cli("requests", "--status", "SUPPRESSED", *whole_day)[1].startswith("SUPPRESSED send requests: 0")


def test_requests_takes_only_the_listed_statuses(cli):
    code, _, err = cli("requests", "--status", "ACCEPTED")
    assert code == 2
    assert "OUTCOME_UNKNOWN, FAILED, REJECTED, SUPPRESSED" in err
    assert "message TRACKINGID" in err
    assert cli("requests")[0] == 2


# -- resend --------------------------------------------------------------------------------------------------
def test_resend_puts_an_outcome_unknown_request_back_on_the_send_queue(cli, ledgers, queues):
    sqs, queue_url, _ = queues
    day, request_id = past_day(), new_id("unknown")
    body = sms(request_id)
    ledgers.outcome_unknown(body, day)
    assert request_id in cli("unknown", *window(day, day + timedelta(days=1)))[1]

    code, out, _ = cli("--json", "resend", request_id, "--yes")
    assert code == 0
    document = json.loads(out)
    assert (document["previous_status"], document["status"], document["resent"]) == (
        "OUTCOME_UNKNOWN",
        "RETRY",
        True,
    )
    assert document["queue_url"] == queue_url
    messages = drain(sqs, queue_url)
    assert [(m["MessageId"], m["Body"]) for m in messages] == [(document["message_id"], body)]

    ledger = ledgers.get(request_id)
    assert ledger["status"] == "RETRY"
    assert "gsi1pk" not in ledger
    assert "gsi1sk" not in ledger
    assert ledger["attempt_log"][-1]["outcome"] == "operator_resend"
    assert "from OUTCOME_UNKNOWN" in ledger["attempt_log"][-1]["detail"]
    assert request_id not in cli("unknown", *window(day, day + timedelta(days=1)))[1]  # off the worklist
    # The sender takes it like any RETRY: the next delivery claims it and may call the provider.
    assert ledgers.claim(body, NOW).kind is ClaimKind.CLAIMED


def test_resend_of_a_failed_request_gives_it_a_fresh_transient_budget(cli, ledgers, queues):
    sqs, queue_url, _ = queues
    request_id = new_id("failed")
    ledgers.failed(sms(request_id), NOW, transient_failures=5, error_class="TRANSIENT")
    code, out, _ = cli("resend", request_id, "--yes")
    assert code == 0
    assert f"resent {request_id}: FAILED -> RETRY" in out
    assert len(drain(sqs, queue_url)) == 1
    ledger = ledgers.get(request_id)
    assert (ledger["status"], ledger["transient_failures"]) == ("RETRY", 0)
    assert "reset (was 5)" in ledger["attempt_log"][-1]["detail"]


def test_resend_refuses_without_yes_and_for_other_statuses(cli, ledgers, table, queues):
    sqs, queue_url, _ = queues
    unknown_id = new_id("unknown")
    ledgers.outcome_unknown(sms(unknown_id), NOW)
    code, out, err = cli("resend", unknown_id)
    assert (code, out) == (2, "")
    assert "without --yes" in err
    assert "twice" in err  # the duplicate risk of an unknown outcome is spelled out
    assert ledgers.get(unknown_id)["status"] == "OUTCOME_UNKNOWN"

    others = {status: new_id(status.lower()) for status in STATUSES_REFUSED}
    ledgers.accepted(sms(others["ACCEPTED"]), NOW, f"T-{uuid.uuid4()}")
    ledgers.claim(sms(others["SENDING"]), NOW)
    ledgers.throttled(sms(others["RETRY"]), NOW)
    SendLedger(table).record_rejected(
        rejected_item(sms(others["REJECTED"]), others["REJECTED"], [("to", "is not valid")], NOW)
    )
    ledgers.final(sms(others["SUPPRESSED"]), SendStatus.SUPPRESSED, NOW, {"error_info": "opted out"})
    why = {
        "ACCEPTED": "send the message twice",
        "SENDING": "may be calling the provider",
        "RETRY": "already waiting",
        "REJECTED": "send a corrected request",
        "SUPPRESSED": "suppression list",
    }
    for status, request_id in others.items():
        before = ledgers.get(request_id)
        code, out, err = cli("resend", request_id, "--yes")
        assert code == 2, status
        assert f"its status is {status}" in err
        assert why[status] in err
        assert ledgers.get(request_id) == before  # nothing changed
        code, out, _ = cli("--json", "resend", request_id, "--yes")
        document = json.loads(out)
        assert (code, document["resent"], document["status"]) == (2, False, status)
        assert why[status] in document["refusal"]
    assert drain(sqs, queue_url) == []

    code, out, err = cli("resend", "never-sent", "--yes")
    assert (code, out) == (1, "")
    assert "no send request with request_id never-sent" in err


def test_resend_that_the_queue_refuses_puts_the_ledger_back(cli, ledgers, queues):
    sqs, queue_url, _ = queues
    day, request_id = past_day(), new_id("unknown")
    ledgers.outcome_unknown(sms(request_id), day)
    before = ledgers.get(request_id)
    fault = Fault("sqs", "SendMessage")

    code, out, err = cli("resend", request_id, "--yes", session=fault.session())
    assert code == 1
    assert fault.calls == 1
    assert "InternalError: injected fault" in err
    assert "back at OUTCOME_UNKNOWN" in err
    assert drain(sqs, queue_url) == []
    after = ledgers.get(request_id)
    assert after["status"] == "OUTCOME_UNKNOWN"
    assert (after["gsi1pk"], after["gsi1sk"]) == (before["gsi1pk"], before["gsi1sk"])  # on the worklist
    assert [e["outcome"] for e in after["attempt_log"][-2:]] == ["operator_resend", "operator_resend_undone"]
    assert request_id in cli("unknown", *window(day, day + timedelta(days=1)))[1]

    code, out, _ = cli("--json", "resend", request_id, "--yes")  # and it can be resent afterwards
    assert (code, json.loads(out)["resent"]) == (0, True)
    assert len(drain(sqs, queue_url)) == 1


def test_resend_changes_nothing_when_the_status_moved_meanwhile(cli, ledgers, aws_clients, names, queues):
    sqs, queue_url, _ = queues
    request_id = new_id("unknown")
    ledgers.outcome_unknown(sms(request_id), NOW)

    def accepted_meanwhile(**_):  # just before the CLI's conditional update
        aws_clients["dynamodb"].update_item(
            TableName=names["table"],
            Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "REQUEST"}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "ACCEPTED"}},
        )

    session = boto3.Session()
    session.events.register_first("before-call.dynamodb.UpdateItem", accepted_meanwhile)
    code, _, err = cli("resend", request_id, "--yes", session=session)
    assert code == 2
    assert "changed from OUTCOME_UNKNOWN to ACCEPTED meanwhile" in err
    assert ledgers.get(request_id)["status"] == "ACCEPTED"
    assert drain(sqs, queue_url) == []


# -- send-dlq ------------------------------------------------------------------------------------------------
def dead_letter(sqs, dlq_url: str, *bodies: str, outcome: str = "throttled", code: str | None = "E113"):
    """DLQ messages as the sender leaves them (SendQueue.settle), with their reason attributes."""
    results, by_id = [], {}
    for body in bodies:
        message_id = str(uuid.uuid4())
        by_id[message_id] = body
        request_id = json.loads(body).get("request_id")
        results.append(
            RecordResult(
                message_id,
                "receipt",
                Disposition.DEAD_LETTER,
                outcome,
                request_id=request_id,
                reason=f"throttled by the provider for more than 360 minutes ({request_id})",
                code=code,
            )
        )
    assert SendQueue(sqs, "unused", dlq_url).settle(BatchReport(results=results), by_id) == set()
    return list(by_id)


def in_queue(sqs, url: str) -> list[dict]:
    """Every message on the queue, made visible again afterwards."""
    seen: dict[str, dict] = {}
    handles = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageAttributeNames=["All"]
    ).get("Messages"):
        for message in batch:
            seen.setdefault(message["MessageId"], message)
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return list(seen.values())


def test_send_dlq_lists_reasons_and_requests_without_taking_anything_off(cli, queues):
    sqs, _, dlq_url = queues
    ids = [new_id("dead") for _ in range(3)]
    source_ids = dead_letter(sqs, dlq_url, *(sms(i) for i in ids))
    sqs.send_message(QueueUrl=dlq_url, MessageBody="not json \x1b[2J")  # moved by SQS itself: no reason

    code, out, _ = cli("--json", "send-dlq")
    assert code == 0
    document = json.loads(out)
    assert document["count"] == 4
    assert document["queue_url"] == dlq_url
    by_request = {m["request_id"]: m for m in document["messages"]}
    assert set(by_request) == {*ids, None}
    listed = by_request[ids[0]]
    assert listed["reason"] == f"throttled by the provider for more than 360 minutes ({ids[0]})"
    assert (listed["outcome"], listed["code"]) == ("throttled", "E113")
    assert listed["source_message_id"] == source_ids[0]
    assert (listed["action"], listed["to"], listed["from"]) == ("sendSMS", "13125550147", "47215")
    assert listed["body"] == sms(ids[0])
    assert listed["sent_at"] is not None
    assert by_request[None]["reason"] is None
    assert by_request[None]["body_is_json"] is False

    code, text, _ = cli("send-dlq", "--list")  # listing again sees them all: nothing was taken off
    assert code == 0
    assert text.startswith("send DLQ: 4 messages (oldest first")
    assert all(i in text for i in ids)
    assert "(none: moved by SQS)" in text
    assert "\x1b" not in text
    assert len(in_queue(sqs, dlq_url)) == 4  # still there, and visible at once

    _, out, _ = cli("--json", "send-dlq", "--request-id", ids[1], "--limit", "5")
    assert [m["request_id"] for m in json.loads(out)["messages"]] == [ids[1]]
    _, out, _ = cli("--json", "send-dlq", "--limit", "2")
    assert json.loads(out)["count"] == 2
    assert len(in_queue(sqs, dlq_url)) == 4


def test_send_dlq_redrive_moves_each_message_exactly_once(cli, queues):
    sqs, queue_url, dlq_url = queues
    ids = [new_id("dead") for _ in range(5)]
    bodies = {i: sms(i) for i in ids}
    dead_letter(sqs, dlq_url, *bodies.values())
    sqs.send_message(  # a producer's own attribute travels with the body; the DLQ's reasons do not
        QueueUrl=dlq_url,
        MessageBody=sms(ids[0] + "-attr"),
        MessageAttributes={"producer": {"DataType": "String", "StringValue": "billing"}},
    )

    code, out, _ = cli("--json", "send-dlq", "--redrive", "--limit", "2")
    assert code == 0
    document = json.loads(out)
    assert (document["found"], document["moved"], document["failed"]) == (2, 2, 0)
    assert len(in_queue(sqs, dlq_url)) == 4

    code, text, _ = cli("send-dlq", "--redrive", "--request-id", ids[4], ids[3], "--request-id", "nope")
    assert code == 0
    assert "found 2, moved 2, failed 0" in text
    code, text, _ = cli("send-dlq", "--redrive")
    assert code == 0
    assert "moved 2, failed 0" in text
    assert in_queue(sqs, dlq_url) == []
    code, out, _ = cli("--json", "send-dlq", "--redrive")  # nothing left: nothing moved twice
    assert (code, json.loads(out)["found"], json.loads(out)["moved"]) == (0, 0, 0)

    moved = in_queue(sqs, queue_url)
    assert sorted(m["Body"] for m in moved) == sorted([*bodies.values(), sms(ids[0] + "-attr")])
    attributes = {m["Body"]: m.get("MessageAttributes", {}) for m in moved}
    assert attributes[sms(ids[0] + "-attr")] == {"producer": {"DataType": "String", "StringValue": "billing"}}
    assert attributes[bodies[ids[0]]] == {}


def test_send_dlq_redrive_with_a_failing_send_loses_nothing(cli, queues):
    sqs, queue_url, dlq_url = queues
    ids = [new_id("dead") for _ in range(3)]
    dead_letter(sqs, dlq_url, *(sms(i) for i in ids))
    fault = Fault("sqs", "SendMessage", lambda params: ids[1] in params["MessageBody"])

    code, out, _ = cli("send-dlq", "--redrive", session=fault.session())
    assert code == 1
    assert "found 3, moved 2, failed 1" in out
    assert f"(request {ids[1]}): send: InternalError: injected fault; still in the DLQ" in out
    assert fault.calls == 1
    assert sorted(json.loads(m["Body"])["request_id"] for m in in_queue(sqs, queue_url)) == sorted(
        [ids[0], ids[2]]
    )
    left = in_queue(sqs, dlq_url)  # visible again at once, exactly one copy, its reasons intact
    assert [json.loads(m["Body"])["request_id"] for m in left] == [ids[1]]
    assert left[0]["MessageAttributes"]["mmsbridge-code"]["StringValue"] == "E113"

    code, out, _ = cli("--json", "send-dlq", "--redrive")  # once SQS takes it again, it moves
    assert (code, json.loads(out)["moved"]) == (0, 1)
    assert in_queue(sqs, dlq_url) == []
    assert len(in_queue(sqs, queue_url)) == 3


def test_send_dlq_redrive_reports_a_message_it_could_not_delete(cli, queues):
    sqs, queue_url, dlq_url = queues
    request_id = new_id("dead")
    dead_letter(sqs, dlq_url, sms(request_id))
    fault = Fault("sqs", "DeleteMessage")

    code, out, _ = cli("--json", "send-dlq", "--redrive", session=fault.session())
    assert code == 1
    document = json.loads(out)
    assert (document["moved"], document["failed"]) == (0, 1)
    failure = document["failures"][0]
    assert (failure["request_id"], failure["stage"]) == (request_id, "delete")
    assert failure["new_message_id"] == in_queue(sqs, queue_url)[0]["MessageId"]  # sent once, not twice


def test_send_queues_from_the_endpoints_files_top_level_keys(moto_server, aws_stack, names, queues, tmp_path):
    sqs, _, dlq_url = queues
    dead_letter(sqs, dlq_url, sms(new_id("dead")))
    path = tmp_path / "endpoints.json"
    document = {
        "aws_endpoint_url": moto_server.endpoint_url,
        "region": aws_stack.region,
        "queues": {"PostbackQueue": "elsewhere"},
        "tables": {"StateTable": names["table"]},
        "send_queue_url": names["send_queue"],
        "send_dlq_url": names["send_dlq"],
    }
    path.write_text(json.dumps(document))
    assert main(["--endpoints-file", str(path), "--json", "send-dlq"]) == 0

    del document["send_dlq_url"]
    path.write_text(json.dumps(document))
    assert main(["--endpoints-file", str(path), "send-dlq"]) == 2


def test_send_dlq_without_a_send_dlq_is_a_configuration_error(
    moto_server, aws_stack, names, tmp_path, capsys
):
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps({"aws_endpoint_url": moto_server.endpoint_url, "tables": {"StateTable": names["table"]}})
    )
    assert main(["--endpoints-file", str(path), "send-dlq"]) == 2
    err = capsys.readouterr().err
    assert "does not name the send dlq" in err
    assert "queues.SendDLQ or send_dlq_url" in err
    assert main(["--endpoints-file", str(path), "resend", "x", "--yes"]) == 2
    assert "does not name the send queue" in capsys.readouterr().err
