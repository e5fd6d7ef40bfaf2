"""parse_postback: the provider's sample postbacks, legacy envelopes, and every rejection
(docs/provider-protocol.md §3)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mmsbridge.core.states import CATALOGUE, MessageState, PostbackKind, TemplateState, higher
from mmsbridge.postbacks.reader import (
    _NAME_CACHE,
    _NAME_CACHE_LIMIT,
    DEFAULT_MAX_BYTES,
    MAX_DEPTH,
    REASONS,
    Postback,
    PostbackError,
    normalise_name,
    parse_postback,
)
from tests.conftest import SAMPLES
from tests.xml_work import count_parses

POSTBACKS = SAMPLES / "postbacks"
RECEIVED_AT = datetime(2024, 3, 14, 15, 0, 0, tzinfo=UTC)

K = PostbackKind
S = MessageState


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def read(relative: str) -> bytes:
    return (POSTBACKS / relative).read_bytes()


def rejected(body: bytes | str, **kwargs) -> PostbackError:
    with pytest.raises(PostbackError) as caught:
        parse_postback(body, **kwargs)
    assert caught.value.reason in REASONS
    assert str(caught.value)  # a human-readable message for the quarantine record
    return caught.value


def postback(*children: str, root: str = "POSTBACK") -> bytes:
    return f"<{root}>{''.join(children)}</{root}>".encode()


def element(name: str, value: str = "") -> str:
    return f"<{name}>{value}</{name}>"


# --- the samples -----------------------------------------------------------------------------------------


def readme_rows() -> list[tuple[str, str, str, str | None]]:
    """(path under postbacks/, ORIGIN, CODE, README "State / kind" text or None) for every table row."""
    rows = []
    section = None
    for line in (SAMPLES / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            if line.startswith("## postbacks/ ("):
                section = ""
            elif line.startswith("## postbacks/lower/"):
                section = "lower/"
            elif line.startswith("## postbacks/legacy/"):
                section = "legacy/"
            else:
                section = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if section is None or not re.fullmatch(r"`[a-z0-9_]+\.xml`", cells[0]):
            continue
        origin, code = cells[1].split()
        state = cells[3] if len(cells) > 3 else None
        rows.append((section + cells[0].strip("`"), origin, code, state))
    return rows


README_ROWS = readme_rows()

# What each sample must parse to, beyond ORIGIN and CODE (which come from the README table). `extras` is
# {} and `dialect` follows the folder unless a sample says otherwise.
EXPECTED: dict[str, dict[str, object]] = {
    "mms_mt_n101.xml": {
        "kind": K.DELIVERY,
        "state": S.SENT,
        "tracking_id": "TU1TXzcwMzExOA==",
        "mms_id": "51876",
        "timestamp_utc": utc(2024, 2, 6, 14, 14, 37),
        "fields": {"SENTAS": "MMS", "SPID": "0001470", "FROM": "63184", "TO": "13125550118"},
    },
    "mms_mt_n101_sentas_sms.xml": {
        "kind": K.DELIVERY,
        "state": S.SENT,
        "via_link": False,  # only the delivery report (N102/N202) is "delivered via link"
        "tracking_id": "TU1TXzcwMzE0Mg==",
        "fields": {"SENTAS": "SMS", "STATUSDETAILS": "Handset profile: no MMS, sent as link"},
    },
    "mms_mt_n102.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "via_link": False,
        "tracking_id": "TU1TXzcwMzExOA==",
        "failure_reason": None,
        "timestamp_utc": utc(2024, 2, 6, 14, 14, 48),
        "fields": {"HANDSET": "motorola_moto-g-stylus", "AGGREGATORID": "52864-10377-44190-83025-96611"},
    },
    "mms_mt_n102_expired.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Expired",
        "via_link": False,
        "tracking_id": "TU1TXzcwMzE2Nw==",
        "timestamp_utc": utc(2024, 2, 7, 15, 2, 44),
        "fields": {"STATUS": "Message Sent/Expired", "TO": "13125550122"},
    },
    "mms_mt_n102_rejected.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Rejected",
        "via_link": False,
        "tracking_id": "TU1TXzcwMzE3MQ==",
        "fields": {"STATUS": "Message Sent/Rejected", "STATUSDETAILS": "Carrier refused the content"},
    },
    "mms_mt_e101.xml": {
        "kind": K.DELIVERY,
        "state": S.FAILED,
        "failure_reason": None,  # "Message Failed" has no "/reason"
        "tracking_id": "TU1TXzcwMzEyNQ==",
        "timestamp_raw": None,
        "timestamp_utc": RECEIVED_AT,
        "timestamp_derived": True,
        "fields": {"STATUSDETAILS": "Merge data missing for slide 1"},
    },
    "mms_mt_e102.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Expired",
        "tracking_id": "TU1TXzcwMzEzNg==",
        "timestamp_utc": utc(2024, 2, 8, 4, 18, 52),
        "fields": {"STATUS": "Message Sent/Expired", "SPID": "0001570"},
    },
    "mms_mt_n202.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "via_link": True,
        "mms_id": None,
        "tracking_id": "TU1TXzcwMzE0Mg==",
        "timestamp_utc": utc(2024, 2, 6, 14, 21, 19),
    },
    "mms_mt_n202_failed.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Failed",
        "via_link": True,  # a report for an SMS link, delivered or not
        "mms_id": None,
        "tracking_id": "TU1TXzcwMzE1MA==",
        "fields": {"SENTAS": "SMS", "STATUS": "Message Sent/Failed"},
    },
    "mms_mt_e202.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Failed",
        "via_link": False,
        "tracking_id": "TU1TXzcwMzE1OQ==",
    },
    "mms_mt_n501.xml": {
        "kind": K.DDM,
        "state": None,
        "tracking_id": "TU1TXzcwMzE4Mw==",
        "fields": {"STATUSDETAILS": None},
    },
    "mms_mt_n502.xml": {"kind": K.DDM, "state": None, "fields": {"HANDSET": "oneplus_cph2581"}},
    "mms_mt_e501.xml": {"kind": K.DDM, "state": None, "failure_reason": None, "timestamp_derived": True},
    "mms_mt_e502.xml": {"kind": K.DDM, "state": None, "failure_reason": "Rejected"},
    "mms_mt_n003.xml": {
        "kind": K.TEMPLATE,
        "state": None,
        "template_state": TemplateState.READY,
        "mms_id": "51876",
        "tracking_id": None,
        "timestamp_derived": True,
        "fields": {"ORIGIN": "MMS_MT", "CODE": "N003", "MMSID": "51876"},
    },
    "mms_mt_e002.xml": {
        "kind": K.TEMPLATE,
        "template_state": TemplateState.BROKEN,
        "mms_id": "51877",
        "fields": {"AUDIONAME": "https://media.lakeshore.example/mms/winter/grinder-loop.mp3"},
    },
    "mms_mt_e003.xml": {
        "kind": K.TEMPLATE,
        "template_state": TemplateState.BROKEN,
        "mms_id": "51878",
        "fields": {"VIDEONAME": "roastery-walkthrough-1080p.mp4"},
    },
    "mms_mt_e004.xml": {
        "kind": K.TEMPLATE,
        "state": None,
        "template_state": TemplateState.BROKEN,
        "mms_id": "51879",
        "correlation_id": "51879",
        "fields": {"IMAGENAME": "https://media.lakeshore.example/mms/winter/menu-board.png"},
    },
    "mms_mt_n013.xml": {
        "kind": K.MT_RECORD,
        "state": None,
        "tracking_id": "TU1TXzcwMzIwMQ==",
        "alert": False,
    },
    "mms_mt_e011.xml": {"kind": K.DELIVERY, "state": S.FAILED, "tracking_id": "TU1TXzcwMzIwNQ=="},
    "mms_mt_e012.xml": {"kind": K.DELIVERY, "state": S.FAILED, "mms_id": "52942"},
    "mms_mt_e013.xml": {"kind": K.DELIVERY, "state": S.FAILED, "tracking_id": "TU1TXzcwMzIxMw=="},
    "mms_mt_e999.xml": {
        "kind": K.MT_RECORD,
        "state": None,
        "alert": True,
        "tracking_id": "TU1TXzcwMzIyMA==",
        "timestamp_utc": utc(2024, 2, 6, 17, 30, 5),
    },
    "mms_mt_n103.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Expired",
        "tracking_id": "TU1TXzcwMzIyNg==",
        "timestamp_utc": utc(2024, 2, 9, 14, 14, 37),
    },
    "sms_mt_n201.xml": {
        "kind": K.DELIVERY,
        "state": S.SENT,
        "tracking_id": "U01TXzYwODUxNA==",
        "timestamp_raw": "2024-02-06T08:41:27.093512-05:00",
        "timestamp_utc": utc(2024, 2, 6, 13, 41, 27, 93512),
        "fields": {"FROMMASK": None, "SPID": "0001470"},
    },
    "sms_mt_n202.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "via_link": False,
        "tracking_id": "U01TXzYwODUxNA==",
        "timestamp_utc": utc(2024, 2, 6, 13, 41, 31, 650284),
        "fields": {"STATUSDETAILS": "stat:DELIVRD&err:000", "AGGREGATORID": "9B27E-02060-41893-5518Q"},
    },
    "sms_mt_n202_expired.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Expired",
        "via_link": False,  # SMS_MT has no link delivery
        "tracking_id": "U01TXzYwODUzMw==",
        "timestamp_utc": utc(2024, 2, 8, 13, 45, 10),
    },
    "sms_mt_e201.xml": {
        "kind": K.DELIVERY,
        "state": S.FAILED,
        "failure_reason": None,
        "fields": {"FROMMASK": None},
    },
    "sms_mt_e202.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "NotSupported",
        "timestamp_utc": utc(2024, 2, 6, 13, 55, 47),
    },
    "sms_mo_n211.xml": {
        "kind": K.INBOUND_SMS,
        "timestamp_raw": "2024-02-06T13:07:22-05:00",
        "timestamp_utc": utc(2024, 2, 6, 18, 7, 22),
        "timestamp_derived": False,
        "inbound_stop": False,
        "correlation_id": "4HX8P-30217-61KLM-927B4",
        "fields": {"FROM": "12175550141", "TO": "63184", "TEXT": "INFO"},
    },
    "sms_mo_n211_stop.xml": {
        "kind": K.INBOUND_SMS,
        "inbound_stop": True,
        "correlation_id": "6TC2R-30988-14ZNB-502D9",
        "timestamp_utc": utc(2024, 2, 8, 22, 42, 10),
        "fields": {"FROM": "12175550186", "TO": "63184", "TEXT": "STOP"},
    },
    "mms_mo_n401.xml": {
        "kind": K.INBOUND_MMS,
        "tracking_id": "MMS_MO_Zp4LcT7e",
        "files": (
            "https://mo-media.provider.example/inbox/Zp4LcT7e/PXL_0219.jpg",
            "https://mo-media.provider.example/inbox/Zp4LcT7e/text_0001.txt",
        ),
        "inbound_stop": False,
        "timestamp_utc": utc(2024, 2, 6, 19, 26, 8),
        "fields": {"KEYWORD": "LATTE", "SUBJECT": "Latte art entry", "FROM": "16305550153", "TO": "63184"},
    },
    "sub_n301.xml": {
        "kind": K.SUBSCRIPTION,
        "subscribed": True,
        "correlation_id": "12175550186#5307",
        "timestamp_raw": "2024-02-06T16:05:33-05",
        "timestamp_utc": utc(2024, 2, 6, 21, 5, 33),
        "fields": {"SOURCE": "MO", "BRANDNAME": "Lakeshore Coffee Co."},
    },
    "sub_n302.xml": {
        "kind": K.SUBSCRIPTION,
        "subscribed": False,
        "correlation_id": "12175550186#5307",
        "timestamp_utc": utc(2024, 2, 8, 22, 42, 11),
    },
    "email_sub_n303.xml": {
        "kind": K.EMAIL_SUBSCRIPTION,
        "subscribed": True,
        "correlation_id": "dana.okafor@example.net#4826",
        "timestamp_raw": None,
        "timestamp_utc": RECEIVED_AT,
        "timestamp_derived": True,
    },
    "email_sub_n304.xml": {
        "kind": K.EMAIL_SUBSCRIPTION,
        "subscribed": False,
        "correlation_id": "m.ferreira@example.com#4826",
        "timestamp_derived": True,
    },
    "generate_pass_n801.xml": {
        "kind": K.PASS,
        "pass_ok": True,
        "correlation_id": "LC-20240206-0113",
        "timestamp_utc": utc(2024, 2, 6, 15, 18, 44),
        "fields": {"STATUSCODE": "N801", "SERIALNUMBER": "7B2E90D4A1C3F-020624-101844"},
    },
    "generate_pass_n802.xml": {"kind": K.PASS, "pass_ok": False, "fields": {"SERIALNUMBER": None}},
    "generate_pass_n803.xml": {"kind": K.PASS, "pass_ok": False},
    "generate_pass_n811.xml": {"kind": K.PASS, "pass_ok": False},
    "rcs_mt_n701.xml": {
        "kind": K.UNRECOGNISED,
        "state": None,
        "alert": False,
        "correlation_id": "UkNTXzMzMDQxNw==",
        "fields": {"STATUS": "Message Read", "CHANNEL": "rbm"},
    },
    # --- the hyphenated dialect
    "lower/mms_mt_n101.xml": {
        "kind": K.DELIVERY,
        "state": S.SENT,
        "tracking_id": "TU1TXzcxNTQwMg==",
        "mms_id": "51880",
        "fields": {"SENTAS": "MMS", "SPID": "31012"},  # operator-id is an alias of SPID
    },
    "lower/mms_mt_n102.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "via_link": False,
        "tracking_id": "TU1TXzcxNTQwMg==",
        "timestamp_utc": utc(2024, 12, 3, 20, 48, 21),
        "fields": {"HANDSET": "nokia_g310"},
    },
    "lower/mms_mt_n102_sms.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "via_link": True,
        "mms_id": None,
        "failure_reason": None,
        "tracking_id": "TU1TXzcxNTQwOQ==",
        "fields": {"SENTAS": "SMS", "SPID": "31026"},
    },
    "lower/mms_mt_n102_sms_not_supported.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "NotSupported",
        "via_link": True,
        "mms_id": None,
        "tracking_id": "TU1TXzcxNTQxMw==",
        "timestamp_utc": utc(2024, 12, 3, 20, 55, 2),
        "fields": {
            "STATUS": "Message Sent/Not Supported",
            "STATUSDETAILS": "Handset does not accept link messages",
        },
    },
    "lower/mms_mt_e101.xml": {
        "kind": K.DELIVERY,
        "state": S.FAILED,
        "failure_reason": None,
        "tracking_id": "TU1TXzcxNTQxNw==",
        "timestamp_derived": True,
        "fields": {"STATUSDETAILS": "Template slide 2 could not be rendered"},
    },
    "lower/mms_mt_e102.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "NotSupported",
        "tracking_id": "TU1TXzcxNTQyMQ==",
        "timestamp_utc": utc(2024, 12, 4, 13, 12, 36),
    },
    "lower/mms_mt_n202.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "via_link": True,
        "mms_id": None,
        "tracking_id": "TU1TXzcxNTQyNg==",
    },
    "lower/mms_mt_e202.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Failed",
        "via_link": False,
        "tracking_id": "TU1TXzcxNTQzMA==",
    },
    "lower/mms_mt_n501.xml": {
        "kind": K.DDM,
        "state": None,
        "tracking_id": "TU1TXzcxNTQzNA==",
        "fields": {"STATUSDETAILS": None},
    },
    "lower/mms_mt_n502.xml": {"kind": K.DDM, "state": None, "fields": {"HANDSET": "google_pixel7a"}},
    "lower/mms_mt_e501.xml": {
        "kind": K.DDM,
        "state": None,
        "tracking_id": "MMS_715438",
        "timestamp_derived": True,
    },
    "lower/mms_mt_e502.xml": {"kind": K.DDM, "state": None, "failure_reason": "Rejected"},
    "lower/mms_mt_n003.xml": {
        "kind": K.TEMPLATE,
        "template_state": TemplateState.READY,
        "mms_id": "51880",
        "tracking_id": None,
        "fields": {"ORIGIN": "MMS_MT", "CODE": "N003", "MMSID": "51880"},
    },
    "lower/mms_mt_e002.xml": {
        "kind": K.TEMPLATE,
        "template_state": TemplateState.BROKEN,
        "mms_id": "51881",
        "fields": {"AUDIONAME": "welcome-chime.mp3"},
    },
    "lower/mms_mt_e003.xml": {
        "kind": K.TEMPLATE,
        "template_state": TemplateState.BROKEN,
        "mms_id": "51882",
        "fields": {"VIDEONAME": "https://media.lakeshore.example/mms/holiday/steam-wand.3gp"},
    },
    "lower/mms_mt_e004.xml": {
        "kind": K.TEMPLATE,
        "template_state": TemplateState.BROKEN,
        "mms_id": "51883",
        "fields": {"IMAGENAME": "gift-card-front.gif"},
    },
    "lower/mms_mt_n013.xml": {
        "kind": K.MT_RECORD,
        "state": None,
        "tracking_id": "MMS_715446",
        "alert": False,
    },
    "lower/mms_mt_e011.xml": {
        "kind": K.DELIVERY,
        "state": S.FAILED,
        "tracking_id": "MMS_715450",
        "fields": {"STATUSDETAILS": "Slide 3: image and PDF in one slide"},
    },
    "lower/mms_mt_e012.xml": {"kind": K.DELIVERY, "state": S.FAILED, "mms_id": "52952"},
    "lower/mms_mt_e013.xml": {"kind": K.DELIVERY, "state": S.FAILED, "tracking_id": "Wp5HcX-Lr8e-QnV"},
    "lower/mms_mt_e999.xml": {
        "kind": K.MT_RECORD,
        "state": None,
        "alert": True,
        "tracking_id": "Jd2MsQ-Yk4t-BvA",
        "timestamp_utc": utc(2024, 12, 3, 22, 0, 41),
    },
    "lower/mms_mt_n103.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Expired",
        "tracking_id": "Rt6NwB-Ha3p-ZcE",
    },
    "lower/sms_mt_n201.xml": {
        "kind": K.DELIVERY,
        "state": S.SENT,
        "tracking_id": "Tz8vRq-Np2L-HcW",
        "timestamp_utc": utc(2024, 12, 3, 19, 10, 5, 770318),
        "fields": {"FROMMASK": None, "SPID": "31012"},
    },
    "lower/sms_mt_n202.xml": {
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "tracking_id": "Tz8vRq-Np2L-HcW",
        "fields": {"STATUSDETAILS": "id:88213&stat:DELIVRD"},
    },
    "lower/sms_mt_e201.xml": {"kind": K.DELIVERY, "state": S.FAILED, "tracking_id": "U01TXzYyMDMxOA=="},
    "lower/sms_mt_e202.xml": {
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Expired",
        "tracking_id": "U01TXzYyMDMyMg==",
    },
    "lower/sms_mo_n211.xml": {
        "kind": K.INBOUND_SMS,
        "inbound_stop": True,
        "correlation_id": "2WQ7F-40316-83RTY-615A8",
        "timestamp_utc": utc(2024, 12, 3, 23, 44, 51),
        "fields": {"TEXT": "Stop", "RECEIVED": "2024-12-03T18:44:51-05:00", "FROM": "14695550141"},
    },
    "lower/mms_mo_n401.xml": {
        "kind": K.INBOUND_MMS,
        "tracking_id": "MMS_MO_vR2kQ8sN",
        "files": (
            "https://mo-media.provider.example/inbox/vR2kQ8sN/bag-label.png",
            "https://mo-media.provider.example/inbox/vR2kQ8sN/text_0001.txt",
        ),
        "fields": {"SUBJECT": None, "KEYWORD": "BEANS", "SPID": "31026"},
    },
    "lower/sub_n301.xml": {
        "kind": K.SUBSCRIPTION,
        "subscribed": True,
        "correlation_id": "14695550145#6118",
        "timestamp_utc": utc(2024, 12, 1, 15, 30, 0),
        "fields": {"SOURCE": "API", "CAMPAIGNTITLE": "Holiday Blends", "BRANDNAME": "Lakeshore Coffee Co."},
    },
    "lower/sub_n302.xml": {
        "kind": K.SUBSCRIPTION,
        "subscribed": False,
        "correlation_id": "14695550145#6118",
        "fields": {"SOURCE": "MO"},
    },
    "lower/email_sub_n303.xml": {
        "kind": K.EMAIL_SUBSCRIPTION,
        "subscribed": True,
        "correlation_id": "r.castillo@example.org#6120",
        "timestamp_derived": True,
    },
    "lower/email_sub_n304.xml": {
        "kind": K.EMAIL_SUBSCRIPTION,
        "subscribed": False,
        "correlation_id": "k.nakamura@example.net#6120",
        "timestamp_derived": True,
    },
    "lower/generate_pass_n801.xml": {
        "kind": K.PASS,
        "pass_ok": True,
        "correlation_id": "LC-20241203-0042",
        "fields": {
            "STATUSCODE": "N801",
            "PASSDATAID": "91205",
            "SERIALNUMBER": "C04A7E19B3D52-120324-112907",
        },
    },
    "lower/generate_pass_n802.xml": {"kind": K.PASS, "pass_ok": False, "fields": {"SERIALNUMBER": None}},
    "lower/generate_pass_n803.xml": {"kind": K.PASS, "pass_ok": False},
    "lower/generate_pass_n811.xml": {"kind": K.PASS, "pass_ok": False},
    "lower/rcs_mt_n701.xml": {
        "kind": K.UNRECOGNISED,
        "state": None,
        "correlation_id": "Mv9DqE-Ts2c-KoP",
        "fields": {"CHANNEL": "rbm"},
    },
    # --- the legacy envelopes
    "legacy/notification_mms_mt_n101.xml": {
        "dialect": "notification",
        "kind": K.DELIVERY,
        "state": S.SENT,
        "tracking_id": "Kq7TnW-3xRb-PLm",
        "timestamp_utc": utc(2012, 9, 18, 15, 27, 30),
        "extras": {"ID": "40911", "CREATED": "2012-09-18 11:27:31-04", "HISTORYID": "7730398"},
        "fields": {"SCHEDULEDID": "18842", "SPID": "000147"},
    },
    "legacy/notification_mms_mt_n102.xml": {
        "dialect": "notification",
        "kind": K.DELIVERY,
        "state": S.DELIVERED,
        "failure_reason": None,
        "tracking_id": "Kq7TnW-3xRb-PLm",
        "mms_id": "2318",
        "timestamp_utc": utc(2012, 9, 18, 15, 27, 44, 905117),
        "extras": {
            "ID": "40917",
            "CREATED": "2012-09-18 11:27:45.330291-04",
            "HISTORYID": "7730415",
            "STATUS.PROTOCOL": "4",
            "STATUS.STATUS": "0",
        },
        "fields": {"STATUS": None, "HANDSET": "blackberry_9810", "SPID": "000147"},  # STATUS: attributes only
    },
    "legacy/notification_mms_mt_e102.xml": {
        "dialect": "notification",
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": None,
        "tracking_id": "MMS_51977",
        "timestamp_utc": utc(2013, 1, 16, 0, 2, 11),
        "extras": {
            "ID": "51230",
            "CREATED": "2013-01-15 19:02:12-05",
            "HISTORYID": "9104472",
            "STATUS.CELLY": "1",
            "STATUS.PROVIDER": "000157",
            "STATUS.TEXT": "undeliverable",
            "STATUS.DESCRIPTION": "Subscriber absent",
        },
    },
    "legacy/wrapped_sms_mt_n201.xml": {
        "dialect": "wrapped-notification",
        "kind": K.DELIVERY,
        "state": S.SENT,
        "tracking_id": "Vb3RsT-9mQx-LeA",
        "timestamp_utc": utc(2014, 7, 22, 18, 3, 55),
    },
    "legacy/wrapped_sms_mt_e202.xml": {
        "dialect": "wrapped-notification",
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Failed",
        "tracking_id": "Vb3RsT-9mQx-LeA",
    },
    "legacy/wrapped_mms_mt_n102.xml": {
        "dialect": "wrapped-notification",
        "kind": K.DELIVERY,
        "state": S.UNDELIVERED,
        "failure_reason": "Rejected",
        "mms_id": "3391",
        "tracking_id": "MMS_62804",
        "timestamp_utc": utc(2014, 11, 3, 14, 26, 14),
    },
}

# The README's "State / kind" column, as attributes.
README_STATE = {
    "SENT": {"state": S.SENT},
    "DELIVERED": {"state": S.DELIVERED, "via_link": False},
    "DELIVERED (via link)": {"state": S.DELIVERED, "via_link": True},
    "FAILED": {"state": S.FAILED},
    "UNDELIVERED": {"state": S.UNDELIVERED, "failure_reason": None},
    "UNDELIVERED (Expired)": {"state": S.UNDELIVERED, "failure_reason": "Expired"},
    "UNDELIVERED (Failed)": {"state": S.UNDELIVERED, "failure_reason": "Failed", "via_link": False},
    "UNDELIVERED (Failed, via link)": {"state": S.UNDELIVERED, "failure_reason": "Failed", "via_link": True},
    "UNDELIVERED (Rejected)": {"state": S.UNDELIVERED, "failure_reason": "Rejected"},
    "UNDELIVERED (NotSupported)": {
        "state": S.UNDELIVERED,
        "failure_reason": "NotSupported",
        "via_link": False,
    },
    "UNDELIVERED (NotSupported, via link)": {
        "state": S.UNDELIVERED,
        "failure_reason": "NotSupported",
        "via_link": True,
    },
    "record only": {"state": None, "kind": {K.DDM, K.MT_RECORD}},
    "record + alert; no state change": {"state": None, "alert": True},
    "template READY": {"template_state": TemplateState.READY},
    "template BROKEN": {"template_state": TemplateState.BROKEN},
    "inbound SMS": {"kind": K.INBOUND_SMS, "inbound_stop": False},
    "inbound SMS, STOP": {"kind": K.INBOUND_SMS, "inbound_stop": True},
    "inbound MMS": {"kind": K.INBOUND_MMS},
    "subscribed": {"kind": K.SUBSCRIPTION, "subscribed": True},
    "unsubscribed": {"kind": K.SUBSCRIPTION, "subscribed": False},
    "e-mail subscribed": {"kind": K.EMAIL_SUBSCRIPTION, "subscribed": True},
    "e-mail unsubscribed": {"kind": K.EMAIL_SUBSCRIPTION, "subscribed": False},
    "pass generated": {"kind": K.PASS, "pass_ok": True},
    "pass failed": {"kind": K.PASS, "pass_ok": False},
    "unrecognised": {"kind": K.UNRECOGNISED, "state": None, "template_state": None},
}


def test_readme_table_was_read():
    assert len(README_ROWS) >= 84
    assert ("mms_mt_n101.xml", "MMS_MT", "N101", "SENT") in README_ROWS
    assert ("lower/sms_mo_n211.xml", "SMS_MO", "N211", "inbound SMS, STOP") in README_ROWS
    assert ("legacy/wrapped_sms_mt_n201.xml", "SMS_MT", "N201", "SENT") in README_ROWS


def test_every_sample_file_is_in_the_readme_table_and_has_expectations():
    on_disk = {path.relative_to(POSTBACKS).as_posix() for path in POSTBACKS.rglob("*.xml")}
    in_readme = [row[0] for row in README_ROWS]
    assert len(in_readme) == len(set(in_readme))  # each file listed once
    assert on_disk == set(in_readme)
    assert set(EXPECTED) == on_disk
    assert {row[3] for row in README_ROWS} <= set(README_STATE)  # every row has a known "State / kind"


@pytest.mark.parametrize("folder", ["", "lower"])
def test_every_catalogue_code_has_a_sample_in_the_v1_and_the_hyphenated_dialect(folder):
    covered = {(origin, code) for path, origin, code, _ in README_ROWS if path.rpartition("/")[0] == folder}
    assert set(CATALOGUE) <= covered, sorted(set(CATALOGUE) - covered)
    assert covered - set(CATALOGUE)  # and a pair the catalogue does not list


@pytest.mark.parametrize(
    ("relative", "origin", "code", "readme_state"), README_ROWS, ids=[r[0] for r in README_ROWS]
)
def test_sample_parses_to_its_event(relative, origin, code, readme_state):
    parsed = parse_postback(read(relative), received_at=RECEIVED_AT)

    assert (parsed.origin, parsed.code) == (origin, code)
    expected = dict(EXPECTED[relative])
    expected_fields = expected.pop("fields", {})
    expected.setdefault("dialect", "hyphenated" if relative.startswith("lower/") else "v1")
    expected.setdefault("extras", {})
    for name, value in expected.items():
        assert getattr(parsed, name) == value, name
    for name, value in expected_fields.items():
        assert parsed.fields[name] == value, name
    for name, value in README_STATE[readme_state].items():
        actual = getattr(parsed, name)
        assert actual in value if isinstance(value, set) else actual == value, name

    # Invariants that hold for every sample.
    assert parsed.fields["ORIGIN"] == origin
    assert parsed.timestamp_utc is not None
    assert parsed.timestamp_utc.utcoffset() == timedelta(0)
    assert parsed.timestamp_derived is (parsed.timestamp_raw is None)
    assert parsed.correlation_id
    assert re.fullmatch(r"[0-9a-f]{64}", parsed.semantic_key)
    if parsed.kind is not K.INBOUND_MMS:
        assert parsed.files == ()
    assert dataclasses.replace(parsed) == parsed  # the fast constructor builds what __init__ builds


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("mms_mt_n101.xml", "mms_mt_n102.xml"),
        ("mms_mt_n101_sentas_sms.xml", "mms_mt_n202.xml"),
        ("sms_mt_n201.xml", "sms_mt_n202.xml"),
        ("lower/mms_mt_n101.xml", "lower/mms_mt_n102.xml"),
        ("lower/sms_mt_n201.xml", "lower/sms_mt_n202.xml"),
        ("legacy/notification_mms_mt_n101.xml", "legacy/notification_mms_mt_n102.xml"),
        ("legacy/wrapped_sms_mt_n201.xml", "legacy/wrapped_sms_mt_e202.xml"),
    ],
)
def test_reports_for_one_message_share_the_correlation_id_but_not_the_semantic_key(first, second):
    one, other = parse_postback(read(first)), parse_postback(read(second))
    assert one.correlation_id == other.correlation_id == one.tracking_id
    assert one.semantic_key != other.semantic_key
    assert higher(one.state, other.state) is other.state  # the delivery report wins in either order
    assert higher(other.state, one.state) is other.state


def test_samples_api_error_namespaces_do_not_leak_into_postbacks():
    # §3.7: E101 as a postback CODE is "MMS could not be sent", not "action missing".
    assert parse_postback(read("mms_mt_e101.xml")).state is S.FAILED
    # E999 is a queue-processing alert here, not a wallet-pass field error.
    assert parse_postback(read("mms_mt_e999.xml")).kind is K.MT_RECORD


def test_unknown_elements_are_kept():
    parsed = parse_postback(read("mms_mt_n102.xml"))
    assert set(parsed.fields) == {
        "ORIGIN",
        "CODE",
        "SENTAS",
        "STATUS",
        "MMSID",
        "FROM",
        "TO",
        "TRACKINGID",
        "SPID",
        "TIMESTAMP",
        "HANDSET",
        "AGGREGATORID",
    }


def test_missing_timestamp_without_receipt_time():
    parsed = parse_postback(read("mms_mt_n003.xml"))
    assert parsed.timestamp_raw is None
    assert parsed.timestamp_utc is None
    assert parsed.timestamp_derived is False


def test_receipt_time_naive_is_utc_and_aware_is_converted():
    naive = parse_postback(read("mms_mt_e101.xml"), received_at=datetime(2024, 3, 14, 15, 0))
    assert naive.timestamp_utc == RECEIVED_AT
    eastern = datetime(2024, 3, 14, 11, 0, tzinfo=timezone(timedelta(hours=-4)))
    aware = parse_postback(read("mms_mt_e101.xml"), received_at=eastern)
    assert aware.timestamp_utc == RECEIVED_AT
    assert aware.timestamp_utc.tzinfo is UTC


def test_provider_timestamp_wins_over_receipt_time():
    parsed = parse_postback(read("mms_mt_n101.xml"), received_at=RECEIVED_AT)
    assert parsed.timestamp_utc == utc(2024, 2, 6, 14, 14, 37)
    assert parsed.timestamp_derived is False


def test_semantic_key_is_stable_and_ignores_the_derived_timestamp():
    body = read("mms_mt_e101.xml")
    first = parse_postback(body, received_at=RECEIVED_AT)
    retry = parse_postback(body, received_at=RECEIVED_AT + timedelta(minutes=5))
    assert first.timestamp_utc != retry.timestamp_utc
    assert first.semantic_key == retry.semantic_key
    assert first.semantic_parts == ("MMS_MT", "E101", "TU1TXzcwMzEyNQ==", "")


def test_semantic_key_survives_a_re_rendered_retry():
    original = parse_postback(read("sms_mt_n201.xml"))
    rendered = postback(
        element("TIMESTAMP", " 2024-02-06T08:41:27.093512-05:00 "),
        element("TRACKINGID", "U01TXzYwODUxNA=="),
        element("CODE", "N201"),
        element("ORIGIN", "SMS_MT"),
    )
    assert parse_postback(rendered).semantic_key == original.semantic_key
    assert original.semantic_parts == (
        "SMS_MT",
        "N201",
        "U01TXzYwODUxNA==",
        "2024-02-06T08:41:27.093512-05:00",
    )


def test_postback_is_frozen_and_hashable():
    parsed = parse_postback(read("mms_mt_n101.xml"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.state = S.DELIVERED  # type: ignore[misc]
    assert hash(parsed) == hash(parse_postback(read("mms_mt_n101.xml")))
    assert parsed == parse_postback(read("mms_mt_n101.xml"))


# --- legacy envelopes (§3.5) ------------------------------------------------------------------------------

LEGACY_NOTIFICATION = b"""<?xml version="1.0" encoding="UTF-8"?>
<NOTIFICATION ID=" 88412" CREATED=" 2011-05-09 16:40:03.101822-04">
    <ORIGIN>MMS_MT</ORIGIN>
    <CODE>N102</CODE>
    <BODY>
        <HISTORYID>5521907</HISTORYID>
        <TO>13125550147</TO>
        <TRACKINGID>DrXAFP-Ylpc-JZL</TRACKINGID>
        <TIMESTAMP>2011-05-09 16:40:02.518224-04</TIMESTAMP>
        <MMSID>1207</MMSID>
        <SPID>000189</SPID>
        <HANDSET>nokia_n95</HANDSET>
        <STATUS PROTOCOL="4" STATUS="0"/>
    </BODY>
