"""Reconciliation end to end on moto: a send whose answer the provider simulator drops after accepting it
(`drop`, `accept=True`) goes through the real sender to OUTCOME_UNKNOWN; the message's delivery reports come
from the simulator over HTTP and go through the real consumer; `ops unknown` / `ops request` show the likely
message, `ops reconcile` links it (and only it), and `ops messages` finds it by number. Two unknown requests
to one number in one window stay unlinked, with the reason shown."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local import stack as local_stack
from local.simulator import ProviderFault, ProviderSimulator
from mmsbridge.core.times import iso
from mmsbridge.postbacks.consume import consume
from mmsbridge.sending.ledger import SendStatus, outbound_items
from mmsbridge.sending.ledger_store import SendLedger
from mmsbridge.sending.limiter import SharedLimiter
from mmsbridge.sending.provider_http import ProviderClient
from mmsbridge.sending.reconcile_store import LinkOutcome, Reconciler
from mmsbridge.sending.request import parse_send_request_json
from mmsbridge.sending.sender import Sender, SenderSettings
from ops import reconcile as ops_reconcile
from tests.conftest import ingest_record
from tests.integration.test_ops_cli import sample

API_KEY = "sim-key-reconcile-0123456789"
FROM = "47215"
SETTLED = timedelta(hours=1)  # past the attempt window (15 min) and its settling time (30 min)


def us_number() -> str:
    """A fresh valid US number (exchange 2-9), so no other test's messages share its index partition."""
    return f"1774{random.choice('23456789')}{random.randrange(10**6):06d}"


class Postbacks:
    """The postback URL the simulator posts to: keeps each body, answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with collector._lock:
                    collector.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1})
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/postback"

    def take(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.bodies) >= count:
                    taken, self.bodies = self.bodies[:count], self.bodies[count:]
                    return taken
            time.sleep(0.05)
        raise AssertionError(f"expected {count} postbacks, got {len(self.bodies)}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def postbacks() -> Iterator[Postbacks]:
    collector = Postbacks()
    yield collector
    collector.stop()


@pytest.fixture
def simulator(postbacks) -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=API_KEY, postback_url=postbacks.url) as sim:
        sim.configure_postbacks(first_delay_s=0.1, outcome_delay_s=0.2, retry_interval_s=1.0)
        yield sim


@pytest.fixture
def sender(table, simulator) -> Sender:
    return Sender(
        table=table,
        ledger=SendLedger(table),
        limiter=SharedLimiter(table, 1000, key={"pk": f"PACE#test-{uuid.uuid4().hex}", "sk": "PACE"}),
        client=ProviderClient(simulator.api_url, timeout=(1.0, 10.0)),  # a slow answer is not a lost one
        api_key=lambda: API_KEY,
        forget_api_key=lambda: None,
        settings=SenderSettings(),
    )


@pytest.fixture
def later(monkeypatch):
    """`ops` plans as if an hour had passed: every window in the test has settled."""
    moment = datetime.now(UTC) + SETTLED
    monkeypatch.setattr(ops_reconcile, "now", lambda: moment)
    return moment


def sms(to: str, label: str) -> dict:
    return {
        "request_id": f"rec-{label}-{uuid.uuid4().hex[:10]}",
        "action": "sendSMS",
        "to": to,
        "from": FROM,
        "text": f"Northwind {label} {uuid.uuid4().hex[:8]}",
    }


def send_with_lost_answer(sender: Sender, simulator: ProviderSimulator, request: dict) -> None:
    """One delivery of `request` whose call the provider accepts and whose answer it then drops."""
    simulator.add_fault(ProviderFault("drop", accept=True, count=1))
    record = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "rh",
        "body": json.dumps(request),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
    }
    (result,) = sender.send_batch([record], deadline=time.time() + 30).results
    assert result.outcome == "outcome_unknown", result


def consume_reports(table, bodies: list[bytes]) -> None:
    """The real consumer applies the simulator's postbacks, as the ingest would have queued them."""
    outcome = consume(
        [ingest_record(body, datetime.now(UTC)) for body in bodies], table=table, fetch=lambda key: b""
    )
    assert outcome.failed == set(), outcome.errors
    assert not outcome.quarantined


