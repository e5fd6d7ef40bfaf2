"""The postback documents the simulator sends (docs/provider-protocol.md §3.2, §3.3, §3.4, §3.6) and when it
sends them.

Pure: a `Postback` is built from facts and a time, and rendered in the v1 upper-case dialect (the default) or
the hyphenated lower-case one. Every body starts with `<?xml version='1.0'?>` and carries US Eastern times.

A delivery report (N102/N202) carries success or failure in its STATUS (§3.2): with a `status_text` such as
`Message Sent/Expired` it reports a failed delivery, as the provider does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final
from xml.sax.saxutils import escape  # nosec B406  # escapes text into XML; parses nothing
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mmsbridge.sending.request import Action

__all__ = [
    "MMS_OUTCOMES",
    "SMS_OUTCOMES",
    "TEMPLATE_OUTCOMES",
    "Message",
    "Postback",
    "PostbackSettings",
    "delivery_postback",
    "delivery_steps",
    "eastern",
    "event_offset",
    "mms_mo",
    "render",
    "sms_mo",
    "subscription",
    "template_result",
]

V1: Final = "v1"
HYPHENATED: Final = "hyphenated"
DIALECTS: Final = (V1, HYPHENATED)

MMS_OUTCOMES: Final = frozenset({"N102", "N202", "E101", "E102", "E202"})
SMS_OUTCOMES: Final = frozenset({"N202", "E201", "E202"})
TEMPLATE_OUTCOMES: Final = frozenset({"N003", "E002", "E003"})
_NEVER_SENT: Final = frozenset({"E101", "E201"})  # these come alone, without N101/N201 first
_VIA_LINK: Final = frozenset({"N202", "E202"})  # MMS delivered (or not) as an SMS link to hosted content
# How each dialect spells the not-supported failure (§3.2): the same event, written two ways.
_STATUS_SPELLING: Final = {
    V1: ("/Not Supported", "/NotSupported"),
    HYPHENATED: ("/NotSupported", "/Not Supported"),
}

STATUS_TEXT: Final = {
    "N101": "Message Sent",
    "N201": "Message Sent",
    "N102": "Message Sent/Delivered",
    "N202": "Message Sent/Delivered",
    "E101": "Message Failed",
    "E201": "Message Failed",
    "E102": "Message Sent/Expired",
    "E202": "Message Sent/Failed",
}
_DETAILS: Final = {
    ("MMS_MT", "E101"): "Error fetching dynamic content",
    ("MMS_MT", "E102"): "Message validity period elapsed",
    ("MMS_MT", "E202"): "Handset unreachable",
    ("SMS_MT", "N202"): "?smpp?deliver_sm=2&",
}
DEFAULT_SPID: Final = "0001890"
HANDSET: Final = "samsung_sm-s911u"

# Hyphenated names where lower-casing alone is not the rule (docs/provider-protocol.md §3.4); AGGREGATORID is
# not sent there.
_HYPHENATED_NAMES: Final = {
    "SENTAS": "sent-as",
    "MMSID": "mms-id",
    "TRACKINGID": "tracking-id",
    "SPID": "operator-id",
    "STATUSDETAILS": "status-details",
    "FROM_MASK": "from-mask",
    "AUDIONAME": "audio-name",
    "VIDEONAME": "video-name",
    "TRANSACTIONID": "transaction-id",
    "SUBJECT": "message-subject",
    "CAMPAIGNID": "campaign-id",
    "CAMPAIGNTITLE": "campaign-title",
    "BRANDNAME": "brand-name",
}
_NOT_HYPHENATED: Final = frozenset({"AGGREGATORID"})

try:
    _EASTERN: timezone | ZoneInfo = ZoneInfo("America/New_York")
except ZoneInfoNotFoundError:  # no tz database: standard time all year
    _EASTERN = timezone(timedelta(hours=-5))


def eastern(moment: datetime, *, microseconds: bool = False) -> str:
    """`moment` as the provider writes it: ISO 8601 in US Eastern time, e.g. `2024-03-14T10:02:11-04:00`."""
    return moment.astimezone(_EASTERN).isoformat(timespec="microseconds" if microseconds else "seconds")


Value = str | tuple[str, ...]  # a tuple is CONTENT's FILE list


@dataclass(frozen=True)
class Postback:
    """One notification: ORIGIN, CODE and the other fields in v1 names and sample order."""

    origin: str
    code: str
    fields: tuple[tuple[str, Value], ...] = ()

    def get(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name and isinstance(value, str):
                return value or None
        return None

    @property
    def inbound(self) -> bool:
        """SMS/MMS MO go to the account's MO postback URL when it has one."""
        return self.origin in ("SMS_MO", "MMS_MO")