</NOTIFICATION>"""


def test_legacy_notification_lifts_body_and_keeps_envelope_as_extras():
    parsed = parse_postback(LEGACY_NOTIFICATION)
    assert parsed.dialect == "notification"
    assert (parsed.origin, parsed.code, parsed.kind, parsed.state) == (
        "MMS_MT",
        "N102",
        K.DELIVERY,
        S.DELIVERED,
    )
    assert parsed.tracking_id == "DrXAFP-Ylpc-JZL"
    assert parsed.mms_id == "1207"
    assert parsed.fields["SPID"] == "000189"
    assert parsed.fields["HANDSET"] == "nokia_n95"
    assert parsed.fields["STATUS"] is None  # attribute-only
    assert "BODY" not in parsed.fields
    assert parsed.extras == {
        "ID": "88412",
        "CREATED": "2011-05-09 16:40:03.101822-04",
        "HISTORYID": "5521907",
        "STATUS.PROTOCOL": "4",
        "STATUS.STATUS": "0",
    }
    assert parsed.timestamp_utc == utc(2011, 5, 9, 20, 40, 2, 518224)
    assert parsed.failure_reason is None


def test_legacy_notification_with_lower_case_attributes():
    body = b"""<NOTIFICATION id="  7" created=" 2012-01-02 03:04:05-05">
        <ORIGIN>MMS_MT</ORIGIN><CODE>E101</CODE>
        <BODY><TRACKINGID>MMS_12345</TRACKINGID>
              <STATUS CELLY="x" PROVIDER=" acme" TEXT="t" DESCRIPTION="Carrier said no"/></BODY>
    </NOTIFICATION>"""
    parsed = parse_postback(body)
    assert parsed.extras == {
        "ID": "7",
        "CREATED": "2012-01-02 03:04:05-05",
        "STATUS.CELLY": "x",
        "STATUS.PROVIDER": "acme",
        "STATUS.TEXT": "t",
        "STATUS.DESCRIPTION": "Carrier said no",
    }
    assert parsed.state is S.FAILED
    assert parsed.tracking_id == "MMS_12345"


def test_legacy_notification_still_needs_its_key():
    body = (
        b"<NOTIFICATION ID='1'><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE><BODY><TO>1</TO></BODY></NOTIFICATION>"
    )
    assert rejected(body).reason == "missing-key"


def test_wrapped_notification_is_unwrapped():
    body = b"""<?xml version='1.0'?>
    <POSTBACK>
        <NOTIFICATION>
            <ORIGIN>SMS_MT</ORIGIN>
            <CODE>E202</CODE>
            <STATUS>Message Sent/Not Supported</STATUS>
            <TRACKINGID>U01TXzkwNDQ3Mw==</TRACKINGID>
            <TIMESTAMP>2014-06-01T08:00:00-04:00</TIMESTAMP>
        </NOTIFICATION>
    </POSTBACK>"""
    parsed = parse_postback(body)
    assert parsed.dialect == "wrapped-notification"
    assert (parsed.origin, parsed.code, parsed.state) == ("SMS_MT", "E202", S.UNDELIVERED)
    assert parsed.failure_reason == "NotSupported"
    assert parsed.tracking_id == "U01TXzkwNDQ3Mw=="
    assert parsed.timestamp_utc == utc(2014, 6, 1, 12, 0, 0)
    assert "NOTIFICATION" not in parsed.fields


def test_wrapped_notification_with_a_legacy_body():
    body = (
        b"<POSTBACK><NOTIFICATION ID='9'><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE>"
        b"<BODY><TRACKINGID>T-1</TRACKINGID><HISTORYID>3</HISTORYID></BODY></NOTIFICATION></POSTBACK>"
    )
    parsed = parse_postback(body)
    assert parsed.dialect == "wrapped-notification"
    assert parsed.tracking_id == "T-1"
    assert parsed.extras == {"ID": "9", "HISTORYID": "3"}


def test_notification_is_not_unwrapped_when_it_has_siblings():
    body = postback(
        element("ORIGIN", "MMS_MT"),
        element("CODE", "N101"),
        element("TRACKINGID", "outer"),
        "<NOTIFICATION><ORIGIN>SMS_MT</ORIGIN><TRACKINGID>inner</TRACKINGID></NOTIFICATION>",
    )
    parsed = parse_postback(body)
    assert (parsed.dialect, parsed.origin, parsed.tracking_id) == ("v1", "MMS_MT", "outer")
    assert parsed.fields["NOTIFICATION"] is None  # an unknown element with only child elements


def test_body_is_only_lifted_in_legacy_envelopes():
    body = postback(
        element("ORIGIN", "MMS_MT"), element("CODE", "N101"), "<BODY><TRACKINGID>x</TRACKINGID></BODY>"
    )
    error = rejected(body)
    assert error.reason == "missing-key"
    assert error.detail == ("TRACKINGID",)


# --- reading rules (§3.1, §3.4) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "name"),
    [
        ("TRACKINGID", "TRACKINGID"),
        ("tracking-id", "TRACKINGID"),
        ("TRACKING_ID", "TRACKINGID"),
        ("Tracking_Id", "TRACKINGID"),
        ("api-key", "APIKEY"),
        ("API_KEY", "APIKEY"),
        ("operator-id", "SPID"),
        ("OPERATORID", "SPID"),
        ("message-subject", "SUBJECT"),
        ("from_mask", "FROMMASK"),
        ("urn:example}status-details", "STATUSDETAILS"),  # expat's namespaced form
    ],
)
def test_name_normalisation(tag, name):
    assert normalise_name(tag) == name


def test_values_are_trimmed_and_empty_is_none():
    body = postback(
        element("ORIGIN", "\n  SMS_MO \t"),
        element("CODE", " N211 "),
        element("FROM", "  14155550178\n"),
        element("TO", "47215"),
        element("TEXT", "\u00a0hola\u00a0"),  # only XML whitespace is trimmed
        "<KEYWORD/>",
        element("EXTRA", "   "),
    )
    parsed = parse_postback(body)
    assert parsed.fields["ORIGIN"] == "SMS_MO"
    assert parsed.fields["FROM"] == "14155550178"
    assert parsed.fields["TEXT"] == "\u00a0hola\u00a0"
    assert parsed.fields["KEYWORD"] is None
    assert parsed.fields["EXTRA"] is None


def test_only_direct_children_are_read():
    body = postback(
        element("ORIGIN", "MMS_MT"),
        element("CODE", "N101"),
        "<WRAPPER><TRACKINGID>smuggled</TRACKINGID><ORIGIN>SUB</ORIGIN></WRAPPER>",
    )
    error = rejected(body)
    assert error.reason == "missing-key"
    assert (error.origin, error.code) == ("MMS_MT", "N101")


def test_an_unknown_wrappers_own_text_leaves_its_children_out():
    body = postback(
        element("ORIGIN", "MMS_MT"),
        element("CODE", "N101"),
        element("TRACKINGID", "T"),
        "<NOTE> a <B>bold</B> b <I/> c </NOTE>",
    )
    assert parse_postback(body).fields["NOTE"] == "a  b  c"


def test_text_may_be_split_by_comments_cdata_references_and_pis():
    body = postback(
        element("ORIGIN", "SMS_MO"),
        element("CODE", "N211"),
        element("FROM", "1415<!-- c -->5550178"),
        element("TO", "47<?pi x?>215"),
        element("TEXT", "<![CDATA[<b>&</b>]]> &#233;&amp;&lt;&gt;&quot;&apos;"),
    )
    parsed = parse_postback(body)
    assert parsed.fields["FROM"] == "14155550178"
    assert parsed.fields["TO"] == "47215"
    assert parsed.fields["TEXT"] == "<b>&</b> é&<>\"'"


def test_root_attributes_and_namespaces_are_ignored():
    body = b"""<?xml version='1.0'?>
    <POSTBACK xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
              xsi:noNamespaceSchemaLocation="http://schemas.provider.example/postback.xsd">
        <ORIGIN>MMS_MT</ORIGIN><CODE>N102</CODE><TRACKINGID>T-9</TRACKINGID>
    </POSTBACK>"""
    parsed = parse_postback(body)
    assert parsed.extras == {}
    assert parsed.state is S.DELIVERED


def test_a_default_namespace_does_not_hide_the_fields():
    body = b"<POSTBACK xmlns='urn:provider'><ORIGIN>SUB</ORIGIN><CODE>N301</CODE><MOBILE>1</MOBILE>" + (
        b"<CAMPAIGNID>2</CAMPAIGNID></POSTBACK>"
    )
    parsed = parse_postback(body)
    assert parsed.subscribed is True
    assert parsed.dialect == "v1"


def test_mms_mo_files_skip_empty_and_non_file_children():
    body = postback(
        element("ORIGIN", "MMS_MO"),
        element("CODE", "N401"),
        element("FROM", "1"),
        element("TO", "2"),
        element("TRACKINGID", "MMS_MO_x"),
        "<CONTENT><FILE> https://a/1.jpg </FILE><FILE/><OTHER>https://a/no</OTHER><file>https://a/2</file></CONTENT>",
        "<CONTENT><FILE>https://a/3.txt</FILE></CONTENT>",
    )
    parsed = parse_postback(body)
    assert parsed.files == ("https://a/1.jpg", "https://a/2", "https://a/3.txt")
    assert "CONTENT" not in parsed.fields


def test_utf8_bom_and_unicode_values():
    body = "\ufeff<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><FROM>1</FROM><TO>2</TO>" + (
        "<TEXT>¿Qué tal? 你好 🎉</TEXT></POSTBACK>"
    )
    parsed = parse_postback(body.encode("utf-8"))
    assert parsed.fields["TEXT"] == "¿Qué tal? 你好 🎉"


def test_utf8_declarations_are_accepted_whatever_their_spelling():
    for declaration in ('encoding="UTF-8"', "encoding='utf-8'", 'encoding="utf8"', 'encoding="US-ASCII"'):
        body = f"<?xml version='1.0' {declaration}?><POSTBACK><ORIGIN>X</ORIGIN><CODE>Y</CODE></POSTBACK>"
        assert parse_postback(body.encode()).kind is K.UNRECOGNISED


def test_bytearray_and_memoryview_bodies():
    body = read("mms_mt_n101.xml")
    assert parse_postback(bytearray(body)) == parse_postback(body)
    assert parse_postback(memoryview(body)) == parse_postback(body)


def test_invented_names_cannot_crowd_the_name_cache():
    flood = "".join(f"<INVENTED{index}/>" for index in range(3 * _NAME_CACHE_LIMIT))
    parse_postback(MINIMAL.replace(b"</POSTBACK>", flood.encode() + b"</POSTBACK>"))
    assert len(_NAME_CACHE) <= _NAME_CACHE_LIMIT
    assert _NAME_CACHE["tracking-id"] == "TRACKINGID"  # documented spellings stay cached
    assert parse_postback(read("lower/mms_mt_n102.xml")).tracking_id == "TU1TXzcxNTQwMg=="


def test_identical_repeated_elements_are_merged():
    body = postback(element("ORIGIN", "MMS_MT"), element("CODE", "N101"), element("TRACKINGID", "T") * 2)
    assert parse_postback(body).tracking_id == "T"


def test_conflicting_key_fields_are_rejected():
    body = postback(
        element("ORIGIN", "MMS_MT"),
        element("CODE", "N101"),
        element("TRACKINGID", "T-1"),
        element("tracking-id", "T-2"),
        element("CODE", "N102"),
    )
    error = rejected(body)
    assert error.reason == "duplicate-field"
    assert error.detail == ("TRACKINGID", "CODE")


def test_conflicting_unknown_fields_keep_the_first_value():
    body = postback(
        element("ORIGIN", "MMS_MT"),
        element("CODE", "N101"),
        element("TRACKINGID", "T"),
        element("HANDSET", "first"),
        element("HANDSET", "second"),
    )
    assert parse_postback(body).fields["HANDSET"] == "first"


# --- classification (§3.2, §3.8) --------------------------------------------------------------------------


def test_origin_and_code_values_are_case_insensitive():
    body = postback(element("ORIGIN", "mms_mt"), element("CODE", "n102"), element("TRACKINGID", "T"))
    parsed = parse_postback(body)
    assert (parsed.origin, parsed.code, parsed.state) == ("MMS_MT", "N102", S.DELIVERED)
    assert parsed.fields["ORIGIN"] == "mms_mt"  # fields keep the raw value


@pytest.mark.parametrize(
    ("origin", "code"),
    [("MMS_MT", "N999"), ("VOICE", "N101"), ("MMS_MT", "E100"), ("MMS_MT", "E005"), ("SUB", "E901")],
)
def test_unknown_origin_or_code_is_unrecognised_not_an_error(origin, code):
    body = postback(element("ORIGIN", origin), element("CODE", code), element("WHATEVER", "kept"))
    parsed = parse_postback(body)
    assert parsed.kind is K.UNRECOGNISED
    assert (parsed.origin, parsed.code) == (origin, code)
    assert parsed.state is parsed.template_state is parsed.subscribed is parsed.pass_ok is None
    assert parsed.via_link is parsed.alert is False
    assert parsed.fields["WHATEVER"] == "kept"


def test_unrecognised_events_without_ids_get_content_based_semantic_keys():
    one = parse_postback(postback(element("ORIGIN", "VOICE"), element("CODE", "N1"), element("A", "1")))
    two = parse_postback(postback(element("ORIGIN", "VOICE"), element("CODE", "N1"), element("A", "2")))
    reordered = parse_postback(postback(element("A", "1"), element("CODE", "N1"), element("ORIGIN", "VOICE")))
    assert one.correlation_id is None
    assert one.semantic_parts[2].startswith("fields-sha256:")
    assert one.semantic_key != two.semantic_key
    assert one.semantic_key == reordered.semantic_key


def test_generate_pass_accepts_code_as_well_as_statuscode():
    body = postback(element("ORIGIN", "GENERATE_PASS"), element("CODE", "N803"), element("PASSDATAID", "77"))
    parsed = parse_postback(body)
    assert (parsed.kind, parsed.pass_ok, parsed.correlation_id) == (K.PASS, False, "77")


def test_statuscode_is_accepted_on_other_origins_too():
    body = postback(element("ORIGIN", "MMS_MT"), element("STATUSCODE", "N101"), element("TRACKINGID", "T"))
    assert parse_postback(body).state is S.SENT


@pytest.mark.parametrize(
    ("code", "sent_as", "via_link", "state"),
    [
        ("N102", "SMS", True, S.DELIVERED),  # hyphenated dialect's spelling of "delivered via link"
        ("N102", "sms", True, S.DELIVERED),
        ("N202", "SMS", True, S.DELIVERED),
        ("N102", "MMS", False, S.DELIVERED),
        ("N202", None, False, S.DELIVERED),
        ("N101", "SMS", False, S.SENT),
        ("E202", "SMS", False, S.UNDELIVERED),
    ],
)
def test_via_link(code, sent_as, via_link, state):
    children = [element("origin", "MMS_MT"), element("code", code), element("tracking-id", "T")]
    if sent_as is not None:
        children.append(element("sent-as", sent_as))
    parsed = parse_postback(postback(*children, root="postback"))
    assert (parsed.via_link, parsed.state) == (via_link, state)


@pytest.mark.parametrize(
    ("origin", "code", "status", "reason"),
    [
        ("MMS_MT", "E102", "Message Sent/Expired", "Expired"),
        ("MMS_MT", "E102", "Message Sent/Rejected", "Rejected"),
        ("MMS_MT", "E102", "Message Sent/Failed", "Failed"),
        ("MMS_MT", "E102", "Message Sent/NotSupported", "NotSupported"),
        ("MMS_MT", "E102", "Message Sent/Not Supported", "NotSupported"),
        ("MMS_MT", "E102", "Message Sent/ not  supported ", "NotSupported"),
        ("MMS_MT", "E102", "Message Sent/Handset Busy", "Handset Busy"),
        ("MMS_MT", "E102", "Message Sent/", None),
        ("MMS_MT", "N103", "Expired", "Expired"),
        ("MMS_MT", "E101", "Message Failed", None),
        ("SMS_MT", "E202", "Message Sent/Expired", "Expired"),
        ("MMS_MT", "E502", "Message Sent/Rejected", "Rejected"),
        ("MMS_MT", "N102", "Message Sent/Delivered", None),  # not a failure
        ("SMS_MT", "N202", "Message Sent/Expired", "Expired"),  # a delivery report carrying a failure
    ],
)
def test_failure_reason(origin, code, status, reason):
    body = postback(
        element("ORIGIN", origin),
        element("CODE", code),
        element("TRACKINGID", "T"),
        element("STATUS", status),
    )
    assert parse_postback(body).failure_reason == reason


@pytest.mark.parametrize(
    ("origin", "fields", "correlation_id"),
    [
        ("MMS_MT", {"CODE": "N101", "TRACKINGID": "T", "MMSID": "M"}, "T"),
        ("MMS_MT", {"CODE": "N003", "TRACKINGID": "T", "MMSID": "M"}, "M"),
        ("MMS_MT", {"CODE": "E999", "MMSID": "M"}, "M"),
        ("MMS_MT", {"CODE": "E999"}, None),
        ("SMS_MT", {"CODE": "N201", "TRACKINGID": "T"}, "T"),
        ("SMS_MO", {"CODE": "N211", "FROM": "1", "TO": "2", "TRANSACTIONID": "X"}, "X"),
        ("SMS_MO", {"CODE": "N211", "FROM": "1", "TO": "2"}, None),
        ("MMS_MO", {"CODE": "N401", "FROM": "1", "TO": "2", "TRACKINGID": "MMS_MO_1"}, "MMS_MO_1"),
        ("SUB", {"CODE": "N301", "MOBILE": "1", "CAMPAIGNID": "2"}, "1#2"),
        ("EMAIL_SUB", {"CODE": "N304", "EMAIL": "a@b", "CAMPAIGNID": "2"}, "a@b#2"),
        ("GENERATE_PASS", {"STATUSCODE": "N801", "PASSDATAID": "7", "SERIALNUMBER": "S"}, "7"),
        ("VOICE", {"CODE": "N1", "TRANSACTIONID": "X"}, "X"),
    ],
)
def test_correlation_id(origin, fields, correlation_id):
    body = postback(element("ORIGIN", origin), *(element(name, value) for name, value in fields.items()))
    assert parse_postback(body).correlation_id == correlation_id


@pytest.mark.parametrize(
    ("origin", "name", "text", "stop"),
    [
        ("SMS_MO", "TEXT", "STOP", True),
        ("SMS_MO", "TEXT", " stop \n", True),
        ("SMS_MO", "TEXT", "Stop", True),
        ("SMS_MO", "TEXT", "STOPALL", True),
        ("SMS_MO", "TEXT", "unsubscribe", True),
        ("SMS_MO", "TEXT", "Cancel", True),
        ("SMS_MO", "TEXT", "END", True),
        ("SMS_MO", "TEXT", "quit", True),
        ("SMS_MO", "TEXT", "OptOut", True),
        ("SMS_MO", "TEXT", "REVOKE", True),
        ("SMS_MO", "TEXT", "\u00a0STOP\u00a0", True),
        ("SMS_MO", "TEXT", "STOP please", False),
        ("SMS_MO", "TEXT", "HELP", False),
        ("SMS_MO", "TEXT", "", False),
        ("SMS_MO", "KEYWORD", "STOP", True),
        ("MMS_MO", "KEYWORD", "stop", True),
        ("MMS_MO", "TEXT", "QUIT", True),
        ("MMS_MO", "KEYWORD", "PHOTO", False),
        ("SUB", "TEXT", "STOP", False),  # only inbound messages
    ],
)
def test_inbound_stop(origin, name, text, stop):
    base = {"SMS_MO": "N211", "MMS_MO": "N401", "SUB": "N302"}[origin]
    body = postback(
        element("ORIGIN", origin),
        element("CODE", base),
        element("FROM", "1"),
        element("TO", "2"),
        element("TRACKINGID", "MMS_MO_1"),
        element("MOBILE", "1"),
        element("CAMPAIGNID", "2"),
        element(name, text),
    )
    assert parse_postback(body).inbound_stop is stop


def test_unparseable_timestamp_is_kept_raw_and_not_replaced():
    body = postback(
        element("ORIGIN", "MMS_MT"),
        element("CODE", "N101"),
        element("TRACKINGID", "T"),
        element("TIMESTAMP", "soon"),
    )
    parsed = parse_postback(body, received_at=RECEIVED_AT)
    assert (parsed.timestamp_raw, parsed.timestamp_utc, parsed.timestamp_derived) == ("soon", None, False)


def test_timestamp_without_offset_is_kept_raw():
    body = postback(
        element("ORIGIN", "SUB"),
        element("CODE", "N301"),
        element("MOBILE", "1"),
        element("CAMPAIGNID", "2"),
        element("TIMESTAMP", "2024-03-14 10:02:11"),
    )
    parsed = parse_postback(body, received_at=RECEIVED_AT)
    assert (parsed.timestamp_raw, parsed.timestamp_utc) == ("2024-03-14 10:02:11", None)


def test_sms_mo_prefers_received_and_others_prefer_timestamp():
    sms_mo = parse_postback(
        postback(
            element("ORIGIN", "SMS_MO"),
            element("CODE", "N211"),
            element("FROM", "1"),
            element("TO", "2"),
            element("TIMESTAMP", "2024-01-01T00:00:00Z"),
            element("RECEIVED", "2024-02-02T00:00:00Z"),
        )
    )
    assert sms_mo.timestamp_raw == "2024-02-02T00:00:00Z"
    fallback = parse_postback(
        postback(
            element("ORIGIN", "SMS_MO"), element("CODE", "N211"), element("FROM", "1"), element("TO", "2")
        ).replace(b"</POSTBACK>", element("TIMESTAMP", "2024-01-01T00:00:00Z").encode() + b"</POSTBACK>")
    )
    assert fallback.timestamp_utc == utc(2024, 1, 1)


# --- rejections -------------------------------------------------------------------------------------------

MINIMAL = b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>1</MMSID></POSTBACK>"


def test_minimal_document_is_accepted():
    assert parse_postback(MINIMAL).template_state is TemplateState.READY


def test_doctype_is_rejected():
    assert rejected(b"<!DOCTYPE POSTBACK>" + MINIMAL).reason == "doctype"
    assert (
        rejected(b'<?xml version="1.0"?>\n<!DOCTYPE POSTBACK SYSTEM "postback.dtd">' + MINIMAL).reason
        == "doctype"
    )


def test_external_dtd_is_not_fetched(monkeypatch):
    body = b'<!DOCTYPE POSTBACK PUBLIC "-//X//DTD X//EN" "http://198.51.100.1/postback.dtd">' + MINIMAL
    work = count_parses(monkeypatch, "mmsbridge.postbacks.reader")
    OPENED.clear()
    WATCHING.append(True)
    try:
        assert rejected(body).reason == "doctype"
    finally:
        WATCHING.clear()
    assert OPENED == []  # no connection, no request, no file: nothing fetched
    # Refused at the DOCTYPE itself: not one element of the document was read.
    assert work[-1].elements == 0
    assert work[-1].stopped_at < body.index(b"<POSTBACK>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>&lol9;</MMSID></POSTBACK>"""


