"""The events feature's decisions: which stream records publish which events, the current-state rule (late
lower-ranked reports, duplicates, replays, equal ranks, two different final reports, stream lag), stable
ids across re-processing, and the relay's checkpoint.

The stream is the table's: `StreamTable` applies the planner's and the ledger's real items as DynamoDB
does (a put that changes nothing writes no record; a new key is an INSERT, a changed item a MODIFY), and
the decisions read the partition as it is when they run, so a lagging publisher sees later items too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

from mmsbridge.core.times import iso
from mmsbridge.events import changes
from mmsbridge.events.changes import (
    FINAL_SEND_STATUSES,
    MAX_ENTRY_BYTES,
    DetailType,
    PartitionRead,
    StreamChange,
    decide,
    entry_size,
    partition_read,
    put_events_entry,
)
from mmsbridge.events.publisher import PublishResult
from mmsbridge.events.relay import relay
from mmsbridge.events.stream_records import stream_change
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback
from mmsbridge.sending.ledger import FINAL, accepted_fields, outbound_items, rejected_item, sha256_hex
from mmsbridge.sending.provider_xml import parse_response
from mmsbridge.sending.request import validate_send_request
from tests.conftest import SAMPLES

POSTBACKS = SAMPLES / "postbacks"
RESPONSES = SAMPLES / "responses"
T0 = datetime(2024, 2, 6, 14, 14, 0, tzinfo=UTC)
TRACKING_ID = "TU1TXzcwMzExOA=="  # mms_mt_n101.xml and mms_mt_n102.xml
BUS = "mmsbridge-events"


# -- the table and its stream --------------------------------------------------------------------------------
@dataclass
class StreamTable:
    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    stream: list[StreamChange] = field(default_factory=list)

    def put(self, item: Mapping[str, Any]) -> StreamChange | None:
        key = (item["pk"], item["sk"])
        old = self.items.get(key)
        new = dict(item)
        if old == new:
            return None  # DynamoDB writes no stream record for a put that changes nothing
        self.items[key] = new
        change = StreamChange(
            f"{len(self.stream) + 1:021d}", "MODIFY" if old else "INSERT", *key, new=new, old=old
        )
        self.stream.append(change)
        return change

    def remove(self, key: tuple[str, str]) -> StreamChange:
        old = self.items.pop(key)
        change = StreamChange(f"{len(self.stream) + 1:021d}", "REMOVE", *key, new=None, old=old)
        self.stream.append(change)
        return change

    def read(self, wanted: PartitionRead) -> list[dict[str, Any]]:
        return [
            dict(item)
            for (pk, sk), item in sorted(self.items.items())
            if pk == wanted.pk and (wanted.sk_prefix is None or sk.startswith(wanted.sk_prefix))
        ]


def body(name: str, **fields: str | None) -> bytes:
    """A provider fixture with some fields replaced (None: removed)."""
    text = (POSTBACKS / name).read_text()
    for tag, value in fields.items():
        pattern = re.compile(rf"\s*<{tag}>[^<]*</{tag}>")
        if value is None:
            text = pattern.sub("", text)
        elif pattern.search(text):
            text = pattern.sub(f"\n    <{tag}>{value}</{tag}>", text)
        else:
            text = text.replace("</POSTBACK>", f"    <{tag}>{value}</{tag}>\n</POSTBACK>")
    return text.encode()


def received(data: bytes, at: datetime) -> Received:
    sha = hashlib.sha256(data).hexdigest()
    return Received(sha, parse_postback(data, received_at=at), f"raw/{sha}.xml", sha, at)


def planned(data: bytes, at: datetime, *, stamped: bool) -> list[dict[str, Any]]:
    """The consumer's items for one postback received at `at`. `stamped`: with the proposed planner addition
    (`received_at` on rank markers and on the latest-state items)."""
    arrival = received(data, at)
    items = list(plan_batch([arrival]).puts.values())
    if stamped:
        for item in items:
            if item["sk"].startswith(("RANK#", "CAMPAIGN#", "AT#")):
                item["received_at"] = iso(at)
    return items


def deliver(table: StreamTable, data: bytes, at: datetime, *, stamped: bool = True) -> list[StreamChange]:
    return [c for c in (table.put(item) for item in planned(data, at, stamped=stamped)) if c is not None]


@dataclass
class RecordingPublisher:
    entries: list[dict[str, Any]] = field(default_factory=list)
    fail: frozenset[int] = frozenset()  # positions, per call, that fail

    def publish(self, entries: Sequence[Mapping[str, Any]]) -> PublishResult:
        result = PublishResult(calls=1)
        for position, entry in enumerate(entries):
            if position in self.fail:
                result.failed[position] = "InternalFailure"
            else:
                self.entries.append(dict(entry))
        return result


def decided(table: StreamTable, records: Iterable[StreamChange]) -> list[changes.Event]:
    """Each record decided alone (its own batch), reading the table as it is now."""
    events = []
    for record in records:
        wanted = partition_read(record)
        event = decide(record, table.read(wanted) if wanted else None)
        if event is not None:
            events.append(event)
    return events


def as_written(table: StreamTable, data: bytes, at: datetime, *, stamped: bool = True) -> list[changes.Event]:
    """Deliver one postback and decide its records at once (a publisher that keeps up)."""
    return decided(table, deliver(table, data, at, stamped=stamped))


def states(events: Iterable[changes.Event]) -> list[tuple[str | None, str]]:
    return [
        (e.detail["old_state"], e.detail["new_state"])
        for e in events
        if e.detail_type is DetailType.MESSAGE_STATE_CHANGED
    ]


def n101(tracking_id: str = TRACKING_ID) -> bytes:
    return body("mms_mt_n101.xml", TRACKINGID=tracking_id)


def n102(tracking_id: str = TRACKING_ID) -> bytes:
    return body("mms_mt_n102.xml", TRACKINGID=tracking_id)


def e102(tracking_id: str = TRACKING_ID) -> bytes:
    return body("mms_mt_e102.xml", TRACKINGID=tracking_id)


# -- the sender's items --------------------------------------------------------------------------------------
SMS = {
    "request_id": "order-1042-shipped",
    "action": "sendSMS",
    "to": "+1 (774) 319-9144",
    "from": "47215",
    "text": "Northwind: your order 1042 has shipped.",
    "campaign_ref": "1001",
}


def ledger(status: str, at: datetime, *, before: Mapping[str, Any] | None = None, **fields: Any) -> dict:
    """A ledger item as the sender's SendLedger writes it (claim, then finish)."""
    from mmsbridge.sending.ledger import ledger_key, request_summary

    request = validate_send_request(SMS)
    base = dict(before) if before is not None else {}
    if not base:
        text = str(SMS)
        base = {
            **ledger_key(request.request_id),
            "type": "send_request",
            **request_summary(request),
            "body": text,
            "payload_sha256": sha256_hex(text),
            "received_at": iso(at - timedelta(seconds=1)),
            "claims": 1,
            "version": 1,
        }
    return {**base, **fields, "status": status, "updated_at": iso(at), "version": int(base["version"]) + 1}


