"""The provider's API as the simulator reads and answers it (docs/provider-protocol.md §1, §2, §2.5, §5).

Pure: bytes in, values or bytes out. State the checks need (templates, the account's senders) comes in as
arguments. A request that fails a check raises `ApiError` with the provider's code; the caller turns it into
a `Failure` document with `failure_response`.

Order of checks, where the provider documents none: document (E100/E108), key (E102/E104), action
(E101/E107), then the action's own rules, addressing first, template state last (so E626 means "everything
else is right, just wait").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs
from xml.etree.ElementTree import Element, ParseError  # nosec B405  # types only; defusedxml parses
from xml.sax.saxutils import escape  # nosec B406  # escapes text into XML; parses nothing

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from mmsbridge.numbers import MAX_DIGITS, MIN_DIGITS, is_shortcode
from mmsbridge.provider_api import REDACTED, normalise_name
from mmsbridge.send_request import SLIDE_TEXT_MAX, SLIDES_MAX, SMS_TEXT_MAX, SUBJECT_MAX, Action

__all__ = [
    "MAX_REQUEST_BYTES",
    "SEND_ACTIONS",
    "Accepted",
    "ApiError",
    "Request",
    "TemplateState",
    "action_of",
    "canonical_action",
    "check_credentials",
    "echoed_to",
    "failure_response",
    "parse_document",
    "read_request",
    "success_response",
    "validate",
]

SEND_ACTIONS: Final = frozenset({Action.SEND_SMS, Action.SEND_MMS, Action.SEND_SAVED_MMS})
MAX_REQUEST_BYTES: Final = 1024 * 1024
QUEUED: Final = "MMS request accepted and queued for delivery"

ERROR_INFO: Final = {
    "E100": "Invalid request.",
    "E101": "Action is missing.",
    "E102": "API key is missing.",
    "E104": "User Authentication Failed.",
    "E107": "Action not permitted.",
    "E108": "XML parsing error.",
    "E110": "Invalid receiver number.",
    "E111": "Invalid sender number.",
    "E112": "Your IP address is not allowed.",
    "E113": "Set throughput exceeded for this API action. API call rejected.",
    "E114": "Receiver number is blacklisted.",
    "E201": "Receiver number is required.",
    "E223": "Only one object is allowed per slide.",
    "E224": "An object cannot be combined with image, audio or video.",
    "E225": "Too many slides.",
    "E226": "Audio and video cannot be in the same slide.",
    "E227": "Video and image cannot be in the same slide.",
    "E228": "Slide text is too long.",
    "E229": "Content not allowed in slide.",
    "E230": "Invalid slide duration.",
    "E241": "Content does not exist.",
    "E311": "Name is required.",
    "E312": "At least one slide is required.",
    "E313": "Slide is empty.",
    "E314": "Subject is required.",
    "E503": "Internal error. Please try again later.",
    "E620": "MMSID is required.",
    "E621": "Receiver number is required.",
    "E622": "Fallback SMS text is required.",
    "E625": "Invalid MMSID.",
    "E626": " Content unavailable. Encoding in progress, try again later.",
    "E712": "SMS text is required.",
    "E714": "Missing or invalid campaign id.",
}
# Failures that come before the request's fields are trusted do not echo TO (like the E104 sample).
_NO_ECHO: Final = frozenset({"E100", "E101", "E102", "E104", "E107", "E108", "E112"})

_DOCTYPE: Final = re.compile(rb"<!\s*doctype", re.IGNORECASE)
_FORM: Final = "application/x-www-form-urlencoded"
_INTERNATIONAL: Final = re.compile(rf"[1-9][0-9]{{{MIN_DIGITS - 1},{MAX_DIGITS - 1}}}")
_DIGITS: Final = re.compile(r"[0-9]+")
_ABSOLUTE_URL: Final = re.compile(r"https?://[^\s/]+/\S*", re.IGNORECASE)
_SAFE_NAME: Final = re.compile(r"[A-Z0-9]{1,32}")
_ALIASES: Final = {"MESSAGETEXT": "TEXT", "MESSAGESUBJECT": "SUBJECT"}
_CONTAINERS: Final = frozenset({"SLIDE", "CUSTOMTEXT", "DATA"})
_REPEATABLE: Final = frozenset({"SLIDE", "CUSTOMTEXT"})
_MEDIA: Final = ("IMAGE", "AUDIO", "VIDEO")
_OBJECTS: Final = ("VCARD", "ICAL", "PDF", "PASSBOOK")
# Left out of the duplicate key: they do not change what the recipient gets.
_NOT_CONTENT: Final = frozenset({"APIKEY", "TO", "NAME", "CAMPAIGNREF", "OPERATORID"})
_JSON_DEPTH: Final = 8


class ApiError(Exception):
    """A request the provider refuses, with its `RESPONSE/ERRORCODE` and `ERRORINFO`."""

    def __init__(self, code: str, info: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.info = info if info is not None else ERROR_INFO.get(code, "Request failed.")


class TemplateState:
    ENCODING = "ENCODING"
    READY = "READY"
    BROKEN = "BROKEN"


# ------------------------------------------------------------------------------------------ request


def _name(element: Element) -> str:
    name = normalise_name(element.tag)
    return _ALIASES.get(name, name)


def _text(element: Element) -> str:
    return (element.text or "").strip()


def _as_json(element: Element, depth: int = 0) -> object:
    """An element as JSON for the audit log: text for a leaf, name -> value (lists for repeats) otherwise."""
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return _text(element)
    if depth >= _JSON_DEPTH:
        return "..."
    result: dict[str, object] = {}
    for child in children:
        name, value = _name(child), _as_json(child, depth + 1)
        if name not in result:
            result[name] = value
        elif isinstance(result[name], list):
            result[name].append(value)  # type: ignore[union-attr]
        else:
            result[name] = [result[name], value]
    return result


@dataclass(frozen=True)
class Request:
    """A parsed `REQUEST`: its direct children by normalised name, in document order."""

    children: dict[str, list[Element]]

    def value(self, name: str) -> str | None:
        """The trimmed text of element `name`; None when it is absent or empty."""
        elements = self.children.get(name)
        return (_text(elements[0]) or None) if elements else None

    def all(self, name: str) -> list[Element]:
        return self.children.get(name, [])

    def fields(self) -> dict[str, object]:
        """Every child as JSON, the API key replaced by `[REDACTED]` (present or not, it is a secret)."""
        result: dict[str, object] = {}
        for name, elements in self.children.items():
            values = [_as_json(element) for element in elements]
            result[name] = values[0] if len(values) == 1 else values
        if "APIKEY" in result:
            result["APIKEY"] = REDACTED
        return result

    def content_key(self, action: Action) -> str:
        """A digest of what the recipient would get (everything but key, TO and bookkeeping fields)."""
        content = {name: value for name, value in self.fields().items() if name not in _NOT_CONTENT}
        content["ACTION"] = action.value  # any casing names the same action
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _xml_from_body(body: bytes, content_type: str) -> bytes:
    """The XML of a POST body: the raw body, or the `xml` (or `XML`) field of a form-encoded body."""
    is_form = content_type.split(";")[0].strip().lower() == _FORM or body[:4] in (b"xml=", b"XML=")
    if not is_form:
        return body
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise ApiError("E100") from None
    for name in ("xml", "XML"):
        if form.get(name):
            return form[name][0].encode("utf-8")
    raise ApiError("E100", "Request has no xml field.")


def parse_document(document: bytes) -> Element:
    """The root element of an XML document. DOCTYPEs, entities and malformed XML are E108."""
    if not document.strip():
        raise ApiError("E100", "Empty request.")
    if _DOCTYPE.search(document):
        raise ApiError("E108")
    try:
        return fromstring(document, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, LookupError, UnicodeError):
        raise ApiError("E108") from None


def read_request(body: bytes, content_type: str) -> Request:
    """Parse a POST body into a `Request`. Raises ApiError E100 (not a REQUEST) or E108 (not XML)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise ApiError("E100", "Request too large.")
    root = parse_document(_xml_from_body(body, content_type))
    if not isinstance(root.tag, str) or normalise_name(root.tag) != "REQUEST":
        raise ApiError("E100")
    children: dict[str, list[Element]] = {}
    for child in root:
        if isinstance(child.tag, str):
            children.setdefault(_name(child), []).append(child)
    if any(len(elements) > 1 for name, elements in children.items() if name not in _REPEATABLE):
        raise ApiError("E100", "An element appears more than once.")
    return Request(children)


