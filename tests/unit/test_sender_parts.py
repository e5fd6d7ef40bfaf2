"""The sender's pure parts: the limiter's slot arithmetic, media checks, the API URL rule, Retry-After,
the ledger's items and the settings read from the template's environment."""

from __future__ import annotations

import json
import re
import runpy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.template.load import load_template
from local.template.resolve import load_stack
from mmsbridge.sending.ledger import outbound_items, rejected_item, sha256_hex
from mmsbridge.sending.limiter import next_slot
from mmsbridge.sending.provider_http import _retry_after, check_api_url, media_problem
from mmsbridge.sending.request import InvalidSendRequest, parse_send_request_json
from mmsbridge.sending.sender import Delivery, SenderSettings

ROOT = Path(__file__).resolve().parents[2]

# ---- the limiter -----------------------------------------------------------------------------------


@settings(deadline=None)  # hypothesis's default 200 ms per example is a stopwatch a loaded machine can beat
@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    now=st.floats(min_value=0, max_value=1e9),
    arrivals=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=50),
)
def test_slots_are_never_in_the_past_and_never_closer_than_one_interval(rate, now, arrivals):
    tat = None
    previous = None
    for gap in arrivals:
        now += gap
        slot = next_slot(tat, now, rate)
        assert slot.start >= now
        if previous is not None:
            assert slot.start - previous >= 1 / rate - 1e-6
        assert slot.new_tat == pytest.approx(slot.start + 1 / rate)
        previous, tat = slot.start, slot.new_tat


def test_idle_time_does_not_build_up_a_burst():
    slot = next_slot(tat=100.0, now=500.0, rate_per_s=10)
    assert slot.start == 500.0


def test_the_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate_per_s"):
        next_slot(None, 0.0, 0)


# ---- media preflight -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {"Content-Type": "image/jpeg", "Content-Length": "1200"}, None),
        (200, {"Content-Type": "IMAGE/PNG; charset=binary", "Content-Length": "5"}, None),
        (200, {"Content-Type": "application/octet-stream", "Content-Length": "5"}, "permanent"),
        (200, {"Content-Length": "5"}, "permanent"),
        (200, {"Content-Type": "video/mp4"}, "permanent"),
        (200, {"Content-Type": "video/mp4", "Content-Length": "0"}, "permanent"),
        (200, {"Content-Type": "video/mp4", "Content-Length": "abc"}, "permanent"),
        (404, {"Content-Type": "image/jpeg", "Content-Length": "5"}, "permanent"),
        (403, {}, "permanent"),
        (503, {}, "transient"),
    ],
)
def test_media_answers_are_checked_as_the_provider_fetches_them(status, headers, expected):
    problem = media_problem(status, headers)
    assert (problem[0] if problem else None) == expected


# ---- the API URL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://secure.skycore.com/API/wxml/1.3/",
        "http://127.0.0.1:8089/API/wxml/1.3/",
        "http://localhost:1/",
    ],
)
def test_https_or_loopback_http_is_accepted(url):
    assert check_api_url(url) == url


@pytest.mark.parametrize(
    "url", ["http://secure.skycore.com/API/", "ftp://127.0.0.1/", "https:///nohost", "", "http://10.0.0.1/"]
)
def test_plain_http_to_another_host_is_refused(url):
    with pytest.raises(ValueError, match="https"):
        check_api_url(url)


# ---- Retry-After -----------------------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_a_date():
    assert _retry_after("30") == 30.0
    assert _retry_after(" 5 ") == 5.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now


# ---- ledger items ----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_refusal_is_keyed_by_its_request_id_when_usable():
    item = rejected_item('{"request_id": "r-1"}', "r-1", [("to", "is required")], NOW)
    assert (item["pk"], item["sk"], item["status"]) == ("REQ#r-1", "REQUEST", "REJECTED")
    assert item["reasons"] == [{"field": "to", "reason": "is required"}]
    assert item["gsi1pk"] == "SEND#REJECTED"


@pytest.mark.parametrize("request_id", [None, 7, "", "x" * 257, "tab\there"])
def test_a_refusal_without_a_usable_request_id_is_keyed_by_the_body(request_id):
    body = '{"oops": 1}'
    item = rejected_item(body, request_id, [("$", "bad")], NOW)
    assert item["pk"] == f"REJECTED#{sha256_hex(body)}"
    assert item["request_id"] is None


def test_outbound_items_put_the_request_under_its_trackingid_with_a_submitted_marker():
    ledger = {
        "request_id": "r-1",
        "action": "sendSavedMMS",
        "to": "17743199144",
        "from": "12345",
        "mms_id": "48213",
        "tracking_id": "TU1TXzgxMjM0NQ==",
        "accepted_at": "2026-11-25T12:00:00.000000Z",
        "provider_from": "12345",
    }
    outbound, marker = outbound_items(ledger, retention_days=10)
    assert (outbound["pk"], outbound["sk"]) == ("MSG#TU1TXzgxMjM0NQ==", "REQUEST")
    assert (outbound["request_id"], outbound["mms_id"], outbound["to"]) == ("r-1", "48213", "17743199144")
    assert (marker["sk"], marker["state"], marker["rank"]) == ("RANK#0#SUBMITTED", "SUBMITTED", 0)
    assert marker["gsi1pk"].startswith("OPEN#")
    assert outbound["expires_at"] == marker["expires_at"] == int(NOW.timestamp()) + 10 * 86400
    assert outbound_items(ledger) == outbound_items(dict(ledger))  # pure: a rewrite changes nothing