def accepted(at: datetime, tracking_id: str = TRACKING_ID) -> dict:
    result = parse_response(
        (RESPONSES / "send_sms_success.xml").read_bytes().replace(b"U01TXzYwODUxNA==", tracking_id.encode()),
        http_status=200,
    )
    sending = ledger("SENDING", at - timedelta(milliseconds=500))
    return ledger("ACCEPTED", at, before=sending, **accepted_fields(result, at))


def sender_accepts(table: StreamTable, at: datetime, tracking_id: str = TRACKING_ID) -> list[StreamChange]:
    """The sender's writes for an accepted send: its ledger, then the outbound record and SUBMITTED marker."""
    settled = accepted(at, tracking_id)
    written = [table.put(ledger("SENDING", at - timedelta(milliseconds=500))), table.put(settled)]
    written += [table.put(item) for item in outbound_items(settled)]
    return [c for c in written if c is not None]


# -- the message state: the current-state rule ---------------------------------------------------------------
def test_a_message_in_order_publishes_each_change_with_the_state_it_left():
    table = StreamTable()
    events = decided(table, sender_accepts(table, T0))
    events += as_written(table, n101(), T0 + timedelta(seconds=10))
    events += as_written(table, n102(), T0 + timedelta(seconds=20))
    assert states(events) == [(None, "SUBMITTED"), ("SUBMITTED", "SENT"), ("SENT", "DELIVERED")]
    delivered = events[-1].detail
    assert delivered["request_id"] == "order-1042-shipped"
    assert delivered["to"] == "17743199144"
    assert delivered["code"] == "N102"
    assert delivered["provider_time"] == "2024-02-06T14:14:48.000000Z"
    assert delivered["conflict"] is False


