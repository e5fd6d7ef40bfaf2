"""The fuzz targets: each pure entry point that takes outside input, with the contract it must keep.

One function per target takes the fuzzer's input and raises `ContractBroken` (or lets an unexpected
exception escape) when the contract does not hold; returning means it held. The hypothesis properties in
tests/hostile/ and the atheris harnesses in fuzz/ call the same functions.

- postback: `parse_postback` on any bytes returns a `Postback` or raises `PostbackError` with one of its
  documented reasons, never `internal` (which means an unexpected exception inside the parser). A parsed
  postback also plans into table items (what the consumer writes) that DynamoDB's serializer accepts.
- send request: `validate_send_request` on any JSON value, and `parse_send_request_json` on any bytes,
  return a typed request or raise `InvalidSendRequest` listing (field, reason) pairs. A request it accepts
  builds into XML that parses back with one `REQUEST` root.
- provider response: `parse_response` on any bytes and any HTTP status returns a `ProviderResult`, never
  raises; `ok` holds exactly when there is no error class, only for a 2xx; the API key is in no value but
  TRACKINGID.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from defusedxml.ElementTree import fromstring

from mmsbridge.aws.state_table import to_dynamo
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import REASONS, Postback, PostbackError, parse_postback
from mmsbridge.sending.provider_xml import ProviderResult, build_request_xml, parse_response
from mmsbridge.sending.request import (
    InvalidSendRequest,
    SaveMMS,
    SendMMS,
    SendSavedMMS,
    SendSMS,
    parse_send_request_json,
    validate_save_mms,
    validate_send_request,
)

ROOT: Final = Path(__file__).resolve().parent.parent
# The provider fixtures in the repository, the folder tests/conftest.py's SAMPLES names.
SAMPLES: Final = ROOT / "tests" / "fixtures" / "provider"
SEND_REQUEST_EVENTS: Final = ROOT / "events" / "sender"

RECEIVED_AT: Final = datetime(2024, 3, 14, 15, 0, tzinfo=UTC)
API_KEY: Final = "fuzz-api-key-0123456789abcdef"  # the shape of a real key: URL-safe, 16+ characters


class ContractBroken(AssertionError):
    """A target returned or raised something its contract rules out."""


# ------------------------------------------------------------------------------------------- postback


def postback(data: bytes) -> Postback | None:
    """The postback parser and the consumer's write plan on one body."""
    try:
        parsed = parse_postback(data, received_at=RECEIVED_AT)
    except PostbackError as error:
        if error.reason not in REASONS or error.reason == "internal":
            raise ContractBroken(f"PostbackError with reason {error.reason!r}: {error}") from error
        return None
    if not isinstance(parsed, Postback) or not parsed.origin or not parsed.code:
        raise ContractBroken(f"parse_postback returned {parsed!r}")
    if len(parsed.semantic_key) != 64:
        raise ContractBroken("semantic key is not a SHA-256 digest")
    hash(parsed)
    parsed.inbound_stop  # noqa: B018 - a property the consumer reads: it must not raise
    plan = plan_batch(
        [Received("fuzz", parsed, "raw/fuzz.xml", "0" * 64, RECEIVED_AT)], [], retention_days=400
    )
    for item in plan.puts.values():
        to_dynamo(item)
    return parsed


# --------------------------------------------------------------------------------------- send request


def _check_request(request: object) -> None:
    if not isinstance(request, SendSMS | SendMMS | SendSavedMMS | SaveMMS):
        raise ContractBroken(f"the validator returned {type(request).__name__}")
    xml = build_request_xml(request, API_KEY)
    root = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    if root.tag != "REQUEST":
        raise ContractBroken(f"built request has root {root.tag!r}")


def _check_refusal(error: InvalidSendRequest) -> None:
    if not error.errors or not all(
        isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) and part for part in item)
        for item in error.errors
    ):
        raise ContractBroken(f"InvalidSendRequest without (field, reason) pairs: {error.errors!r}")


def send_request(payload: object) -> None:
    """`validate_send_request` and `validate_save_mms` on one JSON value."""
    for validate in (validate_send_request, validate_save_mms):
        try:
            request = validate(payload)
        except InvalidSendRequest as error:
            _check_refusal(error)
        else:
            _check_request(request)


def send_request_json(data: bytes) -> None:
    """`parse_send_request_json` on one queue message body."""
    try:
        request = parse_send_request_json(data)
    except InvalidSendRequest as error:
        _check_refusal(error)
    else:
        _check_request(request)


# ---------------------------------------------------------------------------------- provider response


def provider_response(data: bytes, http_status: int = 200, api_key: str | None = API_KEY) -> ProviderResult:
    """`parse_response` on one HTTP answer."""
    result = parse_response(data, http_status=http_status, api_key=api_key)
    if not isinstance(result, ProviderResult):
        raise ContractBroken(f"parse_response returned {type(result).__name__}")
    if result.ok != (result.error_class is None):
        raise ContractBroken(f"ok={result.ok} with error class {result.error_class}")
    if result.ok and not 200 <= http_status <= 299:
        raise ContractBroken(f"ok for HTTP {http_status}")
    if api_key:
        for name in ("error_info", "mms_id", "to", "from_", "status_details"):
            if api_key in (getattr(result, name) or ""):
                raise ContractBroken(f"the API key is in {name}")
    return result