def test_billion_laughs_is_rejected_without_expanding(monkeypatch):
    work = count_parses(monkeypatch, "mmsbridge.postbacks.reader")
    error = rejected(BILLION_LAUGHS)
    assert error.reason == "entities"
    assert "lol" * 10 not in str(error)
    # Work counted, not timed: expat stopped at the DOCTYPE, before the first entity declaration, and handed
    # on no element and no character (one expansion of lol9 would be 3 * 10^9 characters).
    (parse,) = work
    assert (parse.elements, parse.characters) == (0, 0)
    assert parse.stopped_at < BILLION_LAUGHS.index(b"<!ENTITY")


def test_external_entity_is_rejected_without_reading_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    for target in ("file:///etc/passwd", secret.as_uri()):
        body = (
            f'<?xml version="1.0"?><!DOCTYPE POSTBACK [<!ENTITY xxe SYSTEM "{target}">]>'
            "<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>&xxe;</MMSID></POSTBACK>"
        ).encode()
        error = rejected(body)
        assert error.reason == "entities"
        assert "TOP-SECRET-CONTENT" not in str(error)
        assert "root:" not in str(error)


def test_no_file_is_opened_while_parsing(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    bodies = [
        f'<!DOCTYPE POSTBACK [<!ENTITY x SYSTEM "{secret.as_uri()}">]><POSTBACK>&x;</POSTBACK>'.encode(),
        f'<!DOCTYPE POSTBACK SYSTEM "{secret.as_uri()}"><POSTBACK/>'.encode(),
        f'<?xml-stylesheet href="{secret.as_uri()}"?>'.encode() + MINIMAL,
        b'<POSTBACK xmlns:xi="http://www.w3.org/2001/XInclude"><ORIGIN>X</ORIGIN><CODE>Y</CODE>'
        + f'<xi:include href="{secret}"/></POSTBACK>'.encode(),
    ]
    OPENED.clear()
    WATCHING.append(True)
    try:
        secret.read_text(encoding="utf-8")  # control: the hook does see an open
        assert OPENED
        OPENED.clear()
        for body in bodies:
            with contextlib.suppress(PostbackError):
                parse_postback(body)
    finally:
        WATCHING.clear()
    assert OPENED == []


OPENED: list[object] = []
WATCHING: list[bool] = []


def _watch_opens(event: str, args: tuple) -> None:
    if WATCHING and event in ("open", "os.open", "urllib.Request", "socket.connect"):
        OPENED.append((event, args[:1]))


sys.addaudithook(_watch_opens)


def test_parameter_entities_are_rejected(monkeypatch):
    body = (
        b"""<?xml version="1.0"?>
<!DOCTYPE POSTBACK [
  <!ENTITY % remote SYSTEM "http://198.51.100.1/evil.dtd">
  <!ENTITY % local "<!ENTITY inner 'x'>">
  %remote; %local;
]>"""
        + MINIMAL
    )
    work = count_parses(monkeypatch, "mmsbridge.postbacks.reader")
    OPENED.clear()
    WATCHING.append(True)
    try:
        assert rejected(body).reason == "entities"
    finally:
        WATCHING.clear()
    assert OPENED == []  # the remote DTD never fetched
    assert (work[-1].elements, work[-1].characters) == (0, 0)
    assert work[-1].stopped_at < body.index(b"<!ENTITY")


def test_entity_reference_without_a_declaration_is_not_well_formed():
    body = b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>&xxe;</MMSID></POSTBACK>"
    assert rejected(body).reason == "not-well-formed"


def nested(levels: int, *, closed: bool = True) -> bytes:
    inner = b"<ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>1</MMSID>"
    opening = b"<POSTBACK>" + b"<a>" * (levels - 1)
    closing = b"</a>" * (levels - 1) + b"</POSTBACK>" if closed else b""
    return opening + inner + closing


def test_a_hundred_thousand_levels_are_rejected_without_recursion(monkeypatch):
    body = nested(100_000)
    work = count_parses(monkeypatch, "mmsbridge.postbacks.reader")
    error = rejected(body, max_bytes=len(body))  # a RecursionError would be an internal error, not this
    assert error.reason == "too-deep"
    # Aborted at the first element past MAX_DEPTH: no further element read, no tree, a few bytes in.
    (parse,) = work
    assert parse.elements == MAX_DEPTH + 1
    assert parse.stopped_at <= len(b"<POSTBACK>" + b"<a>" * MAX_DEPTH)  # its start tag, nothing after


def test_deep_nesting_within_the_default_size_cap_is_rejected():
    assert rejected(nested(8_000)).reason == "too-deep"
    assert rejected(nested(20_000, closed=False)).reason == "too-deep"  # found before the missing ends


def test_depth_limit_boundary():
    inner = "<ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID>1</MMSID>"
    # POSTBACK (level 1) > WRAP (2) > ... : a leaf at level MAX_DEPTH is fine, one level more is not.
    at_limit = f"<POSTBACK>{inner}{'<W>' * (MAX_DEPTH - 1)}{'</W>' * (MAX_DEPTH - 1)}</POSTBACK>"
    assert parse_postback(at_limit.encode()).fields["W"] is None
    over = f"<POSTBACK>{inner}{'<W>' * MAX_DEPTH}{'</W>' * MAX_DEPTH}</POSTBACK>"
    assert rejected(over.encode()).reason == "too-deep"


@pytest.mark.parametrize(
    "body",
    [
        b"<POSTBACK><ORIGIN>SMS_MO</ORIGIN><TEXT>\xff</TEXT></POSTBACK>",
        b"<?xml version='1.0' encoding='ISO-8859-1'?><POSTBACK><TEXT>caf\xe9</TEXT></POSTBACK>",
        b"<POSTBACK><TEXT>\xc0\xaf</TEXT></POSTBACK>",  # overlong encoding of '/'
        b"<POSTBACK><TEXT>\xed\xa0\x80</TEXT></POSTBACK>",  # an encoded surrogate
        b"<POSTBACK><TEXT>\xe2\x82</TEXT></POSTBACK>",  # truncated sequence
        "<POSTBACK/>".encode("utf-16"),
    ],
)
def test_invalid_utf8_is_rejected(body):
    assert rejected(body).reason == "invalid-utf8"


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "windows-1252", "EBCDIC-US"])
def test_a_declared_encoding_other_than_utf8_is_rejected(encoding):
    body = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + MINIMAL
    assert rejected(body).reason == "encoding"