def accepted_tracking_ids(simulator: ProviderSimulator, text: str) -> list[str]:
    return [
        entry["tracking_id"]
        for entry in simulator.log()
        if entry["type"] == "api"
        and entry.get("accepted")
        and (entry.get("fields") or {}).get("TEXT") == text
    ]


def test_a_lost_answer_is_reconciled_with_the_message_it_became(
    cli, table, sender, simulator, postbacks, monkeypatch
):
    to = us_number()
    request = sms(to, "lost")
    request_id = request["request_id"]
    send_with_lost_answer(sender, simulator, request)
    ledger = SendLedger(table).get(request_id)
    assert ledger["status"] == "OUTCOME_UNKNOWN"
    assert ledger["transport_error"] == "connection_lost"
    (tracking_id,) = accepted_tracking_ids(simulator, request["text"])  # the provider did accept it
    assert "tracking_id" not in ledger

    consume_reports(table, postbacks.take(2))  # N201 and N202 under a TRACKINGID linked to nothing
    assert "request" not in table.message(tracking_id)

    # Found by number: the message, with no request.
    code, out, _ = cli("--json", "messages", "--to", f"+1 ({to[1:4]}) {to[4:7]}-{to[7:]}")
    assert code == 0
    listed = json.loads(out)
    assert listed["to"] == to
    (message,) = listed["messages"]
    assert (message["tracking_id"], message["first_report_code"], message["state"]) == (
        tracking_id,
        "N201",
        "DELIVERED",
    )
    assert (message["from"], message["linked"], message["request_id"]) == (FROM, False, None)

    # Now: the likely message, shown with its evidence; not linked before its window has settled.
    code, out, _ = cli("--json", "unknown", "--limit", "500")
    assert code == 0
    (listed_request,) = [r for r in json.loads(out)["requests"] if r["request_id"] == request_id]
    plan = listed_request["reconciliation"]
    assert (plan["verdict"], plan["likely_tracking_id"]) == ("likely", tracking_id)
    (evidence,) = plan["candidates"]
    assert (evidence["to"], evidence["from"], evidence["to_matches"], evidence["from_matches"]) == (
        to,
        FROM,
        True,
        True,
    )
    assert evidence["codes"] == ["N201", "N202"]
    assert 0 <= evidence["after_first_claim_s"] < 5
    code, text, _ = cli("unknown", "--limit", "500")
    assert f"likely message: {tracking_id}" not in text  # the list is one row per request
    assert "do not resend it" in text
    code, text, _ = cli("request", request_id)
    assert code == 0
    assert f"likely message: {tracking_id} (linked once its window settles" in text
    assert "N201, N202" in text
    # A resend would deliver it twice: refused, even with --yes, unless asked for against the evidence.
    code, _, err = cli("resend", request_id, "--yes")
    assert code == 2
    assert f"message {tracking_id} to the same number" in err
    assert "--even-if-likely-sent" in err
    assert SendLedger(table).get(request_id)["status"] == "OUTCOME_UNKNOWN"

    code, out, _ = cli("--json", "reconcile")
    assert code == 0
    (reviewed,) = [r for r in json.loads(out)["requests"] if r["request_id"] == request_id]
    assert (reviewed["outcome"], reviewed["verdict"]) == ("not_linked", "likely")
    assert SendLedger(table).get(request_id)["status"] == "OUTCOME_UNKNOWN"

    # An hour later: a dry run changes nothing, then the link.
    moment = datetime.now(UTC) + SETTLED
    monkeypatch.setattr(ops_reconcile, "now", lambda: moment)
    code, out, _ = cli("--json", "reconcile", "--dry-run")
    (reviewed,) = [r for r in json.loads(out)["requests"] if r["request_id"] == request_id]
    assert (reviewed["outcome"], reviewed["likely_tracking_id"]) == ("would_link", tracking_id)
    assert SendLedger(table).get(request_id)["status"] == "OUTCOME_UNKNOWN"
    code, text, _ = cli("reconcile")
    assert code == 0
    # The table pads its columns to the longest id among every unknown request the table holds.
    assert re.search(rf"^\s*{re.escape(request_id)}\s+linked\s", text, re.MULTILINE), text

    settled = SendLedger(table).get(request_id)
    assert settled["status"] == "ACCEPTED"
    assert settled["tracking_id"] == tracking_id
    assert "gsi1pk" not in settled  # off the OUTCOME_UNKNOWN worklist
    assert settled["reconciled"]["by"] == "ops reconcile"
    assert settled["reconciled"]["at"] == iso(moment)
    assert settled["attempt_log"][-1]["outcome"] == "reconciled"

    code, out, _ = cli("--json", "request", request_id)
    assert code == 0
    document = json.loads(out)
    assert document["status"] == "ACCEPTED"
    assert document["provider"]["tracking_id"] == tracking_id
    assert document["reconciliation"]["reconciled"]["tracking_id"] == tracking_id
    assert document["message"]["state"] == "DELIVERED"
    assert [e["code"] for e in document["message"]["history"]] == ["N201", "N202"]
    assert document["message"]["sender"]["request_id"] == request_id  # the outbound record joins them
    code, text, _ = cli("request", request_id)
    assert f"send request {request_id}: ACCEPTED" in text
    assert f"reconciled: linked to message {tracking_id} (was OUTCOME_UNKNOWN" in text
    assert "DELIVERED (N202)" in text

    code, out, _ = cli("--json", "unknown", "--limit", "500")
    assert request_id not in {r["request_id"] for r in json.loads(out)["requests"]}
    code, out, _ = cli("--json", "messages", "--to", to)
    (message,) = json.loads(out)["messages"]
    assert (message["request_id"], message["linked"], message["reconciled_by"]) == (
        request_id,
        True,
        "ops reconcile",
    )
    assert simulator.stats()["accepted_sends"] == 1  # nothing was sent again


