"""The provider's API as the simulator reads and answers it (docs/provider-protocol.md §1, §2, §2.5, §5).

Pure: bytes in, values or bytes out. State the checks need (templates, the account's senders) comes in as
arguments. A request that fails a check raises `ApiError` with the provider's code; the caller turns it into
a `Failure` document with `failure_response`.

Order of checks, where the provider documents none: document (Content-Type, E100/E108), key (E102/E104),
action (E101/E107), element names (E100), then the action's own rules, addressing first, template state last
(so E626 means "everything else is right, just wait").

Element names are checked as strictly as the client is meant to write them (docs/provider-protocol.md §1,
§2): the v1 upper-case names of the action's table, spelled exactly. The key and the action are still found
under any spelling, so a wrong key is E104 whatever its element is called.
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

from mmsbridge.core.phone_numbers import MAX_DIGITS, MIN_DIGITS, is_shortcode
from mmsbridge.sending.provider_xml import REDACTED, normalise_name
from mmsbridge.sending.request import SLIDE_TEXT_MAX, SLIDES_MAX, SMS_TEXT_MAX, SUBJECT_MAX, Action

__all__ = [
    "ELEMENTS",
    "MAX_REQUEST_BYTES",
    "SEND_ACTIONS",
    "Accepted",
    "ApiError",
    "Request",
    "TemplateState",
    "action_of",
    "canonical_action",
    "check_credentials",
    "check_elements",
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
    "E106": "Minimum interval between API calls not respected. API call rejected.",
    "E107": "Action not permitted.",
    "E108": "XML parsing error.",
    "E110": "Invalid receiver number.",
    "E111": "Invalid sender number.",
    "E112": "Your IP address is not allowed.",
    "E113": "Set throughput exceeded for this API action. API call rejected.",
    "E114": "Receiver number is blacklisted.",
    "E120": "API request quota reached. API call rejected.",
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
_XML: Final = "text/xml"
_UTF8: Final = frozenset({"utf-8", "utf8"})
_INTERNATIONAL: Final = re.compile(rf"[1-9][0-9]{{{MIN_DIGITS - 1},{MAX_DIGITS - 1}}}")
_DIGITS: Final = re.compile(r"[0-9]+")
_ABSOLUTE_URL: Final = re.compile(r"https?://[^\s/]+/\S*", re.IGNORECASE)
_SAFE_NAME: Final = re.compile(r"[A-Z0-9]{1,32}")
_SHOWN_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
# The protocol's own limit (docs/provider-protocol.md §2.1), kept apart from the builder's constant so that a
# change there is caught here.
CAMPAIGN_REF_MAX: Final = 64
# SLIDE is the only element a request may repeat: the v1 schema declares `CUSTOMTEXT {…}?` (at most one).
_REPEATABLE: Final = frozenset({"SLIDE"})
_MEDIA: Final = ("IMAGE", "AUDIO", "VIDEO")
_OBJECTS: Final = ("VCARD", "ICAL", "PDF", "PASSBOOK")

# The v1 request vocabulary, spelled as the client is meant to write it (docs/provider-protocol.md §2).
_EVERY_ACTION: Final = frozenset({"ACTION", "API_KEY", "SERVICEID"})  # SERVICEID: on every call when set
_ADDRESSING: Final = frozenset({"TO", "FROM", "FROM_MASK", "OPERATORID", "CAMPAIGNREF"})
_CONTENT: Final = frozenset({"NAME", "SUBJECT", "FALLBACKSMSTEXT", "DISABLEFALLBACKSMSLINK", "SLIDE"})
ELEMENTS: Final = {
    Action.SEND_SMS: _EVERY_ACTION | _ADDRESSING | {"TEXT"},
    Action.SAVE_MMS: _EVERY_ACTION | _CONTENT | {"DISABLEFALLBACKSMS"},
    Action.SEND_MMS: _EVERY_ACTION | _ADDRESSING | _CONTENT,  # §2.4 lists no DISABLEFALLBACKSMS
    Action.SEND_SAVED_MMS: _EVERY_ACTION
    | _ADDRESSING
    | {
        "MMSID",
        "FALLBACKSMSTEXT",
        "DISABLEFALLBACKSMS",
        "DISABLEFALLBACKSMSLINK",
        "CUSTOMSUBJECT",
        "CUSTOMTEXT",
        "DATA",
        "DDMTITLE",
        "DDMTEXT",
        "DDMTIMEOUT",
        "DDMFORCE",
        "FORCEPASSASLINK",
    },
}
_VOCABULARY: Final = frozenset().union(*ELEMENTS.values())
_CUSTOMTEXT_CHILDREN: Final = frozenset({"VALUE", "SLIDE"})
# The elements that hold elements, by path; every other element holds text only (DATA: free-form names).
_CHILDREN: Final = {
    "SLIDE": frozenset({*_MEDIA, *_OBJECTS, "TEXT", "DURATION", "PERSONALIZED-IMAGE"}),
    **{f"SLIDE/{name}": frozenset({"URL"}) for name in (*_MEDIA, *_OBJECTS)},
    "SLIDE/PERSONALIZED-IMAGE": frozenset({"TEMPLATE-ID"}),  # hyphenated even in v1 (§2.2)
    "CUSTOMTEXT": _CUSTOMTEXT_CHILDREN,
}
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
    return normalise_name(element.tag)


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
    """The XML of a POST body: a raw `text/xml` body (UTF-8, docs/provider-protocol.md §1), or the `xml` (or
    `XML`) field of the older form-encoded body. Any other Content-Type is E100: the request builder must
    label what it sends, and a body sent as JSON or without a type is not the documented call."""
    media_type, *parameters = content_type.split(";")
    media_type = media_type.strip().lower()
    if media_type == _XML:
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in _UTF8:
                raise ApiError("E100", "Content-Type must be text/xml; charset=utf-8.")
        return body
    if media_type != _FORM:
        raise ApiError("E100", "Content-Type must be text/xml; charset=utf-8.")
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
    if root.tag != "REQUEST":  # not `request`: the v1 name, exactly
        raise ApiError("E100")
    children: dict[str, list[Element]] = {}
    for child in root:
        if isinstance(child.tag, str):
            children.setdefault(_name(child), []).append(child)
    for name, elements in children.items():
        if len(elements) > 1 and name not in _REPEATABLE:
            if name == "CUSTOMTEXT":
                raise ApiError("E100", "CUSTOMTEXT appears more than once: a request overrides one slide.")
            shown = elements[0].tag if _SHOWN_NAME.fullmatch(elements[0].tag) else "An element"
            raise ApiError("E100", f"{shown} appears more than once.")
    return Request(children)


def _shown(tag: str) -> str:
    """An element name fit to quote in ERRORINFO, or a neutral word."""
    return tag if _SHOWN_NAME.fullmatch(tag) else "element"


def _spelling(tag: str, expected: frozenset[str]) -> str | None:
    """The v1 name `tag` misspells (`api-key`, `Api_Key`, `APIKEY` for API_KEY), if any."""
    for name in expected:
        if normalise_name(name) == normalise_name(tag):
            return name
    return None


def _check_name(element: Element, expected: frozenset[str], where: str, unknown_code: str) -> None:
    """E100 for a misspelt v1 name; `unknown_code` for a name the position does not take."""
    tag = element.tag
    if tag in expected:
        return
    v1_name = _spelling(tag, expected)
    if v1_name is not None:
        raise ApiError("E100", f"{_shown(tag)}: element names are the v1 ones, here {v1_name}.")
    if tag != tag.upper():  # lower-case (hyphenated dialect) names are refused anywhere
        raise ApiError("E100", f"{_shown(tag)}: element names are the v1 upper-case ones.")
    raise ApiError(unknown_code, f"{_shown(tag)} is not allowed in {where}.")


def _check_tree(element: Element, path: str) -> None:
    """The children of the element at `path`: their names, and no elements inside a text element."""
    children = [child for child in element if isinstance(child.tag, str)]
    if path == "DATA":  # merge values under names of the client's choosing, each a text element
        if any(len(child) for child in children):
            raise ApiError("E100", "DATA values are text elements.")
        return
    allowed = _CHILDREN.get(path)
    if allowed is None:
        if children:
            raise ApiError("E100", f"{_shown(element.tag)} holds text, not elements.")
        return
    # Content a slide does not take is the provider's E229; anywhere else the request is malformed.
    unknown_code = "E229" if path.startswith("SLIDE") else "E100"
    for child in children:
        _check_name(child, allowed, path, unknown_code)
        _check_tree(child, f"{path}/{child.tag}")
    if path == "CUSTOMTEXT" and any(sum(child.tag == name for child in children) > 1 for name in allowed):
        raise ApiError("E100", "CUSTOMTEXT takes one VALUE and one SLIDE.")


def check_elements(request: Request, action: Action) -> None:
    """Every element name is the v1 one the action's table lists (docs/provider-protocol.md §2), spelled
    exactly; text elements hold no elements. E100 otherwise (E229 for content a slide does not take)."""
    expected = ELEMENTS[action]
    for elements in request.children.values():
        for element in elements:
            _check_name(element, expected, action.value, "E100")
            _check_tree(element, element.tag)


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
    slides: int | None = None  # saveMMS: how many slides the template has (CUSTOMTEXT's SLIDE range)


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
    """CAMPAIGNREF is text (docs/provider-protocol.md §2.1): 1-64 printable characters without surrounding
    space, required only under "Enforce Campaign Check". Read unstripped: a trailing line break would make
    another campaign."""
    elements = request.all("CAMPAIGNREF")
    if not elements:
        if enforced:
            raise ApiError("E714")
        return
    raw = elements[0].text or ""
    if not 1 <= len(raw) <= CAMPAIGN_REF_MAX or not raw.isprintable() or raw != raw.strip():
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
            ids = [_text(item) for item in child if isinstance(item.tag, str)]
            if len(ids) != 1 or not ids[0]:  # without its TEMPLATE-ID there is no image to fetch
                raise ApiError(f"E35{number}", f"Could not fetch the media in slide {number}.")
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


def _custom_fields(request: Request, template_slides: int | None) -> None:
    """CUSTOMSUBJECT and CUSTOMTEXT (docs/provider-protocol.md §2.3). CUSTOMTEXT needs both VALUE and SLIDE;
    a SLIDE that is not a slide number (1-8) is E100, one past the end of a template whose slides are known
    E241: the content it would override does not exist."""
    subject = request.value("CUSTOMSUBJECT")
    if subject is not None and len(subject) > SUBJECT_MAX:
        raise ApiError("E314", f"Custom subject longer than {SUBJECT_MAX} characters.")
    for custom in request.all("CUSTOMTEXT"):
        parts = {child.tag: _text(child) for child in custom if isinstance(child.tag, str)}
        value, slide = parts.get("VALUE"), parts.get("SLIDE")
        if not value:
            raise ApiError("E100", "CUSTOMTEXT needs a VALUE.")
        if not slide:
            raise ApiError("E100", "CUSTOMTEXT needs a SLIDE.")
        if len(value) > SLIDE_TEXT_MAX:
            raise ApiError("E228", f"Custom text longer than {SLIDE_TEXT_MAX} characters.")
        if not _DIGITS.fullmatch(slide) or not 1 <= int(slide) <= SLIDES_MAX:
            raise ApiError("E100", f"CUSTOMTEXT SLIDE must be a slide number from 1 to {SLIDES_MAX}.")
        if template_slides is not None and int(slide) > template_slides:
            raise ApiError("E241", f"Content does not exist: the template has {template_slides} slide(s).")


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
    template_slides: Callable[[str], int | None] = lambda mms_id: None,
    senders: frozenset[str] | None = None,
    campaign_check: bool = False,
) -> Accepted:
    """Apply `action`'s rules (docs/provider-protocol.md §2, §5). Raises ApiError with the first problem
    found. `template_slides` gives a known template's slide count (None: unknown, 1-8 allowed)."""
    operator_id = request.value("OPERATORID")
    if action is Action.SAVE_MMS:
        media = _mms_content(request, no_subject_code="E314")
        slides = len(request.all("SLIDE"))
        return Accepted(action, audio_url=media.get("AUDIO"), video_url=media.get("VIDEO"), slides=slides)
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
        if request.value("FALLBACKSMSTEXT") is None:  # mandatory for sendMMS, subject or not (§2.4)
            raise ApiError("E622")
        return Accepted(action, to=to, from_=sender, operator_id=operator_id)
    mms_id = request.value("MMSID")
    if mms_id is None:
        raise ApiError("E620")
    if request.value("FALLBACKSMSTEXT") is None:
        raise ApiError("E622")
    _custom_fields(request, template_slides(mms_id) if _DIGITS.fullmatch(mms_id) else None)
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
