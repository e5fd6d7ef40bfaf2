"""The sender against moto (the template's state table) and the provider simulator over real HTTP.

SQS is played by a small in-memory driver here (records handed back come again with a higher receive
count); the real queue, visibility timeouts and the Lambda handler are exercised end to end in tests/e2e.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from local.simulator import ProviderFault, ProviderSimulator
from mmsbridge.aws.state_table import StateTable
from mmsbridge.sending.ledger import SendStatus
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import SharedLimiter
from mmsbridge.sending.media_check import MediaPreflight
from mmsbridge.sending.provider_http import ProviderClient, ProviderReply
from mmsbridge.sending.provider_xml import ErrorClass, ProviderResult, build_request_xml
from mmsbridge.sending.request import validate_save_mms
from mmsbridge.sending.results import Disposition, RecordResult
from mmsbridge.sending.sender import Delivery, Sender, SenderSettings
from tests.media_hosts import loopback_preflight, make_certificates, media_host

API_KEY = "sim-key-0123456789abcdef"
TO = "17743199144"


@pytest.fixture(scope="module")
def table(aws_stack, aws_clients):
    (spec,) = aws_stack.tables().values()
    return StateTable(aws_clients["dynamodb"], spec.name)


@pytest.fixture
def simulator():
    with ProviderSimulator(api_key=API_KEY, templates=["48213"]) as sim:
        yield sim


@dataclass
class Harness:
    table: StateTable
    simulator: ProviderSimulator
    settings: SenderSettings = field(default_factory=SenderSettings)
    # Connect, read: the production read timeout (10 s), so that a busy machine's slow answer is never taken
    # for a lost one; the test of a lost answer shortens it for itself.
    timeout: tuple[float, float] = (1.0, 10.0)
    api_url: str | None = None
    media: MediaPreflight | None = None  # the media preflight's checker (default: the real policy)
    clock_offset: float = 0.0
    forgotten: int = 0
    # Each test paces on its own limiter item: its clock games stay its own.
    pace_key: dict = field(default_factory=lambda: {"pk": f"PACE#test-{uuid.uuid4().hex}", "sk": "PACE"})

    def sender(self, **changes) -> Sender:
        settings = SenderSettings(**{**self.settings.__dict__, **changes})
        return Sender(
            table=self.table,
            ledger=SendLedger(self.table),
            limiter=SharedLimiter(
                self.table, 1000, clock=lambda: time.time() + self.clock_offset, key=self.pace_key
            ),
            client=ProviderClient(
                self.api_url or self.simulator.api_url, timeout=self.timeout, media=self.media
            ),
            api_key=lambda: API_KEY,
            forget_api_key=self.forget,
            settings=settings,
            clock=lambda: time.time() + self.clock_offset,
        )

    def forget(self) -> None:
        self.forgotten += 1


@pytest.fixture
def harness(table, simulator):
    return Harness(table, simulator)


def sms(request_id: str | None = None, **changes) -> dict:
    request = {
        "request_id": request_id or f"req-{uuid.uuid4().hex[:12]}",
        "action": "sendSMS",
        "to": "+1 (774) 319-9144",
        "from": "12345",
        "text": f"hello {uuid.uuid4().hex[:6]}",
    }
    request.update(changes)
    return request


@dataclass
class Message:
    body: str
    receive_count: int = 1
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sent_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def record(self) -> dict:
        return {
            "messageId": self.message_id,
            "receiptHandle": f"rh-{self.message_id}-{self.receive_count}",
            "body": self.body,
            "attributes": {
                "ApproximateReceiveCount": str(self.receive_count),
                "SentTimestamp": str(self.sent_ms),
            },
        }


def message(request: dict | str) -> Message:
    return Message(request if isinstance(request, str) else json.dumps(request))


def run(sender: Sender, *messages: Message) -> list[RecordResult]:
    report = sender.send_batch([m.record() for m in messages], deadline=time.time() + 30)
    for m, result in zip(messages, report.results, strict=True):
        assert result.message_id == m.message_id
        if result.disposition is Disposition.RETRY:
            m.receive_count += 1
    return report.results


def drain(sender: Sender, messages: list[Message], *, timeout: float = 30.0) -> dict[str, RecordResult]:
    """Deliver until every message is settled (DONE or DEAD_LETTER), ten at a time, as SQS would."""
    pending = list(messages)
    settled: dict[str, RecordResult] = {}
    deadline = time.monotonic() + timeout
    while pending:
        assert time.monotonic() < deadline, f"still pending: {len(pending)}"
        batch, pending = pending[:10], pending[10:]
        for m, result in zip(batch, run(sender, *batch), strict=True):
            if result.disposition is Disposition.RETRY:
                pending.append(m)
            else:
                settled[m.message_id] = result
        if pending:
            time.sleep(0.05)
    return settled


def calls(simulator: ProviderSimulator) -> int:
    return simulator.stats()["calls"]


# ---- the happy path and the records it leaves --------------------------------------------------------


def test_accepted_sms_leaves_a_ledger_an_outbound_record_and_a_submitted_state(harness, table, simulator):
    request = sms()
    (result,) = run(harness.sender(), message(request))
    assert (result.disposition, result.outcome) == (Disposition.DONE, "accepted")
    ledger = SendLedger(table).get(request["request_id"])
    assert ledger["status"] == "ACCEPTED"
    assert ledger["tracking_id"] == result.tracking_id
    assert (ledger["to"], ledger["from"], ledger["action"]) == (TO, "12345", "sendSMS")
    assert int(ledger["calls"]) == 1
    view = table.message(result.tracking_id)
    assert view["state"] == "SUBMITTED"
    assert view["request"]["request_id"] == request["request_id"]
    assert view["request"]["to"] == TO
    (entry,) = simulator.log()
    assert (entry["answer"], entry["tracking_id"], entry["to"]) == ("Success", result.tracking_id, TO)
    assert entry["fields"]["TEXT"] == request["text"]
    assert API_KEY not in json.dumps(ledger, default=str)


def test_saved_and_inline_mms_are_accepted(harness, table, simulator):
    saved = {
        "request_id": f"mms-{uuid.uuid4().hex[:8]}",
        "action": "sendSavedMMS",
        "to": TO,
        "from": "12345",
        "mms_id": "48213",
        "fallback_sms_text": "See your picture",
        "custom_subject": "Hello",
        "custom_text": {"1": "Hi Ana"},
        "data": {"firstname": "Ana"},
    }
    inline = {
        "request_id": f"mms-{uuid.uuid4().hex[:8]}",
        "action": "sendMMS",
        "to": TO,
        "from": "12345",
        "name": "promo",
        "subject": "Promo",
        "slides": [{"image_url": "https://example.com/a.jpg", "text": "Look", "duration": 5}],
        "fallback_sms_text": "See the promo",
    }
    results = run(harness.sender(), message(saved), message(inline))
    assert [r.outcome for r in results] == ["accepted", "accepted"]
    ledger = SendLedger(table).get(saved["request_id"])
    assert ledger["mms_id"] == "48213"
    assert table.message(ledger["tracking_id"])["request"]["mms_id"] == "48213"
    saved_call, inline_call = (entry["fields"] for entry in simulator.log())
    assert saved_call["CUSTOMTEXT"] == {"VALUE": "Hi Ana", "SLIDE": "1"}  # one override, as v1 takes it
    assert saved_call["FALLBACKSMSTEXT"] == "See your picture"
    assert inline_call["FALLBACKSMSTEXT"] == "See the promo"  # always sent on sendMMS


def saved_mms(**changes) -> dict:
    request = {
        "request_id": f"mms-{uuid.uuid4().hex[:8]}",
        "action": "sendSavedMMS",
        "to": TO,
        "from": "12345",
        "mms_id": "48213",
        "fallback_sms_text": "See your picture",
    }
    request.update(changes)
    return request


def test_a_text_campaign_ref_reaches_the_provider_as_given(harness, table, simulator):
    requests = [
        sms(campaign_ref="Campaign123"),
        saved_mms(campaign_ref="Spring Deals 2025 & more"),
        sms(campaign_ref=1001),
    ]
    results = run(harness.sender(), *map(message, requests))
    assert [r.outcome for r in results] == ["accepted"] * 3
    assert [entry["fields"]["CAMPAIGNREF"] for entry in simulator.log()] == [
        "Campaign123",
        "Spring Deals 2025 & more",
        "1001",
    ]
    assert SendLedger(table).get(requests[0]["request_id"])["campaign_ref"] == "Campaign123"


def test_shapes_the_provider_cannot_take_are_refused_before_any_call(harness, table, simulator):
    two_overrides = saved_mms(custom_text={"1": "Hi Ana", "2": "See you soon"})
    no_fallback = {
        "request_id": f"mms-{uuid.uuid4().hex[:8]}",
        "action": "sendMMS",
        "to": TO,
        "from": "12345",
        "name": "promo",
        "subject": "Promo",
        "slides": [{"text": "Look"}],
    }
    control = sms(campaign_ref="Spring\u0007Deals")
    results = run(harness.sender(), *map(message, (two_overrides, no_fallback, control)))
    assert [(r.outcome, r.disposition) for r in results] == [("rejected", Disposition.DONE)] * 3
    assert calls(simulator) == 0
    reasons = [
        SendLedger(table).get(r["request_id"])["reasons"] for r in (two_overrides, no_fallback, control)
    ]
    assert reasons[0][0]["field"] == "custom_text"
    assert "one slide only" in reasons[0][0]["reason"]
    assert reasons[1] == [{"field": "fallback_sms_text", "reason": "is required"}]
    assert reasons[2][0]["field"] == "campaign_ref"


def test_the_service_id_goes_on_every_call_when_configured(harness, simulator):
    requests = [sms(), saved_mms(custom_text={"1": "Hi Ana"}), inline_mms("https://example.com/a.jpg")]
    results = run(harness.sender(service_id="svc-00417"), *map(message, requests))
    assert [r.outcome for r in results] == ["accepted"] * 3
    # saveMMS, the fourth action, goes out through the same builder and client.
    template = validate_save_mms({"name": "spring", "subject": "Spring", "slides": [{"text": "Hello"}]})
    reply = ProviderClient(simulator.api_url).call(
        build_request_xml(template, API_KEY, service_id="svc-00417"), api_key=API_KEY
    )
    assert reply.result.ok
    assert reply.result.mms_id
    log = simulator.log()
    assert [entry["action"] for entry in log] == ["sendSMS", "sendSavedMMS", "sendMMS", "saveMMS"]
    assert [entry["fields"]["SERVICEID"] for entry in log] == ["svc-00417"] * 4


def test_without_a_service_id_none_is_sent(harness, simulator):
    (result,) = run(harness.sender(), message(sms()))
    assert result.outcome == "accepted"
    (entry,) = simulator.log()
    assert "SERVICEID" not in entry["fields"]


# ---- idempotency ---------------------------------------------------------------------------------


def test_a_duplicate_request_and_a_redelivery_never_reach_the_provider_twice(harness, simulator):
    request = sms()
    first = message(request)
    again = message(request)  # the same request put on the queue twice
    results = run(harness.sender(), first, again)
    assert [r.outcome for r in results] == ["accepted", "duplicate"]
    first.receive_count = 2  # SQS delivers the first message once more
    (redelivered,) = run(harness.sender(), first)
    assert redelivered.outcome == "duplicate"
    assert redelivered.disposition is Disposition.DONE
    assert calls(simulator) == 1


def test_concurrent_deliveries_of_one_request_call_once(harness, simulator):
    request = sms()
    results: list[RecordResult] = []

    def deliver() -> None:
        results.extend(run(harness.sender(), message(request)))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(r.outcome for r in results)
    assert outcomes.count("accepted") == 1
    assert set(outcomes) <= {"accepted", "busy", "duplicate"}
    assert all(r.visibility_s for r in results if r.outcome == "busy")
    assert calls(simulator) == 1


def test_a_crash_after_the_providers_success_is_never_resent_at_most_once(
    harness, table, simulator, monkeypatch
):
    request = sms()
    m = message(request)

    def die(*args, **kwargs):
        raise SystemExit("the container died")

    monkeypatch.setattr(SendLedger, "finish", die)
    with pytest.raises(SystemExit):
        run(harness.sender(), m)
    monkeypatch.undo()
    assert calls(simulator) == 1
    assert SendLedger(table).get(request["request_id"])["status"] == "SENDING"

    # Redelivered while the dead attempt's lease runs: held back, not sent.
    m.receive_count = 2
    (busy,) = run(harness.sender(), m)
    assert busy.outcome == "busy"
    assert busy.disposition is Disposition.RETRY
    # After the lease: the outcome is unknown, recorded and surfaced, not resent.
    harness.clock_offset = 120
    (orphan,) = run(harness.sender(), m)
    assert (orphan.outcome, orphan.disposition) == ("outcome_unknown", Disposition.DONE)
    ledger = SendLedger(table).get(request["request_id"])
    assert ledger["status"] == "OUTCOME_UNKNOWN"
    assert "may have called the provider" in ledger["outcome_unknown_reason"]
    assert ledger["gsi1pk"] == "SEND#OUTCOME_UNKNOWN"
    assert calls(simulator) == 1


def test_at_least_once_resends_after_a_crash(harness, table, simulator, monkeypatch):
    request = sms()
    m = message(request)
    monkeypatch.setattr(SendLedger, "finish", lambda *a, **k: (_ for _ in ()).throw(SystemExit("died")))
    with pytest.raises(SystemExit):
        run(harness.sender(delivery=Delivery.AT_LEAST_ONCE), m)
    monkeypatch.undo()
    harness.clock_offset = 120
    (result,) = run(harness.sender(delivery=Delivery.AT_LEAST_ONCE), m)
    assert result.outcome == "accepted"
    assert calls(simulator) == 2  # the documented price of at-least-once
    assert SendLedger(table).get(request["request_id"])["status"] == "ACCEPTED"


# ---- refusals and suppression ---------------------------------------------------------------------


def test_an_invalid_request_is_recorded_with_its_reasons_and_findable_by_request_id(
    harness, table, simulator
):
    request_id = f"bad-{uuid.uuid4().hex[:8]}"
    (result,) = run(harness.sender(), message(sms(request_id, to="12", text="x" * 161)))
    assert (result.outcome, result.disposition) == ("rejected", Disposition.DONE)
    ledger = SendLedger(table).get(request_id)
    assert ledger["status"] == "REJECTED"
    assert {r["field"] for r in ledger["reasons"]} == {"to", "text"}
    assert ledger["gsi1pk"] == "SEND#REJECTED"
    assert calls(simulator) == 0


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"action": "sendSMS"}', json.dumps(sms("x" * 300)), '{"request_id": 7}', ""],
)
def test_a_body_without_a_usable_request_id_is_recorded_under_its_hash(harness, table, simulator, body):
    (result,) = run(harness.sender(), message(body))
    assert (result.outcome, result.disposition) == ("rejected", Disposition.DONE)
    digest = hashlib.sha256(body.encode()).hexdigest()
    item = table.get(f"REJECTED#{digest}", "REQUEST")
    assert item["status"] == "REJECTED"
    assert item["body"] == body
    assert item["reasons"]
    assert calls(simulator) == 0


def test_a_suppressed_number_is_recorded_not_sent(harness, table, simulator):
    # A valid US number (exchange 2-9), its own so that no other test's opt-out or opt-in applies.
    mobile = f"1774{2 + uuid.uuid4().int % 8}{uuid.uuid4().int % 10**6:06d}"
    table.put_all(
        [
            {
                "pk": f"SUPPRESS#{mobile}",
                "sk": "AT#2026-01-01T00:00:00.000000Z#N302",
                "type": "suppression",
                "mobile": mobile,
                "suppressed": True,
            }
        ]
    )
    request = sms(to=mobile)
    (result,) = run(harness.sender(), message(request))
    assert (result.outcome, result.disposition) == ("suppressed", Disposition.DONE)
    assert SendLedger(table).get(request["request_id"])["status"] == "SUPPRESSED"
    assert calls(simulator) == 0


# ---- error classes --------------------------------------------------------------------------------


def test_e113_stops_the_batch_and_everything_is_sent_once_after_the_storm(table):
    now = [1000.0]  # the simulator's clock: the storm ends when the test says, not when a busy machine does
    with ProviderSimulator(api_key=API_KEY, templates=["48213"], clock=lambda: now[0]) as simulator:
        harness = Harness(table, simulator)
        messages = [message(sms()) for _ in range(25)]
        simulator.add_fault(ProviderFault("answer", code="E113", duration_s=0.6))
        first = run(harness.sender(), *messages[:10])
        assert first[0].outcome == "throttled"
        assert first[0].code == "E113"
        assert {r.outcome for r in first[1:]} == {"deferred"}  # not called: the batch stopped
        assert all(r.disposition is Disposition.RETRY and r.visibility_s >= 1 for r in first)
        assert calls(simulator) == 1
        now[0] += 0.6  # the storm is over
        settled = drain(harness.sender(), messages)
        stats = simulator.stats()
    assert {r.outcome for r in settled.values()} == {"accepted"}
    assert stats["accepted_sends"] == 25
    assert stats["duplicates"] == 0


def test_a_provider_retry_after_wins_over_the_backoff(harness):
    sender = harness.sender()
    throttled = ProviderResult(ok=False, error_class=ErrorClass.THROTTLE, error_code="E113")
    sender._client.call = lambda xml, api_key: ProviderReply(throttled, retry_after_s=42)
    (result,) = run(sender, message(sms()))
    assert (result.outcome, result.visibility_s) == ("throttled", 42)


@pytest.fixture
def proxy(simulator):
    """A proxy on loopback in front of the simulator, as a load balancer or API gateway would stand in front
    of the provider: it answers the queued (status, headers, body) answers itself, one per call, and
    forwards every other call to the simulator."""
    answers: list[tuple[int, dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if answers:
                status, headers, payload = answers.pop(0)
            else:
                upstream = requests.post(
                    simulator.api_url,
                    data=body,
                    headers={"Content-Type": self.headers.get("Content-Type", "")},
                    timeout=5,
                )
                status, payload = upstream.status_code, upstream.content
                headers = {"Content-Type": upstream.headers.get("Content-Type", "text/xml")}
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/API/wxml/1.3/", answers
    server.shutdown()
    server.server_close()


TOO_MANY = b"<html><body><h1>429 Too Many Requests</h1></body></html>"


def api_failure(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<RESPONSE><STATUS>Failure</STATUS>'
        f"<ERRORCODE>{code}</ERRORCODE><ERRORINFO>refused</ERRORINFO></RESPONSE>"
    ).encode()


def test_a_proxys_429_throttles_for_its_retry_after_and_is_not_an_account_problem(harness, table, proxy):
    harness.api_url, answers = proxy
    answers.append((429, {"Retry-After": "7", "Content-Type": "text/html"}, TOO_MANY))
    messages = [message(sms()) for _ in range(3)]
    results = run(harness.sender(), *messages)
    assert [(r.outcome, r.code) for r in results] == [
        ("throttled", "http_429"),
        ("deferred", None),
        ("deferred", None),
    ]
    # The throttled record and the ones it stopped come back when the proxy said calls may resume.
    assert {(r.disposition, r.visibility_s) for r in results} == {(Disposition.RETRY, 7)}
    assert harness.forgotten == 0  # no account alarm, the key is kept
    assert calls(harness.simulator) == 0
    ledger = SendLedger(table).get(results[0].request_id)
    assert (ledger["status"], int(ledger["throttled"])) == ("RETRY", 1)
    assert "account_errors" not in ledger
    # Every invocation's limiter holds its calls back for those seconds too.
    assert harness.sender().limiter.acquire(max_wait_s=5.0) is None
    harness.clock_offset = 8.0
    settled = drain(harness.sender(), messages)
    assert {r.outcome for r in settled.values()} == {"accepted"}
    stats = harness.simulator.stats()
    assert (stats["accepted_sends"], stats["duplicates"]) == (3, 0)


def test_a_429_without_retry_after_backs_off_with_jitter_and_sends_once_later(harness, simulator):
    simulator.add_fault(ProviderFault("http_error", status=429, count=1))
    messages = [message(sms()) for _ in range(3)]
    results = run(harness.sender(), *messages)
    assert [(r.outcome, r.code) for r in results] == [
        ("throttled", "http_429"),
        ("deferred", None),
        ("deferred", None),
    ]
    assert all(r.disposition is Disposition.RETRY and r.visibility_s >= 1 for r in results)
    assert harness.forgotten == 0
    settled = drain(harness.sender(), messages)
    assert {r.outcome for r in settled.values()} == {"accepted"}
    assert (simulator.stats()["accepted_sends"], simulator.stats()["duplicates"]) == (3, 0)


def test_a_408_without_an_api_answer_is_outcome_unknown(harness, table, simulator):
    # It was read and accepted.
    simulator.add_fault(ProviderFault("http_error", status=408, count=1, accept=True))
    request = sms()
    results = run(harness.sender(), message(request), message(sms()))
    assert [(r.outcome, r.code) for r in results] == [("outcome_unknown", "http_408"), ("deferred", None)]
    assert results[0].disposition is Disposition.DONE  # at most once: not resent
    ledger = SendLedger(table).get(request["request_id"])
    assert (ledger["status"], ledger["error_class"], int(ledger["http_status"])) == (
        "OUTCOME_UNKNOWN",
        "TRANSIENT",
        408,
    )
    assert harness.forgotten == 0
    assert calls(simulator) == 1


def test_at_least_once_resends_after_a_408(harness, simulator):
    simulator.add_fault(ProviderFault("http_error", status=408, count=1))
    settled = drain(harness.sender(delivery=Delivery.AT_LEAST_ONCE), [message(sms())])
    assert [r.outcome for r in settled.values()] == ["accepted"]


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        (429, "E113", "throttled"),
        (429, "E104", "account_error"),
        (408, "E503", "transient_retry"),
        (408, "E110", "failed"),
    ],
)
def test_a_429_or_408_carrying_an_api_error_is_classified_by_its_code(harness, proxy, status, code, outcome):
    harness.api_url, answers = proxy
    answers.append((status, {"Content-Type": "text/xml"}, api_failure(code)))
    (result,) = run(harness.sender(), message(sms()))
    assert (result.outcome, result.code) == (outcome, code)
    assert harness.forgotten == (1 if outcome == "account_error" else 0)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_any_other_4xx_without_an_api_answer_is_still_an_account_problem(harness, simulator, status):
    simulator.add_fault(ProviderFault("http_error", status=status, count=1))
    (result,) = run(harness.sender(), message(sms()))
    assert (result.outcome, result.code) == ("account_error", "http_4xx")
    assert harness.forgotten == 1


def test_throttled_messages_go_to_the_dlq_only_after_the_maximum_age(harness, simulator):
    simulator.add_fault(ProviderFault("answer", code="E113"))
    old = message(sms())
    old.sent_ms -= 7 * 3600 * 1000  # older than the default 6 hours
    young = message(sms())
    results = run(harness.sender(), young, old)
    assert results[0].disposition is Disposition.RETRY
    assert results[1].disposition is Disposition.DEAD_LETTER
    assert "throttled by the provider for more than 360 minutes" in results[1].reason


@pytest.mark.parametrize("code", ["E104", "E112", "E713"])
def test_an_account_error_stops_the_batch_and_forgets_the_key(harness, table, simulator, code):
    simulator.add_fault(ProviderFault("answer", code=code, count=1))
    requests = [sms(), sms(), sms()]
    results = run(harness.sender(), *map(message, requests))
    assert [r.outcome for r in results] == ["account_error", "deferred", "deferred"]
    assert all(r.disposition is Disposition.RETRY and r.visibility_s >= 1 for r in results)
    assert harness.forgotten == 1
    assert calls(simulator) == 1
    assert SendLedger(table).get(requests[0]["request_id"])["status"] == "RETRY"
    # After the fix the same requests go out, once each.
    settled = drain(harness.sender(account=harness.settings.throttled), [message(r) for r in requests])
    assert {r.outcome for r in settled.values()} == {"accepted"}
    assert simulator.stats()["accepted_sends"] == 3


def test_an_unreadable_api_key_holds_every_record(harness, simulator):
    sender = harness.sender()
    sender._api_key = lambda: (_ for _ in ()).throw(RuntimeError("no secret"))
    results = run(sender, message(sms()), message(sms()))
    assert {(r.outcome, r.disposition) for r in results} == {("account_error", Disposition.RETRY)}
    assert calls(simulator) == 0


def test_transient_errors_retry_then_fail_at_the_attempt_bound(harness, table, simulator):
    simulator.add_fault(ProviderFault("answer", code="E503", count=1))
    recovers = sms()
    settled = drain(harness.sender(), [message(recovers)])
    assert [r.outcome for r in settled.values()] == ["accepted"]
    assert int(SendLedger(table).get(recovers["request_id"])["transient_failures"]) == 1

    simulator.add_fault(ProviderFault("answer", code="E618"))
    stuck = sms()
    settled = drain(harness.sender(max_attempts=3), [message(stuck)])
    (result,) = settled.values()
    assert (result.outcome, result.code) == ("failed", "E618")
    ledger = SendLedger(table).get(stuck["request_id"])
    assert ledger["status"] == "FAILED"
    assert ledger["error_class"] == "TRANSIENT"
    assert int(ledger["transient_failures"]) == 3


@pytest.mark.parametrize(
    ("code", "outcome"), [("E110", "failed"), ("E114", "failed"), ("E999", "failed_unknown_code")]
)
def test_permanent_and_unknown_codes_are_recorded_and_not_retried(harness, table, simulator, code, outcome):
    simulator.add_fault(ProviderFault("answer", code=code, count=1))
    request = sms()
    results = run(harness.sender(), message(request), message(sms()))
    assert (results[0].outcome, results[0].disposition, results[0].code) == (outcome, Disposition.DONE, code)
    assert results[1].outcome == "accepted"  # the batch goes on
    ledger = SendLedger(table).get(request["request_id"])
    assert (ledger["status"], ledger["error_code"]) == ("FAILED", code)
    assert ledger["gsi1pk"] == "SEND#FAILED"


@pytest.mark.parametrize(
    "fault",
    [
        ProviderFault("delay", delay_s=3.0, accept=True),
        ProviderFault("http_error", status=502, accept=True),
        ProviderFault("malformed", accept=True),
        ProviderFault("drop", accept=True),
    ],
)
def test_an_unknown_outcome_is_recorded_not_resent_at_most_once(harness, table, simulator, fault):
    harness.timeout = (1.0, 1.0)  # the delayed answer comes 3 s late: always after the client gave up
    simulator.add_fault(fault.__class__(**{**fault.__dict__, "count": 1}))
    request = sms()
    results = run(harness.sender(), message(request), message(sms()))
    assert (results[0].outcome, results[0].disposition) == ("outcome_unknown", Disposition.DONE)
    assert results[1].outcome == "deferred"  # a provider in trouble: the rest wait
    ledger = SendLedger(table).get(request["request_id"])
    assert ledger["status"] == "OUTCOME_UNKNOWN"
    assert ledger["gsi1pk"] == "SEND#OUTCOME_UNKNOWN"
    assert calls(simulator) == 1


def test_at_least_once_retries_an_unknown_outcome(harness, simulator):
    simulator.add_fault(ProviderFault("http_error", status=503, count=1))
    settled = drain(harness.sender(delivery=Delivery.AT_LEAST_ONCE), [message(sms())])
    assert [r.outcome for r in settled.values()] == ["accepted"]


def test_a_connection_refused_is_transient_and_safe_to_retry(harness, table):
    harness.api_url = "http://127.0.0.1:9/API/wxml/1.3/"  # discard port: nothing listens
    request = sms()
    results = run(harness.sender(), message(request), message(sms()))
    assert (results[0].outcome, results[0].code) == ("transient_retry", "connect_error")
    assert results[1].outcome == "deferred"
    assert SendLedger(table).get(request["request_id"])["status"] == "RETRY"


def test_an_unexpected_error_goes_to_the_dlq_at_the_fifth_error_of_its_message(harness, monkeypatch):
    def broken(self, mobile):
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(StateTable, "suppressed", broken)
    m = message(sms())
    results = [run(harness.sender(), m)[0] for _ in range(5)]
    assert [(r.outcome, r.disposition) for r in results[:4]] == [("error", Disposition.RETRY)] * 4
    assert results[4].disposition is Disposition.DEAD_LETTER
    assert "failed 5 times; last error RuntimeError: table unavailable" in results[4].reason


def test_receives_that_were_not_errors_do_not_count_towards_the_dlq(harness, simulator, monkeypatch):
    m = message(sms())
    m.receive_count = 40  # handed back for throttling many times (E113), never an error
    simulator.add_fault(ProviderFault("answer", code="E113", count=1))
    (throttled,) = run(harness.sender(), m)
    assert throttled.outcome == "throttled"

    def broken(self, mobile):
        raise RuntimeError("a passing fault")

    monkeypatch.setattr(StateTable, "suppressed", broken)
    m.receive_count = 41
    (first_error,) = run(harness.sender(), m)
    assert (first_error.outcome, first_error.disposition) == ("error", Disposition.RETRY)


def test_when_the_error_count_cannot_be_written_the_record_is_handed_back(harness, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(StateTable, "suppressed", broken)
    monkeypatch.setattr(SendLedger, "count_error", broken)
    m = message(sms())
    m.receive_count = 9
    (result,) = run(harness.sender(), m)
    assert (result.outcome, result.disposition) == ("error", Disposition.RETRY)


def test_the_ledger_never_holds_the_api_key(harness, table, simulator):
    simulator.add_fault(ProviderFault("answer", code="E104", count=1))
    request = sms()
    run(harness.sender(), message(request))
    assert API_KEY not in json.dumps(SendLedger(table).get(request["request_id"]), default=str)


def test_ledger_status_values_are_the_documented_ones():
    assert {s.value for s in SendStatus} == {
        "SENDING",
        "RETRY",
        "ACCEPTED",
        "REJECTED",
        "SUPPRESSED",
        "FAILED",
        "OUTCOME_UNKNOWN",
    }


# ---- media preflight ------------------------------------------------------------------------------


@pytest.fixture
def media_server(harness, tmp_path):
    """A media host on loopback answering HEAD /<name> with the headers the test sets for that name, over
    https with a throwaway CA that the harness's preflight trusts; 127.0.0.1 stands in for a public host."""
    certificates = make_certificates(tmp_path, ["127.0.0.1"])
    harness.media = loopback_preflight(certificates)
    with media_host(certificates) as host:
        yield f"https://127.0.0.1:{host.port}", host.answers