# ---- settings --------------------------------------------------------------------------------------


def test_settings_come_from_the_template_environment():
    settings = SenderSettings.from_env(
        {
            "DELIVERY": "at-least-once",
            "MAX_ATTEMPTS": "7",
            "MAX_THROTTLED_MINUTES": "30",
            "MEDIA_PREFLIGHT": "true",
            "DEFAULT_COUNTRY_CODE": "1",
            "HISTORY_RETENTION_DAYS": "400",
            "PROVIDER_SERVICE_ID": "svc-00417",
        }
    )
    assert settings.delivery is Delivery.AT_LEAST_ONCE
    assert (settings.max_attempts, settings.max_throttled_s) == (7, 1800)
    assert settings.media_preflight
    assert (settings.default_country_code, settings.retention_days) == ("1", 400)
    assert settings.service_id == "svc-00417"
    defaults = SenderSettings.from_env({})
    assert defaults.delivery is Delivery.AT_MOST_ONCE
    assert not defaults.media_preflight
    assert defaults.default_country_code is None
    assert defaults.service_id is None
    assert SenderSettings.from_env({"PROVIDER_SERVICE_ID": ""}).service_id is None  # the template's default


@pytest.mark.parametrize(
    "value", [" svc", "svc ", "svc 1", "svc\t1", "svc\n", "s" * 65, "svc\x00", "sérvice"]
)
def test_a_service_id_outside_the_templates_pattern_stops_the_cold_start(value):
    with pytest.raises(ValueError, match="PROVIDER_SERVICE_ID"):
        SenderSettings.from_env({"PROVIDER_SERVICE_ID": value})
    assert SenderSettings.from_env({"PROVIDER_SERVICE_ID": "s" * 64}).service_id == "s" * 64


def test_the_template_gives_the_sender_its_service_id_empty_by_default():
    template = load_template(ROOT / "template.yaml")
    parameter = template["Parameters"]["ProviderServiceId"]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    pattern = re.compile(parameter["AllowedPattern"])  # the same rule as the sender's check
    for value in ("", "svc-00417", "s" * 64):
        assert pattern.fullmatch(value)
        SenderSettings.from_env({"PROVIDER_SERVICE_ID": value})
    for value in (" svc", "svc 1", "s" * 65, "sérvice"):
        assert not pattern.fullmatch(value)
    environment = template["Resources"]["SenderFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["PROVIDER_SERVICE_ID"] == {"Ref": "ProviderServiceId"}
    local = load_stack(ROOT / "template.yaml", ROOT / "samconfig.toml")  # the local stack, as `make run`
    assert local.functions()["SenderFunction"].environment["PROVIDER_SERVICE_ID"] == ""
    overridden = load_stack(
        ROOT / "template.yaml", ROOT / "samconfig.toml", overrides={"ProviderServiceId": "svc-00417"}
    )
    sender = overridden.functions()["SenderFunction"].environment
    assert SenderSettings.from_env(sender).service_id == "svc-00417"


def test_a_block_of_slots_moves_the_tat_by_its_length():
    slot = next_slot(tat=10.0, now=5.0, rate_per_s=4, count=3)
    assert (slot.start, slot.new_tat) == (10.0, 10.75)
    with pytest.raises(ValueError, match="count"):
        next_slot(None, 0.0, 1.0, count=0)


# ---- the example send requests ---------------------------------------------------------------------

EVENTS = ROOT / "events" / "sender"
REFUSED_EXAMPLES = {
    "invalid-number.json": "to",
    "two-custom-texts.json": "custom_text",
    "no-fallback-text.json": "fallback_sms_text",
    "campaign-ref-line-break.json": "campaign_ref",
}


def test_each_example_is_accepted_or_refused_for_the_one_rule_it_shows():
    examples = sorted(path.name for path in EVENTS.glob("*.json") if path.name != "send-batch.json")
    assert set(REFUSED_EXAMPLES) <= set(examples)
    for name in examples:
        body = (EVENTS / name).read_bytes()
        if name in REFUSED_EXAMPLES:
            with pytest.raises(InvalidSendRequest) as caught:
                parse_send_request_json(body)
            assert [field for field, _ in caught.value.errors] == [REFUSED_EXAMPLES[name]], name
        else:
            parse_send_request_json(body)


def test_the_sample_batch_is_make_batchs_output_of_every_example():
    make_batch = runpy.run_path(str(EVENTS / "make_batch.py"))
    assert json.loads((EVENTS / "send-batch.json").read_text()) == make_batch["batch"]()
    listed = set(make_batch["EXAMPLES"])
    assert listed == {path.name for path in EVENTS.glob("*.json")} - {"send-batch.json"}