@pytest.mark.parametrize("stamped", [True, False], ids=["stamped", "unstamped"])
@pytest.mark.parametrize("lagging", [True, False], ids=["lagging", "keeping-up"])
def test_a_late_lower_ranked_report_publishes_nothing(stamped, lagging):
    table = StreamTable()
    first = deliver(table, n102(), T0, stamped=stamped)
    early = decided(table, first) if not lagging else []
    late = deliver(table, n101(), T0 + timedelta(seconds=5), stamped=stamped)
    events = early + decided(table, first if lagging else []) + decided(table, late)
    assert [new for _, new in states(events)] == ["DELIVERED"]
    # Unstamped, a lagging publisher cannot tell the late SENT from an earlier one: it names it the old state.
    assert states(events)[0][0] == ("SENT" if lagging and not stamped else None)


@pytest.mark.parametrize("stamped", [True, False], ids=["stamped", "unstamped"])
def test_a_duplicate_report_writes_no_record_and_a_repeated_record_the_same_event(stamped):
    table = StreamTable()
    written = deliver(table, n101(), T0, stamped=stamped)
    assert deliver(table, n101(), T0, stamped=stamped) == []  # an SQS redelivery: identical items
    once, again = decided(table, written), decided(table, written)  # a stream retry of the same records
    assert states(once) == [(None, "SENT")]
    assert [e.event_id for e in once] == [e.event_id for e in again]
    assert [e.detail for e in once] == [e.detail for e in again]


def test_a_provider_retry_received_later_modifies_the_marker_and_publishes_nothing():
    table = StreamTable()
    as_written(table, n101(), T0)
    retried = deliver(table, n101(), T0 + timedelta(minutes=2))  # the same body, its own receipt time
    assert retried
    assert {c.event_name for c in retried} == {"MODIFY"}
    assert decided(table, retried) == []


def test_a_replay_of_every_item_publishes_nothing():
    table = StreamTable()
    as_written(table, n101(), T0)
    as_written(table, n102(), T0 + timedelta(seconds=9))
    snapshot = [dict(item) for item in table.items.values()]
    assert [table.put(item) for item in snapshot] == [None] * len(snapshot)


def test_equal_ranks_publish_once():
    """N102 and N202 both say DELIVERED: the second final report of the same rank changes nothing."""
    table = StreamTable()
    first = as_written(table, n102(), T0)
    second = as_written(table, body("mms_mt_n202.xml", TRACKINGID=TRACKING_ID), T0 + timedelta(seconds=3))
    assert states(first) == [(None, "DELIVERED")]
    assert second == []


def test_two_different_final_reports_publish_only_the_higher_one_as_a_conflict():
    table = StreamTable()
    events = as_written(table, e102(), T0) + as_written(table, n102(), T0 + timedelta(seconds=3))
    assert states(events) == [(None, "UNDELIVERED"), ("UNDELIVERED", "DELIVERED")]
    assert [e.detail["conflict"] for e in events] == [False, True]
    assert events[0].detail["failure_reason"]

    reverse = StreamTable()
    events = as_written(reverse, n102(), T0) + as_written(reverse, e102(), T0 + timedelta(seconds=3))
    assert states(events) == [(None, "DELIVERED")]