@pytest.mark.parametrize(
    "body",
    [
        MINIMAL[:-5],  # truncated
        MINIMAL[:40],
        b"<POSTBACK>",
        b"<POSTBACK><ORIGIN>MMS_MT</CODE></POSTBACK>",
        MINIMAL + b"<POSTBACK/>",  # two roots
        MINIMAL + b"junk",
        b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N003</CODE><MMSID a=1>1</MMSID></POSTBACK>",
        b"<POSTBACK><ORIGIN>\x01</ORIGIN></POSTBACK>",  # a control character XML 1.0 forbids
        b"<POSTBACK><xsi:ORIGIN>MMS_MT</xsi:ORIGIN></POSTBACK>",  # unbound prefix
        b"  <?xml version='1.0'?>" + MINIMAL,  # declaration not at the start
        b"<",
    ],
)
def test_not_well_formed_is_rejected(body):
    assert rejected(body).reason == "not-well-formed"


@pytest.mark.parametrize("body", [b"", b"   \n\t", b"\xef\xbb\xbf", b"\xef\xbb\xbf \r\n"])
def test_empty_body_is_rejected(body):
    assert rejected(body).reason == "empty"


@pytest.mark.parametrize(
    "body",
    [
        b'{"origin": "MMS_MT", "code": "N101", "trackingId": "T"}',
        b"xml=%3CPOSTBACK%3E%3CORIGIN%3EMMS_MT%3C%2FORIGIN%3E%3C%2FPOSTBACK%3E",
        b"XML=<POSTBACK><ORIGIN>MMS_MT</ORIGIN></POSTBACK>",
        b"ORIGIN=MMS_MT&CODE=N101",
    ],
)
def test_json_and_form_bodies_are_rejected(body):
    assert rejected(body).reason == "not-xml"