def check_credentials(request: Request, api_key: str) -> None:
    given = request.value("APIKEY")
    if given is None:
        raise ApiError("E102")
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        raise ApiError("E104")


_ACTIONS: Final = {action.value.lower(): action for action in Action}


def canonical_action(raw: str | None) -> Action | None:
    """The action a (case-insensitive) ACTION value names, or None."""
    return _ACTIONS.get(raw.lower()) if raw else None


def action_of(request: Request) -> Action:
    raw = request.value("ACTION")
    if raw is None:
        raise ApiError("E101")
    action = canonical_action(raw)
    if action is None:
        raise ApiError("E107")
    return action


# --------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Accepted:
    """A request that passed every check: what the simulator needs to answer and to send postbacks."""

    action: Action
    to: str | None = None
    from_: str | None = None
    mms_id: str | None = None  # sendSavedMMS: the template sent
    operator_id: str | None = None
    audio_url: str | None = None  # saveMMS: first audio/video, named by E002/E003
    video_url: str | None = None


def _recipient(request: Request, missing_code: str) -> str:
    to = request.value("TO")
    if to is None:
        raise ApiError(missing_code)
    if not _INTERNATIONAL.fullmatch(to):
        raise ApiError("E110")
    return to


def _sender(request: Request, senders: frozenset[str] | None) -> str:
    sender = request.value("FROM")
    if sender is None or not (is_shortcode(sender) or _INTERNATIONAL.fullmatch(sender)):
        raise ApiError("E111")
    if senders is not None and sender not in senders:
        raise ApiError("E111", "Sender is not enabled for this account.")
    return sender