def test_two_unknown_requests_to_one_number_in_one_window_stay_unlinked(
    cli, table, sender, simulator, postbacks, later
):
    to = us_number()
    first, second = sms(to, "twin-a"), sms(to, "twin-b")
    for request in (first, second):
        send_with_lost_answer(sender, simulator, request)
        consume_reports(table, postbacks.take(2))
    tracking_ids = {tid for r in (first, second) for tid in accepted_tracking_ids(simulator, r["text"])}
    assert len(tracking_ids) == 2

    code, out, _ = cli("--json", "reconcile")
    assert code == 0
    reviewed = {r["request_id"]: r for r in json.loads(out)["requests"]}
    for request, other in ((first, second), (second, first)):
        plan = reviewed[request["request_id"]]
        assert (plan["outcome"], plan["verdict"], plan["likely_tracking_id"]) == (
            "not_linked",
            "ambiguous",
            None,
        )
        assert plan["reason"] == (
            f"2 candidate messages; another request to this number in the window: "
            f"{other['request_id']} (OUTCOME_UNKNOWN)"
        )
        assert {c["tracking_id"] for c in plan["candidates"]} == tracking_ids
        assert SendLedger(table).get(request["request_id"])["status"] == "OUTCOME_UNKNOWN"
    assert all("request" not in table.message(tid) for tid in tracking_ids)

    code, text, _ = cli("unknown", "--limit", "500")
    assert f"{first['request_id']}  ambiguous" in text
    assert "2 candidate messages; another request to this number in the window" in text
    code, text, _ = cli("request", second["request_id"])
    assert "likely message: not linked, ambiguous" in text
    assert f"{first['request_id']}  OUTCOME_UNKNOWN" in text  # the competing request, named
    code, out, _ = cli("--json", "messages", "--to", to)
    assert {m["tracking_id"] for m in json.loads(out)["messages"]} == tracking_ids
    assert all(not m["linked"] for m in json.loads(out)["messages"])