@pytest.mark.parametrize(
    "body",
    [
        (SAMPLES / "responses" / "send_sms_success.xml").read_bytes(),
        (SAMPLES / "responses" / "failure_e104.xml").read_bytes(),
        (SAMPLES / "requests" / "send_sms.xml").read_bytes(),
        b"<response><status>Success</status></response>",
        b"<POSTBACKS><POSTBACK/></POSTBACKS>",
        b"<BODY><ORIGIN>MMS_MT</ORIGIN></BODY>",
        b"<html><body>502 Bad Gateway</body></html>",
    ],
)
def test_wrong_roots_are_rejected(body):
    assert rejected(body).reason == "wrong-root"


@pytest.mark.parametrize(
    "body",
    [
        b"<POSTBACK><CODE>N101</CODE><TRACKINGID>T</TRACKINGID></POSTBACK>",
        b"<POSTBACK><ORIGIN></ORIGIN><CODE>N101</CODE></POSTBACK>",
        b"<POSTBACK><ORIGIN>  </ORIGIN><CODE>N101</CODE></POSTBACK>",
        b"<POSTBACK/>",
        b"<NOTIFICATION><BODY><ORIGIN2>x</ORIGIN2></BODY></NOTIFICATION>",
    ],
)
def test_missing_origin_is_rejected(body):
    assert rejected(body).reason == "no-origin"