def _campaign(request: Request, *, enforced: bool) -> None:
    if enforced and not _DIGITS.fullmatch(request.value("CAMPAIGNREF") or ""):
        raise ApiError("E714")


def _media_url(element: Element, slide_number: int) -> str:
    urls = [child for child in element if isinstance(child.tag, str) and _name(child) == "URL"]
    url = _text(urls[0]) if len(urls) == 1 else ""
    if not _ABSOLUTE_URL.fullmatch(url):
        # E351-E358: "could not fetch the media in slide X", one code per slide.
        raise ApiError(f"E35{slide_number}", f"Could not fetch the media in slide {slide_number}.")
    return url


def _check_composition(kinds: Counter[str], number: int) -> None:
    """docs/provider-protocol.md §5.4: one object alone (with text), no audio+video, video only with text, no
    repeats."""
    objects = sum(kinds[name] for name in _OBJECTS)
    media = sum(kinds[name] for name in _MEDIA)
    if objects > 1:
        raise ApiError("E223", f"Slide {number}: only one object is allowed.")
    if objects and media:
        raise ApiError("E224", f"Slide {number}: an object cannot be combined with media.")
    if kinds["AUDIO"] and kinds["VIDEO"]:
        raise ApiError("E226", f"Slide {number}: audio and video cannot be combined.")
    if kinds["VIDEO"] and kinds["IMAGE"]:
        raise ApiError("E227", f"Slide {number}: video and image cannot be combined.")
    if any(count > 1 for count in kinds.values()):
        raise ApiError("E229", f"Slide {number}: two items of the same type.")
    if not kinds:
        raise ApiError("E313", f"Slide {number} is empty.")


def _slide(slide: Element, number: int) -> dict[str, str]:
    """Check one SLIDE; returns its media URLs by kind."""
    kinds: Counter[str] = Counter()
    urls: dict[str, str] = {}
    for child in slide:
        if not isinstance(child.tag, str):
            continue
        name = _name(child)
        if name in _MEDIA or name in _OBJECTS:
            urls.setdefault(name, _media_url(child, number))
            kinds[name] += 1
        elif name == "TEXT":
            if len(_text(child)) > SLIDE_TEXT_MAX:
                raise ApiError("E228", f"Slide {number}: text longer than {SLIDE_TEXT_MAX} characters.")
            kinds[name] += 1
        elif name == "DURATION":
            if not _DIGITS.fullmatch(_text(child)) or int(_text(child)) == 0:
                raise ApiError("E230", f"Slide {number}: duration must be a positive number of seconds.")
        elif name == "PERSONALIZEDIMAGE":
            kinds["IMAGE"] += 1
        else:
            shown = name if _SAFE_NAME.fullmatch(name) else "element"
            raise ApiError("E229", f"Slide {number}: {shown} is not allowed.")
    _check_composition(kinds, number)
    return urls


def _mms_content(request: Request, *, no_subject_code: str) -> dict[str, str]:
    """The content rules saveMMS and sendMMS share. Returns the first audio and video URLs."""
    if request.value("NAME") is None:
        raise ApiError("E311")
    slides = request.all("SLIDE")
    if not slides:
        raise ApiError("E312")
    if len(slides) > SLIDES_MAX:
        raise ApiError("E225")
    found: dict[str, str] = {}
    for number, slide in enumerate(slides, start=1):
        for kind, url in _slide(slide, number).items():
            found.setdefault(kind, url)
    subject = request.value("SUBJECT")
    if subject is not None and len(subject) > SUBJECT_MAX:
        raise ApiError("E314", f"Subject longer than {SUBJECT_MAX} characters.")
    if subject is None and request.value("FALLBACKSMSTEXT") is None:
        raise ApiError(no_subject_code)
    return found


