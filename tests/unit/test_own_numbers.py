"""Postbacks speak only for our numbers: the pure check (own_numbers.py) per kind, and the consumer's verdict
on a table that only records what it is asked to write."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from mmsbridge.aws.state_table import ApplyResult
from mmsbridge.core import envelope
from mmsbridge.core.table_model import Plan
from mmsbridge.postbacks.consume import consume
from mmsbridge.postbacks.own_numbers import (
    NOT_OUR_NUMBER,
    OWN_SIDE_FIELD,
    foreign_number,
    mask,
    normalise,
    parse_own_numbers,
)
from mmsbridge.postbacks.reader import PostbackError, parse_postback
from tests.conftest import SAMPLES as PROVIDER_FIXTURES

SAMPLES = PROVIDER_FIXTURES / "postbacks"
RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# The provider's documented samples speak for 63184 (v1) and 29507 (hyphenated).
OURS = parse_own_numbers("63184,29507")
NOT_THEIRS = parse_own_numbers("47215,13125550100")  # a list that holds neither


def parsed(name: str):
    return parse_postback((SAMPLES / name).read_bytes(), received_at=RECEIVED_AT)


def body(origin: str, code: str, **fields: str) -> bytes:
    children = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    return f"<POSTBACK><ORIGIN>{origin}</ORIGIN><CODE>{code}</CODE>{children}</POSTBACK>".encode()


# -- the configured list -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", None, " ", ",", " , "])
def test_an_empty_list_turns_the_check_off(text):
    assert parse_own_numbers(text) == frozenset()
    assert foreign_number(parsed("sms_mo_n211_stop.xml"), parse_own_numbers(text)) is None


def test_the_list_is_read_as_digits():
    assert parse_own_numbers("47215,13125550100") == {"47215", "13125550100"}
    assert parse_own_numbers(" 47215 , +1 (312) 555-0100,") == {"47215", "13125550100"}
    assert parse_own_numbers(["406110", "447700900123"]) == {"406110", "447700900123"}


@pytest.mark.parametrize(
    "text", ["4721", "1234567", "1234567890123456", "47215;12345", "4721x", "00447700900123"]
)
def test_a_malformed_entry_is_refused_without_echoing_it(text):
    with pytest.raises(ValueError, match="OwnNumbers entry") as caught:
        parse_own_numbers(f"47215,{text}")
    assert "entry 2" in str(caught.value)
    assert text not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("47215", "47215"),
        ("+47215", "47215"),
        ("1 (312) 555-0100", "13125550100"),
        ("1.312.555.0100", "13125550100"),
    ],
)
def test_values_compare_as_digits(value, digits):
    assert normalise(value) == digits


@pytest.mark.parametrize("value", ["47215a", "++47215", "٤٧٢١٥", "", "+", "47215/1", "0x47215"])
def test_what_is_not_a_number_normalises_to_nothing(value):
    assert normalise(value) is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("13125550118", "+1 ******0118"),
        ("447700900123", "+44 ******0123"),
        ("642111111", "+64 ***1111"),
        ("47215", "***15"),
        ("406110", "****10"),
        ("99912345678", "*******5678"),  # no such country code: none shown
        ("12", "*2"),
        ("7", "*"),
        ("STOP", "(not a number, 4 characters)"),
    ],
)
def test_a_masked_number_shows_its_country_code_and_last_digits_only(value, shown):
    assert mask(value) == shown
    assert value not in shown


# -- per kind: ours is applied, another number is quarantined -----------------------------------------------
CHECKED = [
    ("sms_mo_n211.xml", "TO", "63184"),
    ("sms_mo_n211_stop.xml", "TO", "63184"),
    ("mms_mo_n401.xml", "TO", "63184"),
    ("lower/mms_mo_n401.xml", "TO", "29507"),
    ("lower/sms_mo_n211.xml", "TO", "29507"),
    ("sub_n301.xml", "SHORTCODE", "63184"),
    ("sub_n302.xml", "SHORTCODE", "63184"),
    ("lower/sub_n302.xml", "SHORTCODE", "29507"),
    ("mms_mt_n101.xml", "FROM", "63184"),
    ("mms_mt_n102.xml", "FROM", "63184"),
    ("mms_mt_n102_expired.xml", "FROM", "63184"),
    ("mms_mt_e101.xml", "FROM", "63184"),
    ("mms_mt_e102.xml", "FROM", "63184"),
    ("mms_mt_n202.xml", "FROM", "63184"),
    ("mms_mt_e202.xml", "FROM", "63184"),
    ("mms_mt_n103.xml", "FROM", "63184"),
    ("mms_mt_n501.xml", "FROM", "63184"),
    ("mms_mt_e999.xml", "FROM", "63184"),
    ("sms_mt_n201.xml", "FROM", "63184"),
    ("sms_mt_n202.xml", "FROM", "63184"),
    ("sms_mt_e201.xml", "FROM", "63184"),
    ("sms_mt_e202.xml", "FROM", "63184"),
    ("lower/mms_mt_n102_sms.xml", "FROM", "29507"),
    ("lower/sms_mt_n202.xml", "FROM", "29507"),
    ("legacy/wrapped_mms_mt_n102.xml", "FROM", "63184"),
]


@pytest.mark.parametrize(("name", "field_name", "number"), CHECKED, ids=[c[0] for c in CHECKED])
def test_a_postback_for_our_number_is_applied(name, field_name, number):
    postback = parsed(name)
    assert OWN_SIDE_FIELD[postback.origin] == field_name
    assert postback.fields[field_name] == number
    assert foreign_number(postback, OURS) is None
    assert foreign_number(postback, frozenset({number})) is None


@pytest.mark.parametrize(("name", "field_name", "number"), CHECKED, ids=[c[0] for c in CHECKED])
def test_a_postback_for_another_number_is_refused_with_the_field_and_the_number_masked(
    name, field_name, number
):
    postback = parsed(name)
    detail = foreign_number(postback, NOT_THEIRS)
    assert detail is not None
    assert detail.startswith(f"{postback.origin} {postback.code} {field_name} {mask(number)} ")
    assert "is not one of OwnNumbers" in detail
    assert number not in detail  # never the whole number
    for other in postback.fields.values():  # nor any other number of the postback
        assert other is None or not other.isdigit() or other not in detail


def test_a_delivery_report_names_the_substitution_abroad():
    detail = foreign_number(parsed("mms_mt_n102.xml"), NOT_THEIRS)
    assert detail is not None
    assert "default shortcode" in detail
    assert "replay" in detail
    inbound = foreign_number(parsed("sms_mo_n211.xml"), NOT_THEIRS)
    assert inbound is not None
    assert "default shortcode" not in inbound


def test_a_longcode_of_ours_matches_however_the_postback_decorates_it():
    own = parse_own_numbers("13125550100")
    for to in ("13125550100", "+13125550100", "1 312 555 0100", "1-312-555-0100"):
        postback = parse_postback(body("SMS_MO", "N211", FROM="14155550178", TO=to, TEXT="hi"))
        assert foreign_number(postback, own) is None, to
    # Nothing is guessed: the national form of our number is not our number.
    national = parse_postback(body("SMS_MO", "N211", FROM="14155550178", TO="3125550100", TEXT="hi"))
    assert foreign_number(national, own) is not None


def test_a_to_that_is_not_a_number_is_not_ours_and_is_not_echoed():
    postback = parse_postback(body("SMS_MO", "N211", FROM="14155550178", TO="47215;DROP", TEXT="hi"))
    detail = foreign_number(postback, parse_own_numbers("47215"))
    assert detail == "SMS_MO N211 TO (not a number, 10 characters) is not one of OwnNumbers"


def test_an_unrecognised_code_of_a_checked_origin_is_checked_too():
    postback = parse_postback(body("SMS_MO", "N299", FROM="14155550178", TO="55555", TEXT="STOP"))
    assert postback.kind.value == "UNRECOGNISED"
    assert foreign_number(postback, parse_own_numbers("47215")) is not None
    assert foreign_number(postback, parse_own_numbers("55555")) is None


# -- absent own-side fields, and kinds that carry no number of ours -----------------------------------------
def test_a_sub_change_without_a_shortcode_is_applied():
    for empty in ("", " "):
        postback = parse_postback(
            body("SUB", "N302", MOBILE="13125550199", CAMPAIGNID="9", SHORTCODE=empty, SOURCE="MANAGER")
        )
        assert postback.fields["SHORTCODE"] is None
        assert foreign_number(postback, NOT_THEIRS) is None
    no_element = parse_postback(body("SUB", "N301", MOBILE="13125550199", CAMPAIGNID="9"))
    assert foreign_number(no_element, NOT_THEIRS) is None


def test_a_delivery_report_without_a_from_is_applied():
    postback = parse_postback(
        body("SMS_MT", "N202", TO="13125550126", TRACKINGID="T-1", STATUS="Message Sent/Delivered")
    )
    assert foreign_number(postback, NOT_THEIRS) is None
    legacy = parsed("legacy/notification_mms_mt_n102.xml")  # the NOTIFICATION envelope has no FROM
    assert "FROM" not in legacy.fields
    assert foreign_number(legacy, NOT_THEIRS) is None


def test_an_inbound_message_without_a_to_never_reaches_the_check():
    with pytest.raises(PostbackError) as caught:
        parse_postback(body("SMS_MO", "N211", FROM="14155550178", TEXT="STOP"))
    assert caught.value.reason == "missing-key"


@pytest.mark.parametrize(
    "name",
    [
        "email_sub_n303.xml",
        "email_sub_n304.xml",
        "generate_pass_n801.xml",
        "generate_pass_n802.xml",
        "mms_mt_n003.xml",
        "mms_mt_e002.xml",
        "mms_mt_e003.xml",
        "mms_mt_n013.xml",
        "lower/email_sub_n303.xml",
        "lower/mms_mt_n003.xml",
        "rcs_mt_n701.xml",  # an ORIGIN the protocol does not document: kept, changes nothing
    ],
)
def test_kinds_that_carry_no_number_of_ours_are_applied(name):
    postback = parsed(name)
    assert foreign_number(postback, NOT_THEIRS) is None


def test_a_template_code_with_a_from_is_held_to_it():
    postback = parse_postback(body("MMS_MT", "N003", MMSID="48213", FROM="55555"))
    assert foreign_number(postback, parse_own_numbers("47215")) is not None
    assert foreign_number(postback, parse_own_numbers("55555")) is None


# -- the consumer's verdict ---------------------------------------------------------------------------------
@dataclass
class RecordingTable:
    """Stands in for StateTable: records the plan it is asked to write and every first sighting asked."""

    plans: list[Plan] = field(default_factory=list)
    first_seen_keys: list[str] = field(default_factory=list)

    def apply(self, plan: Plan) -> ApplyResult:
        self.plans.append(plan)
        return ApplyResult()

    def first_seen(self, key: str, received_at: str, *, window_start: str, expires_at: int) -> str:
        self.first_seen_keys.append(key)
        return received_at


def record(raw: bytes) -> dict:
    sha = hashlib.sha256(raw).hexdigest()
    message = envelope.encode(
        key=f"raw/{sha}.xml",
        sha256=sha,
        body=raw,
        received_at=RECEIVED_AT,
        source_ip="34.198.230.58",
        request_id="r",
    )
    return {"messageId": str(uuid.uuid4()), "body": message}


def run(*bodies: bytes, own: frozenset[str]) -> tuple:
    table = RecordingTable()
    outcome = consume(
        [record(b) for b in bodies], table=table, fetch=lambda key: b"", own_numbers=own, now=RECEIVED_AT
    )
    (plan,) = table.plans
    return outcome, plan, table


FORGED_STOP = body("SMS_MO", "N211", FROM="13125550199", TO="55555", TEXT="STOP", TRANSACTIONID="X-1")


def test_a_forged_inbound_stop_writes_nothing_but_its_quarantine_record():
    outcome, plan, _ = run(FORGED_STOP, own=parse_own_numbers("47215"))
    assert outcome.applied == 0
    (rejected,) = outcome.quarantined
    assert rejected.reason == NOT_OUR_NUMBER
    assert rejected.detail == "SMS_MO N211 TO ***55 is not one of OwnNumbers"
    sha = hashlib.sha256(FORGED_STOP).hexdigest()
    assert rejected.raw_key == f"raw/{sha}.xml"  # the archived bytes it came from
    assert plan.puts == {}
    ((item, record_id),) = plan.quarantine
    assert item["pk"] == f"QUARANTINE#{sha}"
    assert item["reason"] == NOT_OUR_NUMBER
    assert item["raw_key"] == f"raw/{sha}.xml"
    assert record_id == rejected.record_id


def test_the_same_stop_to_our_number_is_applied():
    ours = FORGED_STOP.replace(b"55555", b"47215")
    outcome, plan, _ = run(ours, own=parse_own_numbers("47215"))
    assert outcome.applied == 1
    assert outcome.quarantined == []
    assert any(pk == "SUPPRESS#13125550199" for pk, _ in plan.puts)


def test_with_the_check_off_the_forged_stop_is_applied_as_before():
    outcome, plan, _ = run(FORGED_STOP, own=frozenset())
    assert outcome.applied == 1
    assert any(pk == "SUPPRESS#13125550199" for pk, _ in plan.puts)


def test_a_foreign_undated_report_leaves_no_first_sighting():
    e101 = (SAMPLES / "mms_mt_e101.xml").read_bytes()  # E101 has no TIMESTAMP: the consumer would date it
    outcome, plan, table = run(e101, own=NOT_THEIRS)
    assert [r.reason for r in outcome.quarantined] == [NOT_OUR_NUMBER]
    assert table.first_seen_keys == []
    assert plan.puts == {}
    outcome, plan, table = run(e101, own=OURS)
    assert outcome.applied == 1
    assert len(table.first_seen_keys) == 1


def test_one_batch_sorts_ours_from_theirs():
    ours = [
        (SAMPLES / name).read_bytes() for name in ("sms_mt_n201.xml", "sub_n302.xml", "email_sub_n303.xml")
    ]
    theirs = [
        FORGED_STOP,
        (SAMPLES / "sub_n301.xml").read_bytes().replace(b"63184", b"55555"),
        (SAMPLES / "mms_mt_n102.xml").read_bytes().replace(b"<FROM>63184", b"<FROM>55555"),
    ]
    outcome, plan, _ = run(*ours, *theirs, own=OURS)
    assert outcome.applied == 3
    assert sorted(r.detail.split(" ")[2] for r in outcome.quarantined) == ["FROM", "SHORTCODE", "TO"]
    written = {pk.split("#")[0] for pk, _ in plan.puts}
    assert written == {"MSG", "SUB", "SUPPRESS", "EMAILSUB"}
    assert all(pk != "SUPPRESS#13125550199" for pk, _ in plan.puts)