@pytest.mark.parametrize(
    "body",
    [
        b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><TRACKINGID>T</TRACKINGID></POSTBACK>",
        b"<POSTBACK><ORIGIN>GENERATE_PASS</ORIGIN><STATUSCODE/></POSTBACK>",
        b"<POSTBACK><ORIGIN>SUB</ORIGIN><CODE> </CODE><STATUSCODE></STATUSCODE></POSTBACK>",
    ],
)
def test_missing_code_is_rejected(body):
    error = rejected(body)
    assert error.reason == "no-code"
    assert error.origin is not None


@pytest.mark.parametrize(
    ("origin", "code", "present", "missing"),
    [
        ("MMS_MT", "N101", {"MMSID": "1", "TO": "1"}, ("TRACKINGID",)),
        ("MMS_MT", "N102", {"TRACKINGID": ""}, ("TRACKINGID",)),
        ("MMS_MT", "E102", {}, ("TRACKINGID",)),
        ("MMS_MT", "E011", {"MMSID": "1"}, ("TRACKINGID",)),
        ("MMS_MT", "N502", {"MMSID": "1"}, ("TRACKINGID",)),
        ("MMS_MT", "N013", {"MMSID": "1"}, ("TRACKINGID",)),
        ("MMS_MT", "N003", {"TRACKINGID": "T"}, ("MMSID",)),
        ("MMS_MT", "E002", {"AUDIONAME": "a.mp3"}, ("MMSID",)),
        ("SMS_MT", "N201", {"TO": "1"}, ("TRACKINGID",)),
        ("SMS_MT", "E202", {}, ("TRACKINGID",)),
        ("SMS_MO", "N211", {"TO": "47215", "TEXT": "hi"}, ("FROM",)),
        ("SMS_MO", "N211", {"FROM": "1"}, ("TO",)),
        ("SMS_MO", "N211", {}, ("FROM", "TO")),
        ("MMS_MO", "N401", {"FROM": "1", "TO": "2"}, ("TRACKINGID",)),
        ("MMS_MO", "N401", {"TRACKINGID": "MMS_MO_1"}, ("FROM", "TO")),
        ("SUB", "N301", {"CAMPAIGNID": "2"}, ("MOBILE",)),
        ("SUB", "N302", {"MOBILE": "1"}, ("CAMPAIGNID",)),
        ("EMAIL_SUB", "N303", {"CAMPAIGNID": "2"}, ("EMAIL",)),
        ("EMAIL_SUB", "N304", {"EMAIL": "a@b"}, ("CAMPAIGNID",)),
    ],
)
def test_missing_correlation_key_is_rejected(origin, code, present, missing):
    body = postback(
        element("ORIGIN", origin), element("CODE", code), *(element(k, v) for k, v in present.items())
    )
    error = rejected(body)
    assert error.reason == "missing-key"
    assert error.detail == missing
    assert (error.origin, error.code) == (origin, code)
    assert all(name in str(error) for name in missing)