def _custom_fields(request: Request) -> None:
    subject = request.value("CUSTOMSUBJECT")
    if subject is not None and len(subject) > SUBJECT_MAX:
        raise ApiError("E314", f"Custom subject longer than {SUBJECT_MAX} characters.")
    for custom in request.all("CUSTOMTEXT"):
        values = [_text(child) for child in custom if isinstance(child.tag, str) and _name(child) == "VALUE"]
        if any(len(value) > SLIDE_TEXT_MAX for value in values):
            raise ApiError("E228", f"Custom text longer than {SLIDE_TEXT_MAX} characters.")


def _check_template(mms_id: str, template_state: Callable[[str], str | None]) -> None:
    if not _DIGITS.fullmatch(mms_id):
        raise ApiError("E625")
    state = template_state(mms_id)
    if state is None:
        raise ApiError("E241")
    if state == TemplateState.BROKEN:
        raise ApiError("E625", "Invalid MMSID: content is corrupted.")
    if state == TemplateState.ENCODING:
        raise ApiError("E626")


def validate(
    request: Request,
    action: Action,
    *,
    template_state: Callable[[str], str | None],
    senders: frozenset[str] | None = None,
    campaign_check: bool = False,
) -> Accepted:
    """Apply `action`'s rules (docs/provider-protocol.md §2, §5). Raises ApiError with the first problem
    found."""
    operator_id = request.value("OPERATORID")
    if action is Action.SAVE_MMS:
        media = _mms_content(request, no_subject_code="E314")
        return Accepted(action, audio_url=media.get("AUDIO"), video_url=media.get("VIDEO"))
    if action is Action.SEND_SMS:
        to, sender = _recipient(request, "E201"), _sender(request, senders)
        _campaign(request, enforced=campaign_check)
        text = request.value("TEXT")
        if text is None:
            raise ApiError("E712")
        if len(text) > SMS_TEXT_MAX:
            raise ApiError("E712", f"SMS text longer than {SMS_TEXT_MAX} characters.")
        return Accepted(action, to=to, from_=sender, operator_id=operator_id)
    to, sender = _recipient(request, "E621"), _sender(request, senders)
    _campaign(request, enforced=campaign_check)
    if action is Action.SEND_MMS:
        _mms_content(request, no_subject_code="E622")
        return Accepted(action, to=to, from_=sender, operator_id=operator_id)
    mms_id = request.value("MMSID")
    if mms_id is None:
        raise ApiError("E620")
    if request.value("FALLBACKSMSTEXT") is None:
        raise ApiError("E622")
    _custom_fields(request)
    _check_template(mms_id, template_state)
    return Accepted(action, to=to, from_=sender, mms_id=mms_id, operator_id=operator_id)


# ---------------------------------------------------------------------------------------- responses


def _document(fields: list[tuple[str, str]]) -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<RESPONSE>"]
    lines += [f"    <{name}>{escape(value)}</{name}>" for name, value in fields]
    lines += ["</RESPONSE>", ""]
    return "\n".join(lines).encode("utf-8")


def success_response(
    action: Action,
    *,
    to: str | None = None,
    from_: str | None = None,
    mms_id: str | None = None,
    tracking_id: str | None = None,
) -> bytes:
    """The §2 success shape of `action`, elements in the order of the samples."""
    shapes: dict[Action, list[tuple[str, str | None]]] = {
        Action.SEND_SMS: [("TRACKINGID", tracking_id), ("TO", to)],
        Action.SAVE_MMS: [("MMSID", mms_id)],
        Action.SEND_MMS: [
            ("TO", to),
            ("MMSID", mms_id),
            ("TRACKINGID", tracking_id),
            ("STATUSDETAILS", QUEUED),
        ],
        Action.SEND_SAVED_MMS: [
            ("MMSID", mms_id),
            ("TRACKINGID", tracking_id),
            ("TO", to),
            ("FROM", from_),
            ("STATUSDETAILS", QUEUED),
        ],
    }
    fields = [("STATUS", "Success")] + [(name, value or "") for name, value in shapes[action]]
    return _document(fields)


def echoed_to(request: Request | None, code: str) -> str | None:
    """The TO a failure echoes: the request's own value, unless the failure is about the request itself."""
    if request is None or code in _NO_ECHO:
        return None
    to = request.value("TO")
    return to if to is not None and len(to) <= 64 else None


def failure_response(error: ApiError, *, to: str | None = None) -> bytes:
    fields = [("STATUS", "Failure"), ("ERRORCODE", error.code), ("ERRORINFO", error.info)]
    if to is not None:
        fields.append(("TO", to))
    return _document(fields)
