"""Every event the stream decisions publish validates against its documented JSON Schema (docs/events/), for a
wide set of stream records built from the planner's output for every provider postback fixture (alone, and
as message histories in many orders, with and without arrival stamps) and from the sender's ledger items
in each final status. The schemas are strict: a detail with a field more, a field less or a wrong type
fails."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mmsbridge.core.times import iso
from mmsbridge.events.changes import DetailType, Event, put_events_entry
from mmsbridge.events.relay import relay
from mmsbridge.postbacks.reader import PostbackError
from mmsbridge.sending.ledger import outbound_items, rejected_item
from mmsbridge.sending.provider_xml import parse_response
from tests.unit.test_events import (
    BUS,
    POSTBACKS,
    RESPONSES,
    T0,
    TRACKING_ID,
    RecordingPublisher,
    StreamTable,
    accepted,
    body,
    decided,
    deliver,
    ledger,
    sender_accepts,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "docs" / "events"
MESSAGE_REPORTS = (
    "mms_mt_n101.xml",
    "mms_mt_n101_sentas_sms.xml",
    "mms_mt_n102.xml",
    "mms_mt_n102_rejected.xml",
    "mms_mt_e101.xml",
    "mms_mt_e102.xml",
    "mms_mt_n202_failed.xml",
    "sms_mt_n201.xml",
    "sms_mt_e202.xml",
)
TEMPLATE_REPORTS = ("mms_mt_n003.xml", "mms_mt_e002.xml", "mms_mt_n013.xml", "mms_mt_e011.xml")


@cache
def schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        found[schema["x-detail-type"]] = schema
    return found


def validator(detail_type: str) -> Draft202012Validator:
    return Draft202012Validator(schemas()[detail_type], format_checker=Draft202012Validator.FORMAT_CHECKER)


def fixtures() -> list[Path]:
    return sorted(p for p in POSTBACKS.rglob("*.xml"))


@cache
def published() -> tuple[Event, ...]:
    """The events of the whole set of stream records."""
    events: list[Event] = []
    for stamped in (True, False):
        # Every fixture alone, then all of them into one table (later ones meet earlier ones' items).
        shared = StreamTable()
        for number, path in enumerate(fixtures()):
            data = path.read_bytes()
            try:
                events += decided(alone := StreamTable(), deliver(alone, data, T0, stamped=stamped))
                events += decided(
                    shared, deliver(shared, data, T0 + timedelta(seconds=number), stamped=stamped)
                )
            except PostbackError:
                continue
        # Message histories in many orders, decided as they arrive and all at the end (a lagging publisher).
        for order in itertools.islice(itertools.permutations(MESSAGE_REPORTS, 4), 0, None, 37):
            keeping_up, lagging = StreamTable(), StreamTable()
            events += decided(keeping_up, sender_accepts(keeping_up, T0))
            written = sender_accepts(lagging, T0)
            for step, name in enumerate(order, start=1):
                data = body(name, TRACKINGID=TRACKING_ID)
                at = T0 + timedelta(seconds=step)
                events += decided(keeping_up, deliver(keeping_up, data, at, stamped=stamped))
                written += deliver(lagging, data, at, stamped=stamped)
            outcome = relay(written, reader=lagging, publisher=RecordingPublisher(), bus_name=BUS)
            events += outcome.published
        # Templates: ready, broken, ready again, broken again.
        templates = StreamTable()
        for step, name in enumerate(
            ("mms_mt_n003.xml", "mms_mt_e002.xml", "mms_mt_n013.xml", "mms_mt_e011.xml")
        ):
            data = body(name, MMSID="900")
            events += decided(
                templates, deliver(templates, data, T0 + timedelta(minutes=step), stamped=stamped)
            )
    events += sender_events()
    return tuple(events)


def sender_events() -> list[Event]:
    table = StreamTable()
    written = sender_accepts(table, T0)
    for number, reasons in enumerate(
        ([("to", "is required")], [("text", "is required"), ("from", "bad")], [])
    ):
        written.append(table.put(rejected_item(f'{{"n": {number}}}', f"r-{number}", reasons, T0)))
    written.append(table.put(rejected_item("[]", None, [("$", "must be an object")], T0)))
    written.append(table.put(rejected_item('{"request_id": 7}', 7, [("request_id", "must be a string")], T0)))
    sending = ledger("SENDING", T0)
    later = T0 + timedelta(minutes=1)
    failure = parse_response((RESPONSES / "failure_e626.xml").read_bytes(), http_status=200)
    outcomes = [
        ledger("SUPPRESSED", later, before=sending, error_info="on the suppression list (opted out)"),
        ledger(
            "FAILED",
            later,
            before=sending,
            error_code=failure.error_code,
            error_class=failure.error_class.value if failure.error_class else None,
            error_info=failure.error_info,
            http_status=200,
        ),
        ledger("OUTCOME_UNKNOWN", later, before=sending, outcome_unknown_reason="timed out after sending"),
    ]
    for number, item in enumerate(outcomes):
        item = {**item, "pk": f"REQ#other-{number}"}
        written += [table.put({**sending, "pk": item["pk"]}), table.put(item)]
    unknown = {**outcomes[2], "pk": "REQ#order-1042-shipped", "version": 9}
    reconciled = {
        **accepted(T0),
        "version": 10,
        "updated_at": iso(T0 + timedelta(hours=1)),
        "reconciled": {"at": iso(T0 + timedelta(hours=1)), "by": "ops"},
    }
    written += [table.put(unknown), table.put(reconciled)]
    written += [table.put(item) for item in outbound_items(reconciled)]
    return decided(table, [c for c in written if c is not None])


def test_the_schemas_are_valid_draft_2020_12_schemas_one_per_detail_type():
    assert set(schemas()) == {member.value for member in DetailType}
    for schema in schemas().values():
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["x-source"] == "mmsbridge"
        assert schema["additionalProperties"] is False


def test_the_set_of_records_publishes_every_event_type_and_state():
    events = published()
    assert {e.detail_type for e in events} == set(DetailType)
    details = [e.detail for e in events if e.detail_type is DetailType.MESSAGE_STATE_CHANGED]
    assert {d["new_state"] for d in details} == {"SUBMITTED", "SENT", "FAILED", "UNDELIVERED", "DELIVERED"}
    assert any(d["conflict"] for d in details)
    settled = [e.detail for e in events if e.detail_type is DetailType.SEND_REQUEST_SETTLED]
    assert {d["status"] for d in settled} == {
        "ACCEPTED",
        "REJECTED",
        "SUPPRESSED",
        "FAILED",
        "OUTCOME_UNKNOWN",
    }
    assert any(d["reconciled"] for d in settled)
    scopes = {e.detail["scope"] for e in events if e.detail_type is DetailType.SUBSCRIPTION_CHANGED}
    assert scopes == {"campaign", "email_campaign", "suppression_list"}
    assert len(events) > 150


def test_every_event_published_validates_against_its_schema():
    problems = []
    for event in published():
        entry = put_events_entry(event, BUS)
        assert entry["Source"] == "mmsbridge"
        detail = json.loads(entry["Detail"])
        for error in validator(entry["DetailType"]).iter_errors(detail):
            problems.append(f"{entry['DetailType']}: {error.json_path}: {error.message}")
    assert not problems, "\n".join(sorted(set(problems))[:20])


def test_an_oversized_detail_that_was_shortened_still_validates():
    table = StreamTable()
    data = (POSTBACKS / "mms_mo_n401.xml").read_bytes()
    (change,) = deliver(table, data, T0)
    big = {**change.new, "pk": "IN#MMS_MO#big", "text": "x" * (300 * 1024)}
    (event,) = decided(table, [table.put(big)])
    assert event.detail["truncated"] is True
    validator(event.detail_type.value).validate(event.detail)


@pytest.mark.parametrize("detail_type", [member.value for member in DetailType])
def test_the_schemas_are_strict(detail_type):
    """A field more, a field less, a wrong type: each fails, so the conformance test can fail."""
    detail = next(e.detail for e in published() if e.detail_type.value == detail_type)
    check = validator(detail_type)
    check.validate(detail)
    assert not check.is_valid({**detail, "unexpected": 1})
    for name in detail:
        if name == "truncated":
            continue
        assert not check.is_valid({k: v for k, v in detail.items() if k != name}), name
    assert not check.is_valid({**detail, "event_id": "not-a-hash"})
    for name, value in detail.items():
        assert not check.is_valid({**detail, name: 5 if isinstance(value, list) else [5]}), name