def test_a_lagging_publisher_with_arrival_stamps_still_publishes_every_change():
    """Each record decided in its own batch, after every write: the stamps say what existed before each."""
    table = StreamTable()
    written = sender_accepts(table, T0)
    written += deliver(table, n101(), T0 + timedelta(seconds=10))
    written += deliver(table, n102(), T0 + timedelta(seconds=20))
    assert states(decided(table, written)) == [
        (None, "SUBMITTED"),
        ("SUBMITTED", "SENT"),
        ("SENT", "DELIVERED"),
    ]


def test_a_lagging_publisher_without_stamps_skips_overtaken_states_but_never_goes_back():
    table = StreamTable()
    written = deliver(table, n101(), T0, stamped=False) + deliver(
        table, n102(), T0 + timedelta(seconds=20), stamped=False
    )
    assert states(decided(table, written)) == [("SENT", "DELIVERED")]


def test_within_one_batch_the_stream_order_says_what_came_later_without_stamps():
    table = StreamTable()
    written = deliver(table, n101(), T0, stamped=False) + deliver(
        table, n102(), T0 + timedelta(seconds=20), stamped=False
    )
    publisher = RecordingPublisher()
    relay(written, reader=table, publisher=publisher, bus_name=BUS)
    assert [(e["DetailType"], e["Detail"].count('"new_state":"SENT"')) for e in publisher.entries] == [
        ("Message State Changed", 1),
        ("Message State Changed", 0),
    ]


def test_a_reconciled_submitted_marker_after_the_reports_publishes_nothing():
    """Reconciliation links a message whose reports arrived long ago: its SUBMITTED marker (dated at the first
    report) arrived when the outbound record says it was reconciled."""
    table = StreamTable()
    as_written(table, n101(), T0 + timedelta(seconds=10))
    settled = accepted(T0, TRACKING_ID)
    outbound, marker = outbound_items(settled)
    outbound.update(reconciled_at=iso(T0 + timedelta(hours=3)), reconciled_by="ops")
    written = [table.put(outbound), table.put(marker)]
    assert decided(table, [c for c in written if c is not None]) == []


def test_markers_that_are_modified_or_removed_publish_nothing():
    table = StreamTable()
    as_written(table, n101(), T0)
    (key,) = [k for k in table.items if k[1].startswith("RANK#")]
    closed = {k: v for k, v in table.items[key].items() if k not in ("gsi1pk", "gsi1sk")}
    modified = table.put(closed)  # the stale check takes it off the open index
    assert modified is not None
    assert modified.event_name == "MODIFY"
    expired = table.remove(key)  # TTL
    assert decided(table, [modified, expired]) == []


# -- the other events ----------------------------------------------------------------------------------------
def test_inbound_sms_and_mms_are_published_once():
    table = StreamTable()
    sms = as_written(table, (POSTBACKS / "sms_mo_n211.xml").read_bytes(), T0)
    mms = as_written(table, (POSTBACKS / "mms_mo_n401.xml").read_bytes(), T0)
    assert [e.detail_type for e in sms + mms] == [DetailType.INBOUND_MESSAGE_RECEIVED] * 2
    assert [e.detail["kind"] for e in sms + mms] == ["SMS", "MMS"]
    assert sms[0].detail["text"]
    assert mms[0].detail["files"]
    assert all(url.startswith("http") for url in mms[0].detail["files"])


def test_an_inbound_stop_publishes_the_message_and_the_opt_out():
    table = StreamTable()
    stop = body("sms_mo_n211_stop.xml")
    events = as_written(table, stop, T0)
    kinds = [(e.detail_type, e.detail.get("scope")) for e in events]
    assert kinds == [
        (DetailType.INBOUND_MESSAGE_RECEIVED, None),
        (DetailType.SUBSCRIPTION_CHANGED, "suppression_list"),
    ]
    assert events[0].detail["stop"] is True
    assert events[1].detail["opted_in"] is False