def inline_mms(url: str) -> dict:
    return {
        "request_id": f"mms-{uuid.uuid4().hex[:8]}",
        "action": "sendMMS",
        "to": TO,
        "from": "12345",
        "name": "promo",
        "subject": "Promo",
        "slides": [{"image_url": url, "text": "Look"}],
        "fallback_sms_text": "See the promo",
    }


def test_preflight_passes_fetchable_media_and_refuses_the_rest(harness, table, simulator, media_server):
    base, answers = media_server
    answers["ok.jpg"] = (200, {"Content-Type": "image/jpeg", "Content-Length": "2048"})
    answers["octet.jpg"] = (200, {"Content-Type": "application/octet-stream", "Content-Length": "2048"})
    answers["chunked.png"] = (200, {"Content-Type": "image/png"})
    good = inline_mms(f"{base}/ok.jpg")
    octet, chunked, missing = (inline_mms(f"{base}/{n}") for n in ("octet.jpg", "chunked.png", "gone.jpg"))
    results = run(harness.sender(media_preflight=True), *map(message, (good, octet, chunked, missing)))
    assert [r.outcome for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    ledger = SendLedger(table).get(octet["request_id"])
    assert ledger["status"] == "REJECTED"
    assert ledger["reasons"][0]["field"] == "slides[0].image_url"
    assert "application/octet-stream" in ledger["reasons"][0]["reason"]
    assert "Content-Length" in SendLedger(table).get(chunked["request_id"])["reasons"][0]["reason"]
    assert calls(simulator) == 1


def test_preflight_retries_an_unreachable_media_host(harness, table, simulator, media_server):
    request = inline_mms("https://127.0.0.1:9/photo.jpg")  # nothing listens
    (result,) = run(harness.sender(media_preflight=True), message(request))
    assert (result.outcome, result.disposition) == ("transient_retry", Disposition.RETRY)
    assert SendLedger(table).get(request["request_id"])["status"] == "RETRY"
    assert calls(simulator) == 0


def test_without_preflight_media_is_not_fetched(harness, simulator, media_server):
    base, _ = media_server
    (result,) = run(harness.sender(), message(inline_mms(f"{base}/gone.jpg")))
    assert result.outcome == "accepted"
