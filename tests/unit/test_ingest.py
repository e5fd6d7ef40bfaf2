"""The pure ingest decision: admission, refusals, exact bytes, content-addressed keys."""

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.ingest import admission as ingest
from mmsbridge.ingest.admission import IngestSettings, ReceivedPostback, Refusal, refusal_response
from mmsbridge.ingest.tokens import PostbackTokens, TokenUnavailable

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TOKEN = "s3cret-token-0123456789-abcdefghijklmnop"
OLD_TOKEN = "old-token-0123456789-abcdefghijklmnopqrs"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:PostbackTokenSecret-AbCdEf"
BODY = b"<?xml version='1.0'?><POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>N101</CODE></POSTBACK>"


def make_settings(**overrides):
    env = {
        "ALLOWED_SOURCE_CIDRS": "127.0.0.1/32,::1/128,34.198.230.58/32",
        "MAX_BODY_BYTES": "1024",
        "POSTBACK_TOKEN_SECRET": SECRET_ARN,
    }
    env.update(overrides)
    return IngestSettings.from_env(env)


def tokens(document: str = json.dumps({"current": TOKEN})) -> PostbackTokens:
    return PostbackTokens(lambda: document)


def admit(event, settings, now, token_accepted=None):
    """The decision with the accepted token TOKEN, unless the test gives its own check."""
    return ingest.admit(event, settings, now, token_accepted or tokens().accepts)


def event(body=BODY, *, ip="127.0.0.1", b64=True, token=TOKEN, headers=None):
    text = base64.b64encode(body).decode() if b64 else body.decode("utf-8")
    return {
        "resource": "/postback/{token}",
        "httpMethod": "POST",
        "headers": headers if headers is not None else {"Content-Type": "text/xml; charset=utf-8"},
        "pathParameters": {"token": token} if token is not None else None,
        "requestContext": {"requestId": "req-1", "identity": {"sourceIp": ip}},
        "body": text,
        "isBase64Encoded": b64,
    }


def test_admitted_body_is_the_exact_bytes_with_its_hash():
    received = admit(event(), make_settings(), NOW)
    assert isinstance(received, ReceivedPostback)
    assert received.body == BODY
    assert received.sha256 == hashlib.sha256(BODY).hexdigest()
    assert received.source_ip == "127.0.0.1"
    assert received.request_id == "req-1"
    assert received.content_type == "text/xml; charset=utf-8"
    assert received.received_at == NOW


def test_plain_text_body_is_encoded_as_utf8():
    body = "<POSTBACK><TEXT>Olá ✓</TEXT></POSTBACK>".encode()
    received = admit(event(body, b64=False), make_settings(), NOW)
    assert isinstance(received, ReceivedPostback)
    assert received.body == body


def test_malformed_and_hostile_bodies_are_still_admitted():
    # The ingest never judges content: the consumer quarantines it, the raw bytes stay archived.
    for body in (b"not xml at all", b"\xff\xfe\x00garbage", b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'):
        received = admit(event(body), make_settings(), NOW)
        assert isinstance(received, ReceivedPostback)
        assert received.body == body


def test_same_body_same_key_different_body_different_key():
    settings_ = make_settings()
    first = admit(event(), settings_, NOW)
    again = admit(event(ip="::1"), settings_, NOW)
    other = admit(event(BODY + b" "), settings_, NOW)
    assert first.archive_key("raw/") == again.archive_key("raw/")
    assert first.archive_key("raw/") == f"raw/{hashlib.sha256(BODY).hexdigest()}.xml"
    assert other.archive_key("raw/") != first.archive_key("raw/")


@pytest.mark.parametrize("ip", ["127.0.0.2", "10.0.0.1", "34.198.230.59", "", "not-an-ip", "::2"])
def test_refuses_addresses_outside_the_allowed_cidrs(ip):
    assert admit(event(ip=ip), make_settings(), NOW) is Refusal.ADDRESS


def test_allows_any_address_inside_a_cidr():
    settings_ = make_settings(ALLOWED_SOURCE_CIDRS="10.1.0.0/16")
    assert isinstance(admit(event(ip="10.1.200.3"), settings_, NOW), ReceivedPostback)
    assert admit(event(ip="10.2.0.1"), settings_, NOW) is Refusal.ADDRESS


def test_no_cidrs_configured_admits_nobody():
    assert admit(event(), make_settings(ALLOWED_SOURCE_CIDRS=""), NOW) is Refusal.ADDRESS


def test_address_is_checked_before_the_token():
    asked = []
    refused = admit(event(ip="127.0.0.2"), make_settings(), NOW, lambda given: asked.append(given) or True)
    assert refused is Refusal.ADDRESS
    assert asked == []  # a stranger never makes the ingest read the token's secret


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), OLD_TOKEN])
def test_refuses_a_missing_or_wrong_token(token):
    assert admit(event(token=token), make_settings(), NOW) is Refusal.TOKEN


def test_a_missing_token_is_refused_without_asking():
    asked = []
    check = lambda given: asked.append(given) or True  # noqa: E731
    assert admit(event(token=None), make_settings(), NOW, check) is Refusal.TOKEN
    assert admit(event(token=""), make_settings(), NOW, check) is Refusal.TOKEN
    assert asked == []


def test_admits_the_right_token():
    assert isinstance(admit(event(token=TOKEN), make_settings(), NOW), ReceivedPostback)


def test_admits_the_previous_token_during_a_rotation():
    rotating = tokens(json.dumps({"current": TOKEN, "previous": OLD_TOKEN})).accepts
    for token in (TOKEN, OLD_TOKEN):
        assert isinstance(admit(event(token=token), make_settings(), NOW, rotating), ReceivedPostback)
    assert admit(event(token=OLD_TOKEN + "x"), make_settings(), NOW, rotating) is Refusal.TOKEN


