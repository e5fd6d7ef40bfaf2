"""The provider's HTTP XML API (docs/provider-protocol.md §1, §2, §4): request XML per action, response
parsing, error classes.

Pure: bytes in, bytes or values out. The HTTP call itself belongs to an adapter, which turns connection
problems into `transport_failure_result(kind)` so that every outcome reaches the sender as a
`ProviderResult`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from xml.etree.ElementTree import Element, ParseError  # nosec B405  # types only; defusedxml parses

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from mmsbridge.sending.request import (
    CustomText,
    SaveMMS,
    SendMMS,
    SendRequest,
    SendSavedMMS,
    SendSMS,
    Slide,
    has_only_xml_chars,
)

__all__ = [
    "MAX_RESPONSE_BYTES",
    "REDACTED",
    "ErrorClass",
    "ProviderResult",
    "TransportFailure",
    "TransportOutcome",
    "build_request_xml",
    "classify_error_code",
    "classify_transport",
    "normalise_name",
    "parse_response",
    "redact",
    "transport_failure_result",
]

XML_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8"?>'
REDACTED: Final = "[REDACTED]"
# Genuine responses are a few hundred bytes. Anything this large is not one, and is not parsed.
MAX_RESPONSE_BYTES: Final = 64 * 1024


class ErrorClass(StrEnum):
    AUTH_CONFIG = "AUTH_CONFIG"
    THROTTLE = "THROTTLE"
    TRANSIENT = "TRANSIENT"
    PERMANENT = "PERMANENT"
    UNKNOWN = "UNKNOWN"


# ------------------------------------------------------------------------------------------- builder

_Node = tuple[str, "str | list[_Node]"]
_TAG: Final = re.compile(r"[A-Z_][A-Z0-9_]*")
_SLIDE_ELEMENTS: Final = (
    ("image_url", "IMAGE"),
    ("audio_url", "AUDIO"),
    ("video_url", "VIDEO"),
    ("vcard_url", "VCARD"),
    ("ical_url", "ICAL"),
    ("pdf_url", "PDF"),
    ("passbook_url", "PASSBOOK"),
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _add(children: list[_Node], tag: str, value: str | int | None) -> None:
    """Append a text element, leaving it out when it has no value (docs/provider-protocol.md §1)."""
    if value is None or value == "":
        return
    children.append((tag, str(value)))


def _add_required(children: list[_Node], tag: str, value: str | None) -> None:
    """Append an element the action must always carry; a request object built without validation that
    lacks it is refused here rather than sent to fail at the provider (E622 for FALLBACKSMSTEXT)."""
    if value is None or value == "":
        raise ValueError(f"{tag} is required for this action (validate the request first)")
    children.append((tag, value))


def _add_flag(children: list[_Node], tag: str, value: bool) -> None:
    if value:
        children.append((tag, "yes"))


def _addressing(request: SendRequest) -> list[_Node]:
    children: list[_Node] = []
    _add(children, "TO", request.to)
    _add(children, "FROM", request.from_)
    return children


def _routing(children: list[_Node], request: SendRequest) -> None:
    _add(children, "FROM_MASK", request.from_mask)
    _add(children, "OPERATORID", request.operator_id)
    _add(children, "CAMPAIGNREF", request.campaign_ref)


def _slide(slide: Slide) -> _Node:
    children: list[_Node] = []
    for attribute, tag in _SLIDE_ELEMENTS:
        url = getattr(slide, attribute)
        if url:
            children.append((tag, [("URL", url)]))
    _add(children, "TEXT", slide.text)
    _add(children, "DURATION", slide.duration)
    return ("SLIDE", children)


def _mms_content(children: list[_Node], content: SendMMS | SaveMMS) -> None:
    _add(children, "NAME", content.name)
    _add(children, "SUBJECT", content.subject)
    if isinstance(content, SendMMS):  # mandatory for sendMMS (§2.4), optional in a saveMMS template (§2.2)
        _add_required(children, "FALLBACKSMSTEXT", content.fallback_sms_text)
    else:
        _add(children, "FALLBACKSMSTEXT", content.fallback_sms_text)
    if isinstance(content, SaveMMS):  # §2.4 lists no DISABLEFALLBACKSMS for sendMMS
        _add_flag(children, "DISABLEFALLBACKSMS", content.disable_fallback_sms)
    _add_flag(children, "DISABLEFALLBACKSMSLINK", content.disable_fallback_sms_link)
    children.extend(_slide(slide) for slide in content.slides)


def _action_children(request: SendSMS | SendMMS | SendSavedMMS | SaveMMS) -> list[_Node]:
    """The action's elements in the order of its docs/provider-protocol.md §2 table (order is not significant
    to the API)."""
    match request:
        case SendSMS():
            children = _addressing(request)
            _add(children, "TEXT", request.text)
            _routing(children, request)
        case SendSavedMMS():
            children = [("MMSID", request.mms_id), *_addressing(request)]
            _routing(children, request)
            _add_required(children, "FALLBACKSMSTEXT", request.fallback_sms_text)  # §2.3: always send it
            _add_flag(children, "DISABLEFALLBACKSMS", request.disable_fallback_sms)
            _add_flag(children, "DISABLEFALLBACKSMSLINK", request.disable_fallback_sms_link)
            _add(children, "CUSTOMSUBJECT", request.custom_subject)
            custom = request.custom_text
            if custom is not None:  # at most one: the v1 schema declares `CUSTOMTEXT {…}?` (§2.3)
                if not isinstance(custom, CustomText):
                    raise ValueError("custom_text must be one CustomText (validate the request first)")
                children.append(("CUSTOMTEXT", [("VALUE", custom.text), ("SLIDE", str(custom.slide))]))
            data: list[_Node] = []
            for name, value in request.data:
                if not _TAG.fullmatch(name):
                    raise ValueError("data names must be upper-case XML names (validate the request first)")
                _add(data, name, value)
            if data:
                children.append(("DATA", data))
        case SendMMS():
            children = _addressing(request)
            _routing(children, request)
            _mms_content(children, request)
        case SaveMMS():
            children = []
            _mms_content(children, request)
        case _:
            raise TypeError(f"cannot build a provider request from {type(request).__name__}")
    return children


def _emit(parts: list[str], node: _Node) -> None:
    tag, content = node
    if isinstance(content, str):
        if not has_only_xml_chars(content):
            raise ValueError(f"{tag} contains characters XML cannot carry")
        parts.append(f"<{tag}>{_escape(content)}</{tag}>")
        return
    parts.append(f"<{tag}>")
    for child in content:
        _emit(parts, child)
    parts.append(f"</{tag}>")


def build_request_xml(
    request: SendSMS | SendMMS | SendSavedMMS | SaveMMS, api_key: str, *, service_id: str | None = None
) -> bytes:
    """The UTF-8 XML body for one API call: a `REQUEST` root with ACTION, API_KEY, SERVICEID when
    `service_id` is set, then the action's elements.

    SERVICEID is the account setting some accounts need on every call (E627 without it,
    docs/provider-protocol.md §2, §3.4); None or "" leaves it out. Optional elements without a value are left
    out; boolean flags are sent as `yes` only when true. Raises ValueError for an unusable api_key or
    service_id, a missing mandatory element, or text XML cannot carry; messages never contain the key.
    """
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("api_key must be a non-empty string")
    if api_key != api_key.strip() or not has_only_xml_chars(api_key):
        raise ValueError("api_key has surrounding whitespace or characters XML cannot carry")
    if service_id is not None and not isinstance(service_id, str):
        raise ValueError("service_id must be a string")
    if service_id and (service_id != service_id.strip() or not has_only_xml_chars(service_id)):
        raise ValueError("service_id has surrounding whitespace or characters XML cannot carry")
    children = _action_children(request)  # first: it rejects objects that are not requests
    nodes: list[_Node] = [("ACTION", request.action.value), ("API_KEY", api_key)]
    _add(nodes, "SERVICEID", service_id)
    nodes.extend(children)
    parts = [XML_DECLARATION, "\n<REQUEST>"]
    for node in nodes:
        _emit(parts, node)
    parts.append("</REQUEST>\n")
    return "".join(parts).encode("utf-8")


# Any API_KEY element, in either dialect and any casing, with or without attributes; an unterminated one is
# redacted to the end of the document.
_API_KEY_ELEMENT: Final = re.compile(
    r"(<(?P<tag>api[-_]?key)(?:\s[^>]*)?>)(.*?)(</(?P=tag)\s*>|\Z)", re.IGNORECASE | re.DOTALL
)


def redact[T: (str, bytes)](xml: T, *, api_key: str | None = None) -> T:
    """`xml` with the content of every API_KEY element replaced by `[REDACTED]`, for logs and stored records.

    With `api_key`, every other occurrence of the key (raw or XML-escaped) is replaced as well.
    """
    text = xml.decode("utf-8", "surrogateescape") if isinstance(xml, bytes) else xml
    text = _API_KEY_ELEMENT.sub(lambda match: f"{match.group(1)}{REDACTED}{match.group(4)}", text)
    if api_key:
        for form in {api_key, _escape(api_key)}:
            text = text.replace(form, REDACTED)
    if isinstance(xml, bytes):
        return text.encode("utf-8", "surrogateescape")  # type: ignore[return-value]
    return text  # type: ignore[return-value]


# -------------------------------------------------------------------------------------- error classes

_CODE: Final = re.compile(r"E([0-9]{3})")

_EXACT: Final = {
    **dict.fromkeys(
        (
            "E100",
            "E101",
            "E102",
            "E103",
            "E104",
            "E105",
            "E107",
            "E108",
            "E109",
            "E112",
            "E713",
            "E627",
            "E619",
        ),
        ErrorClass.AUTH_CONFIG,
    ),
    **dict.fromkeys(("E113", "E106", "E120", "E510"), ErrorClass.THROTTLE),
    **dict.fromkeys(("E618", "E626", "E503"), ErrorClass.TRANSIENT),
    **dict.fromkeys(
        (
            "E110",
            "E111",
            "E114",
            "E115",
            "E201",
            "E621",
            "E241",
            "E625",
            "E620",
            "E622",
            "E623",
            "E624",
            "E628",
            "E629",
            "E650",
            "E651",
            "E712",
            "E714",
            "E715",
            "E341",
            "E343",
        ),
        ErrorClass.PERMANENT,
    ),
}
# Inclusive ranges of §4.1 (slide composition, content, size, fetch and type errors): all PERMANENT.
_PERMANENT_RANGES: Final = ((223, 230), (301, 304), (311, 314), (331, 338), (351, 358), (361, 363))


def classify_error_code(code: str | None) -> ErrorClass:
    """The class of an API `RESPONSE/ERRORCODE` (docs/provider-protocol.md §4.1). Unlisted or missing codes
    are UNKNOWN.

    Only for response codes: postback `CODE`s are a different namespace (§3.7).
    """
    if not isinstance(code, str):
        return ErrorClass.UNKNOWN
    normalised = code.strip().upper()
    if normalised in _EXACT:
        return _EXACT[normalised]
    match = _CODE.fullmatch(normalised)
    if match:
        number = int(match.group(1))
        if any(low <= number <= high for low, high in _PERMANENT_RANGES):
            return ErrorClass.PERMANENT
    return ErrorClass.UNKNOWN


class TransportFailure(StrEnum):
    """Ways a call can fail without a usable API response (docs/provider-protocol.md §4.3)."""

    CONNECT_ERROR = "connect_error"  # DNS failure, connection refused: the request never left
    CONNECT_TIMEOUT = "connect_timeout"  # no connection within the timeout: the request never left
    TLS_ERROR = "tls_error"  # handshake or certificate failure: the request never left
    READ_TIMEOUT = "read_timeout"  # sent, no answer in time
    CONNECTION_LOST = "connection_lost"  # connection dropped after the request was sent
    HTTP_5XX = "http_5xx"
    HTTP_429 = "http_429"  # Too Many Requests without an API error code: a proxy or gateway limiting calls
    HTTP_408 = "http_408"  # Request Timeout without an API error code: the request may have been read
    HTTP_4XX = "http_4xx"  # any other 4xx without an API error code in the body
    HTTP_REDIRECT = "http_redirect"  # 3xx: redirects are not followed for a POST; the URL is probably wrong
    HTTP_UNEXPECTED = "http_unexpected"  # 1xx or a status outside 100-599
    EMPTY_BODY = "empty_body"
    BODY_TOO_LARGE = "body_too_large"
    NOT_XML = "not_xml"
    FORBIDDEN_XML = "forbidden_xml"  # DOCTYPE, entity declarations, external references
    WRONG_ROOT = "wrong_root"


@dataclass(frozen=True, slots=True)
class TransportOutcome:
    error_class: ErrorClass
    outcome_unknown: bool  # the provider may have accepted the message: a retry may duplicate it


_NEVER_SENT: Final = frozenset(
    {TransportFailure.CONNECT_ERROR, TransportFailure.CONNECT_TIMEOUT, TransportFailure.TLS_ERROR}
)


def classify_transport(kind: TransportFailure | str) -> TransportOutcome:
    """The class of a transport-level failure (docs/provider-protocol.md §4.3).

    Failures before the request was sent are TRANSIENT and safe to retry. A 429 without an API error is
    THROTTLE (a proxy or load balancer in front of the API refused the call, so it was not accepted; its
    Retry-After is honoured by the caller). A 408 is TRANSIENT with `outcome_unknown`: the request may have
    been read. Any other 4xx without an API error is AUTH_CONFIG; a 3xx is AUTH_CONFIG too (wrong URL),
    flagged outcome-unknown since the server did answer. Everything else is TRANSIENT with
    `outcome_unknown`. An unrecognised kind is treated like the worst retryable case (TRANSIENT, outcome
    unknown) rather than raising inside error handling.
    """
    try:
        failure = TransportFailure(kind)
    except ValueError:
        return TransportOutcome(ErrorClass.TRANSIENT, outcome_unknown=True)
    if failure in _NEVER_SENT:
        return TransportOutcome(ErrorClass.TRANSIENT, outcome_unknown=False)
    if failure is TransportFailure.HTTP_429:
        return TransportOutcome(ErrorClass.THROTTLE, outcome_unknown=False)
    if failure is TransportFailure.HTTP_4XX:
        return TransportOutcome(ErrorClass.AUTH_CONFIG, outcome_unknown=False)
    if failure is TransportFailure.HTTP_REDIRECT:
        return TransportOutcome(ErrorClass.AUTH_CONFIG, outcome_unknown=True)
    return TransportOutcome(ErrorClass.TRANSIENT, outcome_unknown=True)


# ------------------------------------------------------------------------------------------- response


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderResult:
    """The outcome of one API call. `error_class` is None exactly when `ok`."""

    ok: bool
    error_class: ErrorClass | None = None
    error_code: str | None = None  # ERRORCODE, trimmed and upper-cased
    error_info: str | None = None  # ERRORINFO, or a description of the transport failure
    outcome_unknown: bool = False
    transport_error: TransportFailure | None = None
    tracking_id: str | None = None  # exactly as sent (after trimming surrounding XML whitespace)
    mms_id: str | None = None
    to: str | None = None
    from_: str | None = None
    status_details: str | None = None
    http_status: int | None = None


def transport_failure_result(
    kind: TransportFailure | str, *, http_status: int | None = None, detail: str | None = None
) -> ProviderResult:
    """A failed ProviderResult for a call that produced no usable API response."""
    outcome = classify_transport(kind)
    try:
        failure: TransportFailure | None = TransportFailure(kind)
    except ValueError:
        failure = None
    return ProviderResult(
        ok=False,
        error_class=outcome.error_class,
        error_info=detail if detail is not None else str(kind),
        outcome_unknown=outcome.outcome_unknown,
        transport_error=failure,
        http_status=http_status,
    )


def normalise_name(name: str) -> str:
    """docs/provider-protocol.md §3.4: upper-case and remove `-` and `_` (`tracking-id`, `TRACKINGID` ->
    `TRACKINGID`)."""
    return name.upper().replace("-", "").replace("_", "")


_XML_WHITESPACE: Final = " \t\r\n"
_DOCTYPE: Final = re.compile(rb"<!\s*doctype", re.IGNORECASE)


def _parse_envelope(body: bytes) -> dict[str, list[str]] | TransportFailure:
    """The RESPONSE root's direct children as normalised name -> trimmed values, or why there are none."""
    if len(body) > MAX_RESPONSE_BYTES:
        return TransportFailure.BODY_TOO_LARGE
    if not body.strip(b" \t\r\n"):
        return TransportFailure.EMPTY_BODY
    if _DOCTYPE.search(body):
        return TransportFailure.FORBIDDEN_XML
    try:
        root: Element = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        return TransportFailure.FORBIDDEN_XML
    except (ParseError, ValueError, LookupError, UnicodeError):
        return TransportFailure.NOT_XML
    if not isinstance(root.tag, str) or normalise_name(root.tag) != "RESPONSE":
        return TransportFailure.WRONG_ROOT
    fields: dict[str, list[str]] = {}
    for child in root:  # direct children only, by name, never by position
        if isinstance(child.tag, str):
            fields.setdefault(normalise_name(child.tag), []).append((child.text or "").strip(_XML_WHITESPACE))
    return fields