def test_subscriptions_publish_changes_only():
    table = StreamTable()
    mobile = {"MOBILE": "12175550186", "CAMPAIGNID": "5307"}
    opt_in = body("sub_n301.xml", **mobile, TIMESTAMP="2024-02-08T10:00:00-05:00")
    opt_out = body("sub_n302.xml", **mobile, TIMESTAMP="2024-02-08T17:42:11-05:00")
    opt_out_again = body("sub_n302.xml", **mobile, TIMESTAMP="2024-02-09T08:00:00-05:00")
    first = as_written(table, opt_in, T0)
    second = as_written(table, opt_out, T0 + timedelta(hours=1))
    third = as_written(table, opt_out_again, T0 + timedelta(hours=2))
    assert [(e.detail["scope"], e.detail["was_opted_in"], e.detail["opted_in"]) for e in first] == [
        ("campaign", None, True),
        ("suppression_list", None, True),
    ]
    assert [(e.detail["scope"], e.detail["was_opted_in"], e.detail["opted_in"]) for e in second] == [
        ("campaign", True, False),
        ("suppression_list", True, False),
    ]
    assert third == []  # opted out already
    assert second[0].detail["campaign_id"] == "5307"
    assert second[1].detail["campaign_id"] is None


def test_a_late_older_subscription_report_publishes_nothing():
    table = StreamTable()
    mobile = {"MOBILE": "12175550186", "CAMPAIGNID": "5307"}
    as_written(table, body("sub_n302.xml", **mobile, TIMESTAMP="2024-02-08T17:42:11-05:00"), T0)
    late = body("sub_n301.xml", **mobile, TIMESTAMP="2024-02-08T10:00:00-05:00")
    assert as_written(table, late, T0 + timedelta(hours=1)) == []


def test_email_subscriptions_are_published():
    table = StreamTable()
    events = as_written(table, (POSTBACKS / "email_sub_n303.xml").read_bytes(), T0)
    events += as_written(table, (POSTBACKS / "email_sub_n304.xml").read_bytes(), T0 + timedelta(hours=1))
    email = events[0].detail["email"]
    assert [(e.detail["scope"], e.detail["email"], e.detail["opted_in"]) for e in events][:1] == [
        ("email_campaign", email, True)
    ]
    assert all(e.detail["time"] for e in events)  # an e-mail change is dated by its receipt


def test_templates_publish_ready_and_broken():
    table = StreamTable()
    ready = as_written(table, body("mms_mt_n003.xml", MMSID="700"), T0)
    broken = as_written(table, body("mms_mt_e004.xml", MMSID="700"), T0 + timedelta(minutes=1))
    late_ready = as_written(table, body("mms_mt_n003.xml", MMSID="700"), T0 + timedelta(minutes=2))
    assert [(e.detail["old_state"], e.detail["new_state"]) for e in ready + broken] == [
        (None, "READY"),
        ("READY", "BROKEN"),
    ]
    assert all(e.detail_type is DetailType.TEMPLATE_STATUS_CHANGED for e in ready + broken)
    assert late_ready == []


def test_send_requests_settle_once_per_final_status():
    table = StreamTable()
    events = decided(table, sender_accepts(table, T0))
    settled = [e for e in events if e.detail_type is DetailType.SEND_REQUEST_SETTLED]
    assert [(e.detail["previous_status"], e.detail["status"]) for e in settled] == [("SENDING", "ACCEPTED")]
    assert settled[0].detail["tracking_id"] == TRACKING_ID
    # Written again unchanged: nothing; rewritten with the same status (a later field): nothing.
    again = table.put({**table.items[("REQ#order-1042-shipped", "REQUEST")], "note": "x"})
    assert again is not None
    assert decided(table, [again]) == []


def test_a_rejected_request_is_settled_with_its_reasons():
    table = StreamTable()
    item = rejected_item('{"request_id": "r-1"}', "r-1", [("to", "is required")], T0)
    events = decided(table, [table.put(item)])
    assert [(e.detail["status"], e.detail["reasons"]) for e in events] == [
        ("REJECTED", [{"field": "to", "reason": "is required"}])
    ]
    nameless = rejected_item("not json", None, [("$", "is not valid JSON")], T0)
    (event,) = decided(table, [table.put(nameless)])
    assert event.detail["request_id"] is None