def test_a_token_that_cannot_be_checked_is_answered_503_so_the_provider_retries():
    def unavailable(given):
        raise TokenUnavailable("the postback token's secret could not be read")

    assert admit(event(), make_settings(), NOW, unavailable) is Refusal.TOKEN_UNAVAILABLE
    response = refusal_response(Refusal.TOKEN_UNAVAILABLE)
    assert response["statusCode"] == 503
    assert Refusal.TOKEN_UNAVAILABLE.metric_name == "RefusedTokenUnavailable"


@pytest.mark.parametrize("b64", [True, False])
def test_refuses_an_empty_body(b64):
    ev = event(b"", b64=b64)
    assert admit(ev, make_settings(), NOW) is Refusal.EMPTY_BODY
    ev["body"] = None
    assert admit(ev, make_settings(), NOW) is Refusal.EMPTY_BODY


def test_body_at_the_cap_is_admitted_one_byte_more_is_refused():
    assert isinstance(admit(event(b"x" * 1024), make_settings(), NOW), ReceivedPostback)
    assert admit(event(b"x" * 1025), make_settings(), NOW) is Refusal.TOO_LARGE
    assert admit(event(b"x" * 1025, b64=False), make_settings(), NOW) is Refusal.TOO_LARGE


def test_multibyte_text_counts_bytes_not_characters():
    body = "é".encode() * 513  # 513 characters, 1026 bytes
    assert admit(event(body, b64=False), make_settings(), NOW) is Refusal.TOO_LARGE


def test_oversized_base64_is_refused_before_decoding():
    ev = event(b"x")
    ev["body"] = "A" * 10_000_000  # would decode to 7.5 MB
    assert admit(ev, make_settings(), NOW) is Refusal.TOO_LARGE


def test_invalid_base64_is_refused():
    ev = event()
    ev["body"] = "not*base64!"
    assert admit(ev, make_settings(), NOW) is Refusal.BAD_ENCODING


def test_hostile_header_values_become_safe_metadata():
    received = admit(
        event(headers={"content-type": "text/xml\r\nX-Evil: 1 ✓" + "a" * 500}), make_settings(), NOW
    )
    metadata = received.archive_metadata()
    assert all(" " <= ch <= "~" for value in metadata.values() for ch in value)
    assert len(metadata["content-type"]) <= 256
    assert metadata["content-type"].startswith("text/xml??X-Evil: 1 ?")


def test_missing_headers_and_context_do_not_crash():
    ev = {"body": base64.b64encode(BODY).decode(), "isBase64Encoded": True}
    assert admit(ev, make_settings(), NOW) is Refusal.ADDRESS


@pytest.mark.parametrize(
    ("refusal", "status"),
    [(Refusal.ADDRESS, 403), (Refusal.TOKEN, 403), (Refusal.EMPTY_BODY, 400), (Refusal.TOO_LARGE, 413)],
)
def test_refusal_answers(refusal, status):
    response = refusal_response(refusal)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["message"]


def test_address_and_token_refusals_look_the_same():
    assert refusal_response(Refusal.ADDRESS) == refusal_response(Refusal.TOKEN)


def test_metric_names():
    assert Refusal.TOO_LARGE.metric_name == "RefusedTooLarge"
    assert Refusal.ADDRESS.metric_name == "RefusedAddress"


@pytest.mark.parametrize(
    "env",
    [
        {"ALLOWED_SOURCE_CIDRS": "not-a-cidr"},
        {"MAX_BODY_BYTES": "0"},
        {"MAX_BODY_BYTES": "ten"},
        {"POSTBACK_TOKEN_SECRET": ""},
        {"POSTBACK_TOKEN_SECRET": " "},
        {"POSTBACK_TOKEN_RECHECK_S": "-1"},
        {"POSTBACK_TOKEN_RECHECK_S": "600", "POSTBACK_TOKEN_MAX_AGE_S": "300"},
    ],
)
def test_bad_settings_fail_at_cold_start(env):
    with pytest.raises(ValueError):  # noqa: PT011 - ipaddress, int and float all raise ValueError subclasses
        make_settings(**env)


def test_no_token_secret_fails_at_cold_start():
    with pytest.raises(ValueError, match="POSTBACK_TOKEN_SECRET"):
        IngestSettings.from_env({"ALLOWED_SOURCE_CIDRS": "127.0.0.1/32"})


def test_the_settings_name_the_secret_and_never_hold_a_token():
    settings_ = make_settings()
    assert settings_.token_secret == SECRET_ARN
    assert (settings_.token_max_age_s, settings_.token_recheck_s) == (300.0, 10.0)
    assert not hasattr(settings_, "token")


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=2048))
def test_any_admitted_body_round_trips_exactly(body):
    result = admit(event(body), make_settings(), NOW)
    if len(body) > 1024:
        assert result is Refusal.TOO_LARGE
    else:
        assert result.body == body
        assert result.sha256 == hashlib.sha256(body).hexdigest()


def test_each_refusal_is_its_own_member_with_its_own_metric():
    assert len(Refusal) == 6
    assert Refusal.TOKEN is not Refusal.ADDRESS
    assert (Refusal.TOKEN.status, Refusal.TOKEN.message) == (Refusal.ADDRESS.status, Refusal.ADDRESS.message)
    assert {r.metric_name for r in Refusal} == {
        "RefusedAddress",
        "RefusedToken",
        "RefusedTokenUnavailable",
        "RefusedEmptyBody",
        "RefusedBadEncoding",
        "RefusedTooLarge",
    }