def _tag(name: str, dialect: str) -> str:
    return name if dialect == V1 else _HYPHENATED_NAMES.get(name, name.lower())


def render(postback: Postback, dialect: str = V1) -> bytes:
    """The body of `postback` in `dialect` (`v1` or `hyphenated`)."""
    code = postback.code
    if dialect == HYPHENATED and postback.origin == "MMS_MT" and code == "N202":
        code = "N102"  # the hyphenated dialect reports link delivery as N102 with sent-as SMS (§3.4)
    root = _tag("POSTBACK", dialect)
    lines = ["<?xml version='1.0'?>", f"<{root}>"]
    for name, value in (("ORIGIN", postback.origin), ("CODE", code), *postback.fields):
        if dialect == HYPHENATED and name in _NOT_HYPHENATED:
            continue
        if name == "STATUS" and isinstance(value, str):
            value = value.replace(*_STATUS_SPELLING[dialect])
        tag = _tag(name, dialect)
        if isinstance(value, tuple):
            file_tag = _tag("FILE", dialect)
            lines.append(f"    <{tag}>")
            lines += [f"        <{file_tag}>{escape(item)}</{file_tag}>" for item in value]
            lines.append(f"    </{tag}>")
        else:
            lines.append(f"    <{tag}>{escape(value)}</{tag}>")
    lines += [f"</{root}>", ""]
    return "\n".join(lines).encode("utf-8")


# ------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PostbackSettings:
    """How the simulated account sends postbacks. Replace it whole (`dataclasses.replace`) to change it.

    Outcomes are codes: MMS `N102`/`N202`/`E101`/`E102`/`E202`, SMS `N202`/`E201`/`E202`, or None for a
    carrier without delivery reports (N101/N201 only). `outcome_by_to` overrides them per recipient number.
    `status_text` is the STATUS of the outcome's postback, whatever its code: a failure text such as
    `Message Sent/Rejected` on E102/E202, and on N102/N202 the delivery report of a failed delivery
    (`Message Sent/Expired`, `/Rejected`, `/Failed`, `/NotSupported`; rendered `/Not Supported` in the
    hyphenated dialect). None: the code's usual text (`Message Sent/Delivered` for N102/N202).
    Timing: N101/N201 `first_delay_s` after the send, the outcome `outcome_delay_s` later; `reverse_order`
    sends the outcome first; `delay_first_s` holds N101/N201 until that long after the outcome. `duplicates`
    sends every body that many times. A delivery not answered 200 within `timeout_s` is retried every
    `retry_interval_s`, at most `max_retries` times (§5.2). A saveMMS template stays ENCODING for
    `template_delay_s`, then N003 (or `template_outcome` E002/E003) is sent.
    """

    dialect: str = V1
    mms_outcome: str | None = "N102"
    sms_outcome: str | None = "N202"
    outcome_by_to: dict[str, str | None] = field(default_factory=dict)
    status_text: str | None = None
    first_delay_s: float = 0.2
    outcome_delay_s: float = 0.5
    reverse_order: bool = False
    delay_first_s: float = 0.0
    duplicates: int = 1
    template_delay_s: float = 1.0
    template_outcome: str = "N003"
    retry_interval_s: float = 300.0
    max_retries: int = 5
    timeout_s: float = 10.0
    queue_limit: int = 10_000

    def __post_init__(self) -> None:
        problems = []
        if self.dialect not in DIALECTS:
            problems.append(f"dialect must be one of {DIALECTS}")
        if self.mms_outcome is not None and self.mms_outcome not in MMS_OUTCOMES:
            problems.append(f"mms_outcome must be one of {sorted(MMS_OUTCOMES)} or None")
        if self.sms_outcome is not None and self.sms_outcome not in SMS_OUTCOMES:
            problems.append(f"sms_outcome must be one of {sorted(SMS_OUTCOMES)} or None")
        if any(
            code is not None and code not in MMS_OUTCOMES | SMS_OUTCOMES
            for code in self.outcome_by_to.values()
        ):
            problems.append("outcome_by_to values must be outcome codes or None")
        if self.template_outcome not in TEMPLATE_OUTCOMES:
            problems.append(f"template_outcome must be one of {sorted(TEMPLATE_OUTCOMES)}")
        delays = (self.first_delay_s, self.outcome_delay_s, self.delay_first_s, self.template_delay_s)
        if any(delay < 0 for delay in delays) or self.retry_interval_s <= 0 or self.timeout_s <= 0:
            problems.append("delays must be >= 0, retry_interval_s and timeout_s > 0")
        if not 1 <= self.duplicates <= 100 or not 0 <= self.max_retries <= 100 or self.queue_limit < 1:
            problems.append("duplicates must be 1-100, max_retries 0-100, queue_limit >= 1")
        if problems:
            raise ValueError("; ".join(problems))

    def outcome_for(self, action: Action, to: str) -> str | None:
        """The final code for a message to `to`; an SMS-only code asked of an MMS (or back) falls back."""
        default = self.sms_outcome if action is Action.SEND_SMS else self.mms_outcome
        if to not in self.outcome_by_to:
            return default
        chosen = self.outcome_by_to[to]
        allowed = SMS_OUTCOMES if action is Action.SEND_SMS else MMS_OUTCOMES
        return chosen if chosen is None or chosen in allowed else default