def test_reconciliation_settles_an_outcome_unknown_request_again():
    table = StreamTable()
    sending = ledger("SENDING", T0)
    unknown = ledger("OUTCOME_UNKNOWN", T0 + timedelta(minutes=5), before=sending, outcome_unknown_reason="x")
    written = [table.put(sending), table.put(unknown)]
    reconciled = {
        **accepted(T0),
        "version": unknown["version"] + 1,
        "updated_at": iso(T0 + timedelta(hours=2)),
        "reconciled": {"at": iso(T0 + timedelta(hours=2)), "by": "ops"},
    }
    written.append(table.put(reconciled))
    settled = decided(table, [c for c in written if c is not None])
    assert [(e.detail["previous_status"], e.detail["status"], e.detail["reconciled"]) for e in settled] == [
        ("SENDING", "OUTCOME_UNKNOWN", False),
        ("OUTCOME_UNKNOWN", "ACCEPTED", True),
    ]
    assert len({e.event_id for e in settled}) == 2


def test_the_final_statuses_are_the_ledgers():
    assert {status.value for status in FINAL} == FINAL_SEND_STATUSES


def test_items_that_are_not_events_publish_nothing():
    table = StreamTable()
    written = deliver(table, (POSTBACKS / "generate_pass_n801.xml").read_bytes(), T0)
    written += deliver(table, (POSTBACKS / "rcs_mt_n701.xml").read_bytes(), T0)
    written += deliver(table, (POSTBACKS / "mms_mt_n501.xml").read_bytes(), T0)
    written.append(table.put({"pk": "SEEN#x", "sk": "SEEN", "type": "first_seen", "first_seen": iso(T0)}))
    assert written
    assert decided(table, [c for c in written if c is not None]) == []


# -- ids -----------------------------------------------------------------------------------------------------
def test_ids_are_stable_across_reprocessing_and_distinct_across_changes():
    def run() -> list[changes.Event]:
        table = StreamTable()
        written = sender_accepts(table, T0)
        written += deliver(table, n101(), T0 + timedelta(seconds=10))
        written += deliver(table, n102(), T0 + timedelta(seconds=20))
        written += deliver(table, (POSTBACKS / "sms_mo_n211.xml").read_bytes(), T0)
        publisher = RecordingPublisher()
        return relay(written, reader=table, publisher=publisher, bus_name=BUS).published

    first, second = run(), run()
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == len(first) == 5


def test_a_batch_that_fails_part_way_is_retried_from_its_checkpoint_under_the_same_ids():
    table = StreamTable()
    written = sender_accepts(table, T0)
    written += deliver(table, n101(), T0 + timedelta(seconds=10))
    written += deliver(table, n102(), T0 + timedelta(seconds=20))
    failing = RecordingPublisher(fail=frozenset({1}))
    outcome = relay(written, reader=table, publisher=failing, bus_name=BUS)
    assert outcome.checkpoint is not None
    assert outcome.batch_item_failures() == {"batchItemFailures": [{"itemIdentifier": outcome.checkpoint}]}
    resume = [c.record_id for c in written].index(outcome.checkpoint)
    assert set(outcome.failed) == {outcome.checkpoint}
    retried = relay(written[resume:], reader=table, publisher=RecordingPublisher(), bus_name=BUS)
    assert retried.checkpoint is None
    everything = relay(written, reader=table, publisher=RecordingPublisher(), bus_name=BUS).published
    first_ids = [e.event_id for e in outcome.published]
    retried_ids = [e.event_id for e in retried.published]
    # Nothing lost; what went twice went under the same id; nothing before the checkpoint went twice.
    assert set(first_ids) | set(retried_ids) == {e.event_id for e in everything}
    before = {e.event_id for e in outcome.published if e.record_id < outcome.checkpoint}
    assert not before & set(retried_ids)


