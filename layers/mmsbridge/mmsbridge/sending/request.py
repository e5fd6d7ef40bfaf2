"""The send-request contract: one JSON object on the send queue, validated into a typed request.

Field names are fixed (upstream producers rely on them). Common to every action:

| field | rule |
|---|---|
| `request_id` | required; 1-64 printable ASCII characters, no spaces (0x21-0x7E) |
| `action` | required; `sendSMS`, `sendMMS` or `sendSavedMMS` in any casing, normalised to that spelling |
| `to` | required string; an international number (`numbers.normalise_number`) |
| `from` | required string; a 5-6 digit shortcode or a longcode (`numbers.normalise_sender`) |
| `campaign_ref` | optional; 1-64 printable characters (below), or a non-negative integer kept as its digits |
| `operator_id` | optional string of 1-10 digits (leading zeros matter, so JSON numbers are refused) |
| `from_mask` | optional; 1-11 of `A-Z a-z 0-9 _ -`, not all digits (§5.4) |

`sendSMS`: `text` (required, 1-160 characters, counted as Unicode code points).

`campaign_ref`: the provider's examples use text (`Campaign123`), so any 1-64 characters (code points) that
`str.isprintable` accepts: letters, digits, punctuation and symbols of any script, and the plain space; no
control characters, tabs or line breaks, no invisible formatting characters (zero-width, bidi controls), no
other kinds of space, no private-use or unassigned code points, and no space at either end (the account's
campaign would not match, and the provider's answer, E714, would not say why). A JSON integer 0 to
10^64-1 is taken as its digit string (`42` is `"42"`); leading zeros survive only in a string.

`sendSavedMMS`: `mms_id` (required; digit string or non-negative integer, kept as a string);
`fallback_sms_text` (**required**: docs/provider-protocol.md §2.3 says always send it; 1-160 characters);
`custom_subject`
(optional, ≤ 80 printable ASCII); `custom_text` (optional object with **one** entry: slide number 1-8, as
`"1"` or `1`, to text of 1-5000 characters; the v1 schema takes at most one CUSTOMTEXT per request
(docs/provider-protocol.md §2.3), so a request that overrides more than one slide is refused rather than
sent with a guess); `data` (optional object: merge variable name to string value, see below);
`disable_fallback_sms`, `disable_fallback_sms_link` (optional booleans, default false).

`sendMMS`: `name` (required, 1-255 characters); `slides` (required, 1-8 slide objects); `subject`
(optional, ≤ 80 printable ASCII); `fallback_sms_text` (**required**, 1-160 characters: the provider's
sendMMS page makes FALLBACKSMSTEXT mandatory and E622 names it, docs/provider-protocol.md §2.4);
`disable_fallback_sms_link` (optional boolean). §2.4 lists no DISABLEFALLBACKSMS for sendMMS, so
`disable_fallback_sms` is refused there rather than silently dropped. (A saveMMS template still needs
`fallback_sms_text` only when it has no subject, §2.2.)

A slide has any of `image_url`, `audio_url`, `video_url`, the object URLs `vcard_url`, `ical_url`,
`pdf_url`, `passbook_url`, `text` (1-5000 characters) and `duration` (integer seconds 1-30; absent means
the provider's default). Composition (§5.4, codes E223-E230): at least one of media, object or text; no
audio with video; video only with text; at most one object, and an object only with text. Unknown keys in a
slide are refused (a misspelt `image` would otherwise turn into an empty or different slide).

Media URLs (§5.5): absolute `http`/`https` URLs of printable ASCII (at most 2048 characters) with a host and
a path to the file; no credentials, no fragment, and **no query string** (a newer provider revision strips
it, so a URL that depends on one would fetch the wrong thing or fail). If the last path segment has a file
extension it must be a supported type for the slot (image gif/jpg/jpeg/png; audio mp3/wav; video
3gp/mp4/mpeg/mpg/avi/wmv; vcard vcf/vcard; ical ics/ical/ifb/icalendar; pdf pdf; passbook pkpass).

`data` names must be 1-64 characters of `A-Z a-z 0-9 _`, not starting with a digit nor with `xml` in any
casing (a conservative subset of XML element names that also works as a merge tag). They are upper-cased,
the v1 dialect's convention (the sample sends `<FIRSTNAME>` for the tag `{$firstname|...}`); two names equal
after upper-casing are refused. Values are strings of at most 5000 characters; an empty value is kept here
and left out of the XML, so the merge tag's default applies.

General rules:
- `null` and `""` mean "absent" for optional fields; for required fields both are "is required".
- Booleans must be JSON `true`/`false`; numbers must be integers, never booleans.
- Every string must be representable in XML 1.0 (no control characters other than tab, CR and LF, no
  unpaired surrogates): the provider answers an unparsable request with E108, which pauses the sender.
- Unknown top-level fields are ignored and listed in `ignored_fields` (producers may add metadata).
  A field that belongs to another action (`text` on a sendMMS, say) is refused: dropping it would send
  something other than what the producer meant.
- Every problem is reported, not only the first: `InvalidSendRequest.errors` is a list of
  `(field, reason)`. Reasons never repeat the offending value (they end up in logs). `.request_id` is set
  when the request's own `request_id` is valid, else None.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final
from urllib.parse import urlsplit

from mmsbridge.core.phone_numbers import InvalidNumber, normalise_number, normalise_sender

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Action",
    "CustomText",
    "InvalidSendRequest",
    "SaveMMS",
    "SendMMS",
    "SendRequest",
    "SendSMS",
    "SendSavedMMS",
    "Slide",
    "has_only_xml_chars",
    "parse_send_request_json",
    "validate_save_mms",
    "validate_send_request",
]

REQUEST_ID_MAX = 64
CAMPAIGN_REF_MAX = 64
CUSTOM_TEXTS_MAX = 1  # CUSTOMTEXT elements per sendSavedMMS (the v1 schema's `CUSTOMTEXT {…}?`)
SMS_TEXT_MAX = 160
FALLBACK_SMS_TEXT_MAX = 160
SUBJECT_MAX = 80
NAME_MAX = 255
SLIDE_TEXT_MAX = 5000
DATA_VALUE_MAX = 5000
SLIDES_MAX = 8
DURATION_MIN = 1
DURATION_MAX = 30
FROM_MASK_MAX = 11
URL_MAX = 2048
MAX_MESSAGE_BYTES = 256 * 1024  # the SQS message size limit

ROOT = "$"


class Action(StrEnum):
    SEND_SMS = "sendSMS"
    SEND_MMS = "sendMMS"
    SEND_SAVED_MMS = "sendSavedMMS"
    SAVE_MMS = "saveMMS"


SEND_ACTIONS: Final = (Action.SEND_SMS, Action.SEND_MMS, Action.SEND_SAVED_MMS)
_ACTIONS_BY_FOLDED_NAME: Final = {action.value.lower(): action for action in Action}


class InvalidSendRequest(ValueError):
    """A send request that cannot be sent. `.errors` lists every problem as (field, reason)."""

    def __init__(
        self,
        errors: list[tuple[str, str]],
        *,
        request_id: str | None = None,
        valid: dict[str, str] | None = None,
    ) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        self.request_id = request_id
        # The addressing fields that passed (action, to, from; normalised), so a refusal still says what it
        # was for. Empty when validation did not get that far.
        self.valid: dict[str, str] = dict(valid or {})
        problems = "; ".join(f"{field}: {reason}" for field, reason in self.errors)
        label = request_id if request_id is not None else "(no valid request_id)"
        super().__init__(f"invalid send request {label}: {problems}")


# ---------------------------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True, kw_only=True)
class Slide:
    image_url: str | None = None
    audio_url: str | None = None
    video_url: str | None = None
    vcard_url: str | None = None
    ical_url: str | None = None
    pdf_url: str | None = None
    passbook_url: str | None = None
    text: str | None = None
    duration: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomText:
    slide: int  # 1-based
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """Fields common to every send action. `action` is a class attribute of each subclass."""

    action: ClassVar[Action]
    request_id: str
    to: str
    from_: str
    campaign_ref: str | None = None
    operator_id: str | None = None
    from_mask: str | None = None
    ignored_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSMS(SendRequest):
    action: ClassVar[Action] = Action.SEND_SMS
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSavedMMS(SendRequest):
    action: ClassVar[Action] = Action.SEND_SAVED_MMS
    mms_id: str
    fallback_sms_text: str
    custom_subject: str | None = None
    custom_text: CustomText | None = None
    data: tuple[tuple[str, str], ...] = ()  # (upper-cased name, value), in input order
    disable_fallback_sms: bool = False
    disable_fallback_sms_link: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMMS(SendRequest):
    action: ClassVar[Action] = Action.SEND_MMS
    name: str
    slides: tuple[Slide, ...]
    fallback_sms_text: str
    subject: str | None = None
    disable_fallback_sms_link: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveMMS:
    """A `saveMMS` template (not a send request: it never travels on the send queue)."""

    action: ClassVar[Action] = Action.SAVE_MMS
    name: str
    slides: tuple[Slide, ...]
    subject: str | None = None
    fallback_sms_text: str | None = None
    disable_fallback_sms: bool = False
    disable_fallback_sms_link: bool = False
    ignored_fields: tuple[str, ...] = ()


# ----------------------------------------------------------------------------------------- field sets

COMMON_FIELDS: Final = frozenset(
    {"request_id", "action", "to", "from", "campaign_ref", "operator_id", "from_mask"}
)
ACTION_FIELDS: Final = {
    Action.SEND_SMS: frozenset({"text"}),
    Action.SEND_SAVED_MMS: frozenset(
        {
            "mms_id",
            "fallback_sms_text",
            "custom_subject",
            "custom_text",
            "data",
            "disable_fallback_sms",
            "disable_fallback_sms_link",
        }
    ),
    Action.SEND_MMS: frozenset(
        {"name", "slides", "subject", "fallback_sms_text", "disable_fallback_sms_link"}
    ),
}
SAVE_MMS_FIELDS: Final = frozenset(
    {
        "action",
        "name",
        "slides",
        "subject",
        "fallback_sms_text",
        "disable_fallback_sms",
        "disable_fallback_sms_link",
    }
)
_ALL_KNOWN_FIELDS: Final = COMMON_FIELDS.union(*ACTION_FIELDS.values())

MEDIA_EXTENSIONS: Final = {
    "image_url": frozenset({"gif", "jpg", "jpeg", "png"}),
    "audio_url": frozenset({"mp3", "wav"}),
    "video_url": frozenset({"3gp", "mp4", "mpeg", "mpg", "avi", "wmv"}),
    "vcard_url": frozenset({"vcf", "vcard"}),
    "ical_url": frozenset({"ics", "ical", "ifb", "icalendar"}),
    "pdf_url": frozenset({"pdf"}),
    "passbook_url": frozenset({"pkpass"}),
}
MEDIA_SLOTS: Final = ("image_url", "audio_url", "video_url")
OBJECT_SLOTS: Final = ("vcard_url", "ical_url", "pdf_url", "passbook_url")
SLIDE_FIELDS: Final = frozenset({*MEDIA_SLOTS, *OBJECT_SLOTS, "text", "duration"})

# ------------------------------------------------------------------------------------------- patterns

# XML 1.0 Char production: tab, LF, CR, and the BMP/astral ranges without surrogates, U+FFFE, U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_REQUEST_ID = re.compile(rf"[\x21-\x7e]{{1,{REQUEST_ID_MAX}}}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_URL_CHARS = re.compile(r"[\x21-\x7e]+")
_DIGITS = re.compile(r"[0-9]+")
_FROM_MASK = re.compile(rf"[A-Za-z0-9_-]{{1,{FROM_MASK_MAX}}}")
_DATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_SLIDE_NUMBER = re.compile(r"[1-8]")
_SAFE_LABEL = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

_MISSING: Final = object()


def has_only_xml_chars(text: str) -> bool:
    """True if every character of `text` may appear in an XML 1.0 document."""
    return _NOT_XML_CHAR.search(text) is None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _label(key: object, position: int) -> str:
    """A key that is safe to put in an error message, or its position."""
    if isinstance(key, str) and _SAFE_LABEL.fullmatch(key):
        return key
    if isinstance(key, int) and not isinstance(key, bool) and abs(key) < 10**9:
        return str(key)
    return f"#{position}"


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, reason: str) -> None:
        self.items.append((field, reason))

    def __bool__(self) -> bool:
        return bool(self.items)


# ---------------------------------------------------------------------------------------- field rules


def _absent(value: object) -> bool:
    return value is _MISSING or value is None or value == ""


def _string(
    value: object,
    field: str,
    errors: _Errors,
    *,
    required: bool,
    max_len: int,
    printable_ascii: bool = False,
) -> str | None:
    if _absent(value):
        if required:
            errors.add(field, "is required")
        return None
    if not isinstance(value, str):
        errors.add(field, f"must be a string, got {_json_type(value)}")
        return None
    ok = True
    if len(value) > max_len:
        errors.add(field, f"must be at most {max_len} characters (got {len(value)})")
        ok = False
    if not has_only_xml_chars(value):
        errors.add(field, "contains characters XML cannot carry (control characters or unpaired surrogates)")
        ok = False
    elif printable_ascii and not _PRINTABLE_ASCII.fullmatch(value):
        errors.add(
            field, "must be printable ASCII only (no emoji, accents or line breaks): carriers may reject it"
        )
        ok = False
    return value if ok else None


def _boolean(value: object, field: str, errors: _Errors) -> bool:
    if value is _MISSING or value is None:
        return False
    if not isinstance(value, bool):
        errors.add(field, f"must be true or false, got {_json_type(value)}")
        return False
    return value


def _digit_string(
    value: object, field: str, errors: _Errors, *, required: bool, max_digits: int, allow_int: bool
) -> str | None:
    if _absent(value):
        if required:
            errors.add(field, "is required")
        return None
    kinds = "a string of digits or a non-negative integer" if allow_int else "a string of digits"
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors.add(field, f"must be {kinds}, got {_json_type(value)}")
        return None
    if isinstance(value, int):
        if not allow_int:
            errors.add(field, "must be a string of digits, not a number (leading zeros matter)")
            return None
        if value < 0:
            errors.add(field, "must not be negative")
            return None
        if value >= 10**max_digits:  # before str(): huge ints cannot even be converted
            errors.add(field, f"must have at most {max_digits} digits")
            return None
        value = str(value)
    if not _DIGITS.fullmatch(value):
        errors.add(field, f"must be {kinds}")
        return None
    if len(value) > max_digits:
        errors.add(field, f"must have at most {max_digits} digits")
        return None
    return value


def _campaign_ref(value: object, errors: _Errors) -> str | None:
    field = "campaign_ref"
    if _absent(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors.add(field, f"must be text or a non-negative integer, got {_json_type(value)}")
        return None
    if isinstance(value, int):
        if value < 0:
            errors.add(field, "must not be negative")
            return None
        if value >= 10**CAMPAIGN_REF_MAX:  # before str(): huge ints cannot even be converted
            errors.add(field, f"must have at most {CAMPAIGN_REF_MAX} digits")
            return None
        return str(value)
    if len(value) > CAMPAIGN_REF_MAX:
        errors.add(field, f"must be at most {CAMPAIGN_REF_MAX} characters (got {len(value)})")
        return None
    # isprintable() also rules out everything XML cannot carry (C0 controls, surrogates, U+FFFE/U+FFFF).
    if not value.isprintable():
        errors.add(
            field,
            "must be printable characters only (no control characters, tabs, line breaks, "
            "invisible formatting characters or spaces other than the plain space)",
        )
        return None
    if value != value.strip(" "):
        errors.add(field, "must not start or end with a space")
        return None
    return value


def _request_id(value: object, errors: _Errors) -> str | None:
    if _absent(value):
        errors.add("request_id", "is required")
        return None
    if not isinstance(value, str):
        errors.add("request_id", f"must be a string, got {_json_type(value)}")
        return None
    if not _REQUEST_ID.fullmatch(value):
        errors.add(
            "request_id", f"must be 1-{REQUEST_ID_MAX} printable ASCII characters without spaces (0x21-0x7E)"
        )
        return None
    return value


def _action(value: object, errors: _Errors, *, allowed: tuple[Action, ...]) -> Action | None:
    names = ", ".join(action.value for action in allowed)
    if _absent(value):
        errors.add("action", f"is required (one of {names})")
        return None
    if not isinstance(value, str):
        errors.add("action", f"must be a string, got {_json_type(value)}")
        return None
    action = _ACTIONS_BY_FOLDED_NAME.get(value.lower()) if value.isascii() else None
    if action not in allowed:
        errors.add("action", f"must be one of {names} (any casing)")
        return None
    return action


def _number(
    value: object, field: str, errors: _Errors, *, sender: bool, country_code: str | None
) -> str | None:
    if _absent(value):
        errors.add(field, "is required")
        return None
    if not isinstance(value, str):
        errors.add(field, f"must be a string, got {_json_type(value)}")
        return None
    try:
        if sender:
            return normalise_sender(value, default_country_code=country_code)
        return normalise_number(value, default_country_code=country_code)
    except InvalidNumber as error:
        reason = str(error)
        if sender:
            reason = f"is neither a 5-6 digit shortcode nor a valid longcode: {reason}"
        errors.add(field, reason)
        return None


def _from_mask(value: object, errors: _Errors) -> str | None:
    mask = _string(value, "from_mask", errors, required=False, max_len=FROM_MASK_MAX)
    if mask is None:
        return None
    if not _FROM_MASK.fullmatch(mask):
        errors.add("from_mask", "may contain only letters A-Z/a-z, digits, '_' and '-'")
        return None
    if mask.isdigit():
        errors.add("from_mask", "must not be all digits")
        return None
    return mask


def _media_url(value: object, field: str, slot: str, errors: _Errors) -> str | None:
    url = _string(value, field, errors, required=False, max_len=URL_MAX)
    if url is None:
        return None
    if not _URL_CHARS.fullmatch(url):
        errors.add(field, "must be printable ASCII without spaces (percent-encode anything else)")
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        errors.add(field, "is not a well-formed URL")
        return None
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    problems = []
    if parts.scheme.lower() not in ("http", "https"):
        problems.append("must be an absolute http or https URL")
    else:
        if not parts.hostname:
            problems.append("must include a host")
        if parts.username is not None or parts.password is not None:
            problems.append("must not carry credentials: the provider fetches media without authentication")
        if not port_ok:
            problems.append("has an invalid port")
    if parts.path in ("", "/"):
        problems.append("must include the path to the file")
    if "?" in url:
        problems.append(
            "must not carry a query string: the provider may strip it (docs/provider-protocol.md §5.5); "
            "put ids, cache busters or signatures in the path"
        )
    if "#" in url:
        problems.append("must not carry a fragment")
    segment = parts.path.rsplit("/", 1)[-1]
    if "." in segment:
        extension = segment.rsplit(".", 1)[1].lower()
        allowed = MEDIA_EXTENSIONS[slot]
        if extension and extension not in allowed:
            kind = slot.removesuffix("_url")
            problems.append(
                f"has a file extension that is not a supported {kind} type ({', '.join(sorted(allowed))})"
            )
    for problem in problems:
        errors.add(field, problem)
    return None if problems else url


def _integer(value: object, field: str, errors: _Errors, *, low: int, high: int) -> int | None:
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field, f"must be an integer, got {_json_type(value)}")
        return None
    if not low <= value <= high:
        errors.add(field, f"must be between {low} and {high}")
        return None
    return value


def _slide(value: object, field: str, errors: _Errors) -> Slide | None:
    if not isinstance(value, dict):
        errors.add(field, f"must be an object, got {_json_type(value)}")
        return None
    before = len(errors.items)
    unknown = [_label(key, i) for i, key in enumerate(value) if key not in SLIDE_FIELDS]
    if unknown:
        errors.add(
            field,
            f"has unknown fields ({', '.join(sorted(unknown))}); allowed: {', '.join(sorted(SLIDE_FIELDS))}",
        )
    urls = {
        slot: _media_url(value.get(slot, _MISSING), f"{field}.{slot}", slot, errors)
        for slot in (*MEDIA_SLOTS, *OBJECT_SLOTS)
    }
    text = _string(
        value.get("text", _MISSING), f"{field}.text", errors, required=False, max_len=SLIDE_TEXT_MAX
    )
    duration = _integer(
        value.get("duration"), f"{field}.duration", errors, low=DURATION_MIN, high=DURATION_MAX
    )

    # Composition is judged on what was given, valid or not, so that every problem shows at once.
    given = {key for key in (*MEDIA_SLOTS, *OBJECT_SLOTS, "text") if not _absent(value.get(key, _MISSING))}
    objects = [slot for slot in OBJECT_SLOTS if slot in given]
    if not given:
        errors.add(field, "is empty: give text, an image, audio or video URL, or an object URL (E313)")
    if "audio_url" in given and "video_url" in given:
        errors.add(field, "cannot combine audio and video (E226)")
    if "video_url" in given and "image_url" in given:
        errors.add(field, "video may be combined only with text (E227)")
    if len(objects) > 1:
        errors.add(field, "may hold at most one object (vCard, iCal, PDF or Passbook) (E223)")
    if objects and any(slot in given for slot in MEDIA_SLOTS):
        errors.add(field, "an object may be combined only with text, not with image, audio or video (E224)")
    if len(errors.items) != before:
        return None
    return Slide(**urls, text=text, duration=duration)


def _slides(value: object, errors: _Errors) -> tuple[Slide, ...] | None:
    if value is _MISSING or value is None:
        errors.add("slides", f"is required (an array of 1-{SLIDES_MAX} slides)")
        return None
    if not isinstance(value, list | tuple):
        errors.add("slides", f"must be an array of 1-{SLIDES_MAX} slide objects, got {_json_type(value)}")
        return None
    if not value:
        errors.add("slides", "must have at least one slide (E312)")
    if len(value) > SLIDES_MAX:
        errors.add("slides", f"must have at most {SLIDES_MAX} slides, got {len(value)} (E225)")
    before = len(errors.items)
    slides = [_slide(item, f"slides[{i}]", errors) for i, item in enumerate(value)]
    if errors.items[before:] or not value or len(value) > SLIDES_MAX:
        return None
    return tuple(slide for slide in slides if slide is not None)


def _custom_text(value: object, errors: _Errors) -> CustomText | None:
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, dict):
        errors.add(
            "custom_text", f"must be an object mapping one slide number 1-8 to text, got {_json_type(value)}"
        )
        return None
    if len(value) > CUSTOM_TEXTS_MAX:
        errors.add(
            "custom_text",
            f"may override the text of one slide only, got {len(value)} entries: the provider's v1 API "
            "takes a single CUSTOMTEXT per request (docs/provider-protocol.md §2.3); put the other texts in "
            "the template or in merge variables (data)",
        )
    entries: list[CustomText] = []
    for position, (key, text) in enumerate(value.items()):  # every entry is checked, however many
        field = f"custom_text.{_label(key, position)}"
        if isinstance(key, str) and _SLIDE_NUMBER.fullmatch(key):
            slide = int(key)
        elif isinstance(key, int) and not isinstance(key, bool) and 1 <= key <= SLIDES_MAX:
            slide = key
        else:
            errors.add(field, f"slide number must be 1-{SLIDES_MAX}")
            continue
        checked = _string(text, field, errors, required=True, max_len=SLIDE_TEXT_MAX)
        if checked is not None:
            entries.append(CustomText(slide=slide, text=checked))
    return entries[0] if len(value) == 1 and entries else None


def _data(value: object, errors: _Errors) -> tuple[tuple[str, str], ...]:
    if value is _MISSING or value is None:
        return ()
    if not isinstance(value, dict):
        errors.add(
            "data", f"must be an object mapping merge variable names to strings, got {_json_type(value)}"
        )
        return ()
    entries: dict[str, str] = {}
    for position, (key, item) in enumerate(value.items()):
        field = f"data.{_label(key, position)}"
        if not isinstance(key, str) or not _DATA_NAME.fullmatch(key) or key[:3].casefold() == "xml":
            errors.add(
                field,
                "name must be 1-64 of A-Z, a-z, 0-9 and '_', and start with neither a digit nor 'xml'",
            )
            continue
        if not isinstance(item, str):
            errors.add(field, f"must be a string, got {_json_type(item)}")
            continue
        checked = _string(item, field, errors, required=False, max_len=DATA_VALUE_MAX)
        if checked is None and item != "":
            continue
        name = key.upper()
        if name in entries:
            errors.add(field, "is the same name as another entry once upper-cased")
            continue
        entries[name] = item
    return tuple(entries.items())


def _fallback_text(value: object, errors: _Errors, *, required: bool) -> str | None:
    return _string(value, "fallback_sms_text", errors, required=required, max_len=FALLBACK_SMS_TEXT_MAX)


def _mms_content(payload: dict, errors: _Errors, *, action: Action) -> dict[str, object]:
    """The fields sendMMS and saveMMS share: NAME, SUBJECT, FALLBACKSMSTEXT, slides.

    FALLBACKSMSTEXT is mandatory for sendMMS (docs/provider-protocol.md §2.4); a saveMMS template needs it
    only when it has no subject (§2.2).
    """
    subject = _string(
        payload.get("subject", _MISSING),
        "subject",
        errors,
        required=False,
        max_len=SUBJECT_MAX,
        printable_ascii=True,
    )
    fallback_required = action is Action.SEND_MMS or _absent(payload.get("subject", _MISSING))
    return {
        "name": _string(payload.get("name", _MISSING), "name", errors, required=True, max_len=NAME_MAX),
        "subject": subject,
        "fallback_sms_text": _fallback_text(
            payload.get("fallback_sms_text", _MISSING), errors, required=fallback_required
        ),
        "disable_fallback_sms_link": _boolean(
            payload.get("disable_fallback_sms_link", _MISSING), "disable_fallback_sms_link", errors
        ),
        "slides": _slides(payload.get("slides", _MISSING), errors),
    }


def _check_keys(payload: dict, errors: _Errors) -> bool:
    bad = [position for position, key in enumerate(payload) if not isinstance(key, str)]
    if bad:
        errors.add(ROOT, "field names must be strings")
    return not bad


# ----------------------------------------------------------------------------------------- public API


def validate_send_request(
    payload: object, *, default_country_code: str | None = None
) -> SendSMS | SendMMS | SendSavedMMS:
    """Validate one JSON-decoded send request. Raises InvalidSendRequest listing every problem.

    `default_country_code` enables national-format numbers in `to`/`from` (see `numbers.normalise_number`).
    """
    return _validate_send_request(payload, default_country_code=default_country_code, errors=_Errors())


def _validate_send_request(
    payload: object, *, default_country_code: str | None, errors: _Errors
) -> SendSMS | SendMMS | SendSavedMMS:
    if not isinstance(payload, dict):
        errors.add(ROOT, f"a send request must be a JSON object, got {_json_type(payload)}")
        raise InvalidSendRequest(errors.items)
    _check_keys(payload, errors)

    def get(name: str) -> object:
        return payload.get(name, _MISSING)

    request_id = _request_id(get("request_id"), errors)
    action = _action(get("action"), errors, allowed=SEND_ACTIONS)
    common: dict[str, object] = {
        "request_id": request_id,
        "to": _number(get("to"), "to", errors, sender=False, country_code=default_country_code),
        "from_": _number(get("from"), "from", errors, sender=True, country_code=default_country_code),
        "campaign_ref": _campaign_ref(get("campaign_ref"), errors),
        "operator_id": _digit_string(
            get("operator_id"), "operator_id", errors, required=False, max_digits=10, allow_int=False
        ),
        "from_mask": _from_mask(get("from_mask"), errors),
    }

    ignored = sorted(
        _label(key, position)
        for position, key in enumerate(payload)
        if isinstance(key, str) and key not in _ALL_KNOWN_FIELDS
    )
    common["ignored_fields"] = tuple(ignored)

    valid = {
        name: str(value)
        for name, value in (("action", action), ("to", common["to"]), ("from", common["from_"]))
        if value is not None
    }
    if action is None:
        raise InvalidSendRequest(errors.items, request_id=request_id, valid=valid)

    allowed = COMMON_FIELDS | ACTION_FIELDS[action]
    misplaced = (key for key in payload if key in _ALL_KNOWN_FIELDS and key not in allowed)
    for key in sorted(key for key in misplaced if not _absent(payload[key])):
        errors.add(key, f"is not a field of {action.value} requests")

    specific: dict[str, object]
    if action is Action.SEND_SMS:
        specific = {"text": _string(get("text"), "text", errors, required=True, max_len=SMS_TEXT_MAX)}
    elif action is Action.SEND_SAVED_MMS:
        specific = {
            "mms_id": _digit_string(
                get("mms_id"), "mms_id", errors, required=True, max_digits=20, allow_int=True
            ),
            "fallback_sms_text": _fallback_text(get("fallback_sms_text"), errors, required=True),
            "custom_subject": _string(
                get("custom_subject"),
                "custom_subject",
                errors,
                required=False,
                max_len=SUBJECT_MAX,
                printable_ascii=True,
            ),
            "custom_text": _custom_text(get("custom_text"), errors),
            "data": _data(get("data"), errors),
            "disable_fallback_sms": _boolean(get("disable_fallback_sms"), "disable_fallback_sms", errors),
            "disable_fallback_sms_link": _boolean(
                get("disable_fallback_sms_link"), "disable_fallback_sms_link", errors
            ),
        }
    else:
        specific = _mms_content(payload, errors, action=Action.SEND_MMS)

    if errors:
        raise InvalidSendRequest(errors.items, request_id=request_id, valid=valid)
    request_type = {Action.SEND_SMS: SendSMS, Action.SEND_SAVED_MMS: SendSavedMMS, Action.SEND_MMS: SendMMS}[
        action
    ]
    return request_type(**common, **specific)  # type: ignore[arg-type]


def validate_save_mms(payload: object) -> SaveMMS:
    """Validate a saveMMS template description (same content rules as sendMMS, no addressing).

    `action` is optional here; if given it must be `saveMMS` in any casing. Unknown fields are ignored and
    listed in `ignored_fields`. Raises InvalidSendRequest (with request_id None).
    """
    errors = _Errors()
    if not isinstance(payload, dict):
        raise InvalidSendRequest(
            [(ROOT, f"a saveMMS request must be a JSON object, got {_json_type(payload)}")]
        )
    if _check_keys(payload, errors) and not _absent(payload.get("action", _MISSING)):
        _action(payload["action"], errors, allowed=(Action.SAVE_MMS,))
    content = _mms_content(payload, errors, action=Action.SAVE_MMS)
    disable_fallback_sms = _boolean(
        payload.get("disable_fallback_sms", _MISSING), "disable_fallback_sms", errors
    )
    if errors:
        raise InvalidSendRequest(errors.items)
    ignored = sorted(
        _label(key, position) for position, key in enumerate(payload) if key not in SAVE_MMS_FIELDS
    )
    return SaveMMS(
        **content,  # type: ignore[arg-type]
        disable_fallback_sms=disable_fallback_sms,
        ignored_fields=tuple(ignored),
    )


def parse_send_request_json(
    raw: str | bytes | bytearray, *, default_country_code: str | None = None
) -> SendSMS | SendMMS | SendSavedMMS:
    """Decode one queue message body and validate it. Malformed JSON is an InvalidSendRequest too.

    Beyond `json.loads`: the body must be UTF-8 and at most 256 KiB; NaN/Infinity are refused; a key that
    appears twice in one object is refused (which copy was meant is unknowable).
    """
    errors = _Errors()
    if isinstance(raw, bytes | bytearray):
        if len(raw) > MAX_MESSAGE_BYTES:
            raise InvalidSendRequest([(ROOT, f"is larger than {MAX_MESSAGE_BYTES} bytes")])
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSendRequest([(ROOT, "is not UTF-8")]) from None
    elif isinstance(raw, str):
        text = raw
        if len(text) > MAX_MESSAGE_BYTES:
            raise InvalidSendRequest([(ROOT, f"is larger than {MAX_MESSAGE_BYTES} bytes")])
    else:
        raise InvalidSendRequest([(ROOT, f"must be JSON text, got {type(raw).__name__}")])

    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict:
        result: dict = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    def refuse_constant(name: str) -> object:
        raise ValueError(f"{name} is not a JSON number")

    try:
        payload = json.loads(text, object_pairs_hook=pairs_hook, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        raise InvalidSendRequest(
            [(ROOT, f"is not valid JSON ({error.msg} at line {error.lineno})")]
        ) from None
    except (ValueError, RecursionError):
        raise InvalidSendRequest([(ROOT, "is not valid JSON (bad number or nested too deeply)")]) from None
    for position, key in enumerate(duplicates):
        errors.add(_label(key, position), "appears more than once in the same object")
    return _validate_send_request(payload, default_country_code=default_country_code, errors=errors)