# ------------------------------------------------------------------------------------ message codes


@dataclass(frozen=True)
class Message:
    """An accepted send, as its postbacks describe it."""

    action: Action
    tracking_id: str
    to: str
    from_: str
    number: int  # the simulator's sequence number behind the ids
    mms_id: str | None = None
    operator_id: str | None = None


def delivery_steps(message: Message, settings: PostbackSettings) -> list[tuple[float, str]]:
    """(seconds after the send, code) for each delivery postback of `message`, in sending order."""
    outcome = settings.outcome_for(message.action, message.to)
    if outcome in _NEVER_SENT:
        return [(settings.first_delay_s, outcome)]
    first = "N201" if message.action is Action.SEND_SMS else "N101"
    if outcome is None:
        return [(settings.first_delay_s, first)]
    first_at, outcome_at = settings.first_delay_s, settings.first_delay_s + settings.outcome_delay_s
    if settings.reverse_order:
        first_at, outcome_at = outcome_at, first_at
    if settings.delay_first_s:
        first_at = max(first_at, outcome_at) + settings.delay_first_s
    return sorted([(first_at, first), (outcome_at, outcome)])


def event_offset(code: str, settings: PostbackSettings) -> float:
    """When (seconds after the send) the event behind `code` happened, whatever order it is sent in."""
    if code in ("N101", "N201") or code in _NEVER_SENT:
        return settings.first_delay_s
    return settings.first_delay_s + settings.outcome_delay_s


def _aggregator_id(number: int) -> str:
    return f"40317-{number % 100000:05d}-{(number * 7919) % 100000:05d}"


def delivery_postback(
    message: Message, code: str, at: datetime, *, outcome: str | None, status_text: str | None = None
) -> Postback:
    """The MMS_MT or SMS_MT postback `code` for `message`; `outcome` is the message's final code."""
    if message.action is Action.SEND_SMS:
        return _sms_mt(message, code, at, _status(code, outcome, status_text))
    return _mms_mt(message, code, at, outcome=outcome, status=_status(code, outcome, status_text))


def _status(code: str, outcome: str | None, status_text: str | None) -> str:
    """The STATUS of `code`: `status_text` for the outcome's postback (not for N101/N201 before it)."""
    return status_text if status_text and code == outcome else STATUS_TEXT[code]


def _delivered(status: str) -> bool:
    return status == STATUS_TEXT["N102"]