def test_a_record_that_cannot_be_decided_is_the_checkpoint_and_nothing_after_it_is_published():
    table = StreamTable()
    written = deliver(table, (POSTBACKS / "sms_mo_n211.xml").read_bytes(), T0)
    written += deliver(table, n101(), T0)
    written += deliver(table, (POSTBACKS / "mms_mo_n401.xml").read_bytes(), T0)

    class Broken:
        def read(self, wanted: PartitionRead) -> list[dict[str, Any]]:
            raise RuntimeError("throttled")

    publisher = RecordingPublisher()
    outcome = relay(written, reader=Broken(), publisher=publisher, bus_name=BUS)
    marker = next(c for c in written if c.sk.startswith("RANK#"))
    assert outcome.checkpoint == marker.record_id
    assert "throttled" in outcome.failed[marker.record_id]
    assert [e["DetailType"] for e in publisher.entries] == ["Inbound Message Received"]


def test_a_batch_with_nothing_to_publish_checkpoints_nothing():
    table = StreamTable()
    as_written(table, n101(), T0)
    expired = [table.remove(key) for key in list(table.items)]
    outcome = relay(expired, reader=table, publisher=RecordingPublisher(), bus_name=BUS)
    assert outcome.batch_item_failures() == {"batchItemFailures": []}


# -- entries -------------------------------------------------------------------------------------------------
def test_an_entry_names_the_source_the_detail_type_and_the_bus():
    table = StreamTable()
    (event,) = as_written(table, n101(), T0)
    entry = put_events_entry(event, BUS)
    assert entry["Source"] == "mmsbridge"
    assert entry["DetailType"] == "Message State Changed"
    assert entry["EventBusName"] == BUS
    assert f'"event_id":"{event.event_id}"' in entry["Detail"]


def test_an_oversized_inbound_message_is_shortened_to_fit():
    table = StreamTable()
    data = (POSTBACKS / "mms_mo_n401.xml").read_bytes()
    item = next(i for i in planned(data, T0, stamped=True) if i["type"] == "inbound")
    big = {
        **item,
        "pk": "IN#MMS_MO#big",
        "text": "x" * (300 * 1024),
        "files": ["https://e.example/" + "y" * 9000],
    }
    (event,) = decided(table, [table.put(big)])
    assert event.detail["truncated"] is True
    assert entry_size(put_events_entry(event, BUS)) <= MAX_ENTRY_BYTES
    assert event.detail["text"].startswith("xxx")


def test_a_lambda_stream_record_is_read_from_dynamodb_json():
    serializer = TypeSerializer()
    marker = next(i for i in planned(n101(), T0, stamped=True) if i["sk"].startswith("RANK#"))
    image = {name: serializer.serialize(value) for name, value in marker.items()}
    record = {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": "4421584500000000017450439091",
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    change = stream_change(record)
    assert change.record_id == "4421584500000000017450439091"
    assert change.key == (marker["pk"], marker["sk"])
    assert change.old is None
    assert change.new is not None
    assert int(change.new["rank"]) == 1
    (event,) = decided(StreamTable(items={change.key: dict(change.new)}), [change])
    assert event.detail["new_state"] == "SENT"


# -- the publisher's calls -----------------------------------------------------------------------------------
class CountingClient:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in range(len(Entries))]}


def test_a_call_carries_at_most_256_kib_and_an_entry_over_the_limit_is_reported():
    from mmsbridge.events.publisher import EventPublisher

    def sized(kib: int) -> dict[str, Any]:
        return {"Source": "mmsbridge", "DetailType": "x", "Detail": "y" * (kib * 1024), "EventBusName": BUS}

    client = CountingClient()
    result = EventPublisher(client, sleep=lambda _: None).publish([sized(100)] * 5 + [sized(300), sized(1)])
    assert client.calls == [2, 2, 2]
    assert list(result.failed) == [5]
    assert "over EventBridge's limit" in result.failed[5]