# -- the write is conditional, and the hourly run links settled requests ------------------------------------
def settled_unknown(table, to: str, at: datetime) -> tuple[dict, str]:
    """An OUTCOME_UNKNOWN ledger claimed at `at` and the N201/N202 of an unlinked message 2 s later."""
    request = sms(to, "past")
    body = json.dumps(request)
    store = SendLedger(table)
    claim = store.claim(
        parse_send_request_json(body), body, now=at, lease_until=at.timestamp() + 60, resend_orphans=False
    )
    fields = {
        "error_class": "TRANSIENT",
        "transport_error": "connection_lost",
        "outcome_unknown_reason": "lost",
    }
    ledger = store.finish(
        claim,
        SendStatus.OUTCOME_UNKNOWN,
        at + timedelta(seconds=1),
        fields,
        outcome="outcome_unknown",
        called=True,
    )
    tracking_id = f"T-rec-{uuid.uuid4().hex}"
    stamp = (at + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000000+00:00")
    consume_reports(
        table,
        [
            sample("sms_mt_n201.xml", TRACKINGID=tracking_id, TO=to, FROM=FROM, TIMESTAMP=stamp),
            sample("sms_mt_n202.xml", TRACKINGID=tracking_id, TO=to, FROM=FROM, TIMESTAMP=stamp),
        ],
    )
    return ledger, tracking_id


def test_only_one_of_two_concurrent_links_is_written(table):
    at = datetime.now(UTC) - timedelta(hours=2)
    ledger, tracking_id = settled_unknown(table, us_number(), at)
    now = datetime.now(UTC)
    first, second = Reconciler(table), Reconciler(table)
    plans = [first.plan(ledger, now=now), second.plan(ledger, now=now)]
    assert [p.verdict.value for p in plans] == ["link", "link"]
    assert first.link(ledger, plans[0], now=now, by="one") is LinkOutcome.LINKED
    assert second.link(ledger, plans[1], now=now, by="two") is LinkOutcome.REQUEST_CHANGED
    assert SendLedger(table).get(ledger["request_id"])["reconciled"]["by"] == "one"
    assert table.message(tracking_id)["request"]["reconciled_by"] == "one"


def test_a_message_linked_meanwhile_is_not_linked_again(table):
    at = datetime.now(UTC) - timedelta(hours=2)
    ledger, tracking_id = settled_unknown(table, us_number(), at)
    reconciler = Reconciler(table)
    decided = reconciler.plan(ledger, now=datetime.now(UTC))
    # Meanwhile the message's own request is found (the sender wrote its outbound record late).
    table.put_all(
        outbound_items({"tracking_id": tracking_id, "accepted_at": iso(at), "request_id": "r-other"})
    )
    assert reconciler.link(ledger, decided, now=datetime.now(UTC), by="test") is LinkOutcome.MESSAGE_LINKED
    assert SendLedger(table).get(ledger["request_id"])["status"] == "OUTCOME_UNKNOWN"
    assert table.message(tracking_id)["request"]["request_id"] == "r-other"


def test_the_hourly_stale_function_links_a_settled_request(moto_server, aws_stack, table):
    stale = local_stack.load_functions(aws_stack, moto_server.endpoint_url)["StaleMessagesFunction"]
    to = us_number()
    settled_ledger, settled_tid = settled_unknown(table, to, datetime.now(UTC) - timedelta(hours=2))
    recent_ledger, recent_tid = settled_unknown(table, us_number(), datetime.now(UTC) - timedelta(minutes=5))

    result = stale.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert settled_ledger["request_id"] in result["reconciled"]["linked"]
    assert recent_ledger["request_id"] not in result["reconciled"]["linked"]  # its window has not settled
    linked = SendLedger(table).get(settled_ledger["request_id"])
    assert (linked["status"], linked["tracking_id"]) == ("ACCEPTED", settled_tid)
    assert linked["reconciled"]["by"] == "stale function"
    assert table.message(settled_tid)["request"]["request_id"] == settled_ledger["request_id"]
    assert SendLedger(table).get(recent_ledger["request_id"])["status"] == "OUTCOME_UNKNOWN"
    assert "request" not in table.message(recent_tid)