def _mms_mt(message: Message, code: str, at: datetime, *, outcome: str | None, status: str) -> Postback:
    fields: list[tuple[str, Value]] = []
    if code != "E101":
        fields.append(("SENTAS", "SMS" if outcome in _VIA_LINK else "MMS"))
    fields.append(("STATUS", status))
    if code != "N202":
        fields.append(("MMSID", message.mms_id or ""))
    fields += [
        ("FROM", message.from_),
        ("TO", message.to),
        ("TRACKINGID", message.tracking_id),
        ("SPID", message.operator_id or DEFAULT_SPID),
    ]
    if code != "E101":
        fields.append(("TIMESTAMP", eastern(at)))
    if code == "N102" and _delivered(status):  # a failed report names no handset (the N102 Expired sample)
        fields.append(("HANDSET", HANDSET))
    if code in ("N102", "N202", "E102", "E202"):
        fields.append(("AGGREGATORID", _aggregator_id(message.number)))
    if ("MMS_MT", code) in _DETAILS:
        fields.append(("STATUSDETAILS", _DETAILS[("MMS_MT", code)]))
    elif code == "N101" and outcome in _VIA_LINK:
        fields.append(("STATUSDETAILS", "Handset setting: mms via xHTML"))
    return Postback("MMS_MT", code, tuple(fields))


def _sms_mt(message: Message, code: str, at: datetime, status: str) -> Postback:
    fields: list[tuple[str, Value]] = [
        ("STATUS", status),
        ("FROM", message.from_),
        ("FROM_MASK", ""),
        ("TO", message.to),
        ("TRACKINGID", message.tracking_id),
        ("SPID", message.operator_id or DEFAULT_SPID),
        ("TIMESTAMP", eastern(at, microseconds=True)),
    ]
    if code in ("N202", "E202"):
        fields.append(("AGGREGATORID", _aggregator_id(message.number)))
    if ("SMS_MT", code) in _DETAILS and _delivered(status):  # the gateway text of a delivered report
        fields.append(("STATUSDETAILS", _DETAILS[("SMS_MT", code)]))
    return Postback("SMS_MT", code, tuple(fields))


def template_result(
    mms_id: str, code: str, *, audio_url: str | None = None, video_url: str | None = None
) -> Postback:
    """N003 (template ready), E002 (audio encoding failed) or E003 (video encoding failed)."""
    fields: list[tuple[str, Value]] = [("MMSID", mms_id)]
    if code == "E002":
        fields.append(("AUDIONAME", audio_url or "audio.mp3"))
    elif code == "E003":
        fields.append(("VIDEONAME", video_url or "video.mp4"))
    return Postback("MMS_MT", code, tuple(fields))


# ------------------------------------------------------------------------------------------- inbound


def sms_mo(*, from_: str, to: str, text: str, transaction_id: str, at: datetime) -> Postback:
    """SMS_MO N211: an inbound SMS (its time is in RECEIVED, not TIMESTAMP)."""
    fields: tuple[tuple[str, Value], ...] = (
        ("FROM", from_),
        ("TO", to),
        ("TEXT", text),
        ("RECEIVED", eastern(at)),
        ("TRANSACTIONID", transaction_id),
    )
    return Postback("SMS_MO", "N211", fields)


def mms_mo(
    *,
    from_: str,
    to: str,
    files: tuple[str, ...],
    tracking_id: str,
    at: datetime,
    keyword: str = "",
    subject: str = "",
    spid: str = DEFAULT_SPID,
) -> Postback:
    """MMS_MO N401: an inbound MMS with its CONTENT/FILE URLs."""
    fields: tuple[tuple[str, Value], ...] = (
        ("FROM", from_),
        ("TO", to),
        ("KEYWORD", keyword),
        ("SUBJECT", subject),
        ("TRACKINGID", tracking_id),
        ("SPID", spid),
        ("TIMESTAMP", eastern(at)),
        ("CONTENT", files),
    )
    return Postback("MMS_MO", "N401", fields)


def subscription(
    *,
    mobile: str,
    campaign_id: str,
    subscribed: bool,
    at: datetime,
    shortcode: str = "",
    campaign_title: str = "",
    brand_name: str = "",
    source: str = "MO",
) -> Postback:
    """SUB N301 (subscribed) or N302 (unsubscribed)."""
    fields: tuple[tuple[str, Value], ...] = (
        ("MOBILE", mobile),
        ("CAMPAIGNID", campaign_id),
        ("TIMESTAMP", eastern(at)),
        ("SHORTCODE", shortcode),
        ("CAMPAIGNTITLE", campaign_title),
        ("BRANDNAME", brand_name),
        ("SOURCE", source),
    )
    return Postback("SUB", "N301" if subscribed else "N302", fields)