@pytest.mark.parametrize(
    "body",
    [
        b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>E999</CODE></POSTBACK>",  # alert even when uncorrelated
        b"<POSTBACK><ORIGIN>GENERATE_PASS</ORIGIN><STATUSCODE>N802</STATUSCODE></POSTBACK>",
        b"<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N777</CODE></POSTBACK>",
    ],
)
def test_codes_that_require_no_key(body):
    assert parse_postback(body).origin


def test_too_large_is_rejected_before_parsing():
    padding = b"<PAD>" + b"x" * DEFAULT_MAX_BYTES + b"</PAD>"
    assert rejected(MINIMAL.replace(b"</POSTBACK>", padding + b"</POSTBACK>")).reason == "too-large"
    assert rejected(b"\xff" * (DEFAULT_MAX_BYTES + 1)).reason == "too-large"  # checked before decoding


def test_size_cap_boundary_and_parameter():
    filler = DEFAULT_MAX_BYTES - len(MINIMAL) - len(b"<PAD></PAD>")
    exact = MINIMAL.replace(b"</POSTBACK>", b"<PAD>" + b"x" * filler + b"</PAD></POSTBACK>")
    assert len(exact) == DEFAULT_MAX_BYTES
    assert parse_postback(exact).fields["PAD"] == "x" * filler
    assert rejected(MINIMAL, max_bytes=len(MINIMAL) - 1).reason == "too-large"
    assert parse_postback(MINIMAL, max_bytes=len(MINIMAL)).mms_id == "1"


@pytest.mark.parametrize("body", ["<POSTBACK/>", None, 42, ["<POSTBACK/>"]])
def test_non_bytes_is_rejected(body):
    assert rejected(body).reason == "not-bytes"


def test_reasons_are_documented():
    assert {
        "doctype",
        "entities",
        "not-well-formed",
        "invalid-utf8",
        "too-deep",
        "too-large",
        "wrong-root",
        "no-origin",
        "no-code",
        "missing-key",
    } <= REASONS


def test_error_repr_names_the_reason():
    error = rejected(b"<RESPONSE/>")
    assert repr(error).startswith("PostbackError('wrong-root'")
    assert isinstance(error, ValueError)


def test_postback_type_is_exported():
    assert isinstance(parse_postback(MINIMAL), Postback)