# -------------------------------------------------------------------------------------- seed corpora


def postback_seeds() -> list[bytes]:
    return [path.read_bytes() for path in sorted((SAMPLES / "postbacks").rglob("*.xml"))]


def response_seeds() -> list[bytes]:
    return [path.read_bytes() for path in sorted((SAMPLES / "responses").glob("*.xml"))]


def send_request_seeds() -> list[bytes]:
    """The example requests of events/sender/, one JSON object each (send-batch.json is an SQS event)."""
    return [
        path.read_bytes()
        for path in sorted(SEND_REQUEST_EVENTS.glob("*.json"))
        if path.name != "send-batch.json"
    ]


# Fragments the mutators splice in: what hostile or broken XML is made of.
XML_TOKENS: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding="UTF-16"?>',
    b"<?xml version='1.1' encoding='latin-1' standalone='no'?>",
    b"\xef\xbb\xbf",
    b'<!DOCTYPE POSTBACK [<!ENTITY a "aaaa">]>',
    b'<!DOCTYPE POSTBACK SYSTEM "http://127.0.0.1:9/x.dtd">',
    b'<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>',
    b'<!ENTITY x SYSTEM "file:///etc/passwd">',
    b"&a;",
    b"&x;",
    b"&amp;",
    b"&#0;",
    b"&#x10FFFF;",
    b"&#xD800;",
    b"&#13;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?pi data?>",
    b"\x00",
    b"\xff",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"<POSTBACK>",
    b"</POSTBACK>",
    b"<postback>",
    b"<NOTIFICATION ID='1' CREATED='2011-05-09 16:40:02.518224-04'>",
    b"</NOTIFICATION>",
    b"<BODY>",
    b"</BODY>",
    b"<CONTENT><FILE>https://x/y.jpg</FILE></CONTENT>",
    b"<STATUS CODE='N101' TEXT='x'/>",
    b"<ORIGIN>MMS_MT</ORIGIN>",
    b"<ORIGIN>SMS_MO</ORIGIN>",
    b"<ORIGIN>GENERATE_PASS</ORIGIN>",
    b"<ORIGIN>EMAIL_SUB</ORIGIN>",
    b"<CODE>N101</CODE>",
    b"<CODE>E999</CODE>",
    b"<STATUSCODE>N801</STATUSCODE>",
    b"<TRACKINGID>T</TRACKINGID>",
    b"<tracking-id>t</tracking-id>",
    b"<MMSID>1</MMSID>",
    b"<TEXT>STOP</TEXT>",
    b"<TIMESTAMP>9999-12-31T23:59:59-12:00</TIMESTAMP>",
    b"<TIMESTAMP>0001-01-01 00:00:00+14</TIMESTAMP>",
    b"<RECEIVED>2024-02-30T00:00:00Z</RECEIVED>",
    b'<x:POSTBACK xmlns:x="urn:x">',
    b' xmlns="urn:x"',
    b' a="1" a="2"',
    b"<a>" * 40,
    b"</a>",
    b"<RESPONSE>",
    b"</RESPONSE>",
    b"<STATUS>Success</STATUS>",
    b"<STATUS>Failure</STATUS>",
    b"<ERRORCODE>E113</ERRORCODE>",
    b"<ERRORCODE>e104 </ERRORCODE>",
    b"<ERRORCODE></ERRORCODE>",
    b"<ERRORINFO>" + API_KEY.encode() + b"</ERRORINFO>",
    b"<TO>" + API_KEY.encode() + b"</TO>",
    b"<API_KEY>" + API_KEY.encode() + b"</API_KEY>",
)

JSON_TOKENS: Final = (
    b'"request_id"',
    b'"action"',
    b'"sendSMS"',
    b'"SENDMMS"',
    b'"sendsavedmms"',
    b'"saveMMS"',
    b'"to"',
    b'"from"',
    b'"+1 (312) 555-0147"',
    b'"\\u0661\\u0662\\u0663\\u0664\\u0665\\u0666\\u0667\\u0668"',
    b'"\\u00b2\\u00b3"',
    b'"\\ud800"',
    b'"\\u0000"',
    b'"text"',
    b'"slides"',
    b'"image_url"',
    b'"https://[::1]:99999/a.jpg"',
    b'"http://[bad/a.jpg"',
    b'"https://u:p@media.example.com/a.jpg?x=1#f"',
    b'"custom_text"',
    b'{"1": "x", "9": "y", "01": "z"}',
    b'"data"',
    b'{"xmlName": "v", "FIRSTNAME": "a", "firstname": "b"}',
    b'"duration"',
    b"1e308",
    b"-0",
    b"NaN",
    b"Infinity",
    b"true",
    b"null",
    b"[[[[[[[[[[[[[[[[[[[[",
    b"{",
    b"}",
    b",",
    b":",
    b"\xff",
    b"\xef\xbb\xbf",
)