def _scrub(value: str | None, api_key: str | None) -> str | None:
    if value is None or not api_key:
        return value
    for form in {api_key, _escape(api_key)}:
        value = value.replace(form, REDACTED)
    return value


# 4xx statuses that mean something other than "wrong URL or blocked client" when no API error comes with them.
_CLIENT_ERRORS: Final = {429: TransportFailure.HTTP_429, 408: TransportFailure.HTTP_408}


def parse_response(body: bytes | None, *, http_status: int, api_key: str | None = None) -> ProviderResult:
    """Turn one HTTP answer into a ProviderResult (docs/provider-protocol.md §2.5, §4.3). Never raises for
    any body.

    - 5xx: TRANSIENT, outcome unknown. 3xx and 1xx: see `classify_transport`.
    - 4xx: classified by the body's ERRORCODE when it is an API response carrying one. Without one: 429 is
      THROTTLE, 408 TRANSIENT with outcome unknown, any other 4xx AUTH_CONFIG (§4.3).
    - 2xx: an empty, oversized, non-XML, DOCTYPE-carrying or non-`RESPONSE` body is TRANSIENT with outcome
      unknown. Otherwise success iff every STATUS is `Success` (any casing) and no ERRORCODE has a value.
      A failure without an ERRORCODE is UNKNOWN, and outcome-unknown if it nevertheless carries a
      TRACKINGID. Each value is the first non-empty occurrence of its element, trimmed of XML whitespace.
    With `api_key`, any echo of the key in a value other than TRACKINGID is replaced by `[REDACTED]`.
    """
    if isinstance(http_status, bool) or not isinstance(http_status, int):
        raise TypeError("http_status must be an int")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    elif isinstance(body, bytearray | memoryview):
        body = bytes(body)
    elif body is None:
        body = b""

    if 500 <= http_status <= 599:
        return transport_failure_result(
            TransportFailure.HTTP_5XX, http_status=http_status, detail=f"HTTP {http_status}"
        )
    if 300 <= http_status <= 399:
        return transport_failure_result(
            TransportFailure.HTTP_REDIRECT, http_status=http_status, detail=f"HTTP {http_status}"
        )
    if not 200 <= http_status <= 499:
        return transport_failure_result(
            TransportFailure.HTTP_UNEXPECTED, http_status=http_status, detail=f"HTTP {http_status}"
        )

    envelope = _parse_envelope(body)
    client_error = 400 <= http_status <= 499
    if client_error and (isinstance(envelope, TransportFailure) or not _first(envelope, "ERRORCODE")):
        kind = _CLIENT_ERRORS.get(http_status, TransportFailure.HTTP_4XX)
        return transport_failure_result(kind, http_status=http_status, detail=f"HTTP {http_status}")
    if isinstance(envelope, TransportFailure):
        detail = f"HTTP {http_status}: {envelope.value.replace('_', ' ')}"
        return transport_failure_result(envelope, http_status=http_status, detail=detail)

    error_code = _first(envelope, "ERRORCODE")
    if error_code is not None:
        error_code = error_code.upper()
    statuses = envelope.get("STATUS", [])
    succeeded = (
        not client_error
        and bool(statuses)
        and all(status.casefold() == "success" for status in statuses)
        and not any(envelope.get("ERRORCODE", []))
    )
    tracking_id = _first(envelope, "TRACKINGID")
    facts = {
        "tracking_id": tracking_id,  # never altered, not even to redact: it is the correlation key
        "mms_id": _scrub(_first(envelope, "MMSID"), api_key),
        "to": _scrub(_first(envelope, "TO"), api_key),
        "from_": _scrub(_first(envelope, "FROM"), api_key),
        "status_details": _scrub(_first(envelope, "STATUSDETAILS"), api_key),
        "http_status": http_status,
    }
    if succeeded:
        return ProviderResult(ok=True, **facts)
    return ProviderResult(
        ok=False,
        error_class=classify_error_code(error_code),
        error_code=error_code,
        error_info=_scrub(_first(envelope, "ERRORINFO"), api_key),
        outcome_unknown=error_code is None and tracking_id is not None,
        **facts,
    )


def _first(fields: dict[str, list[str]], name: str) -> str | None:
    """The first non-empty value of an element; None when absent or empty (an empty element is "no value")."""
    for value in fields.get(name, []):
        if value:
            return value
    return None
