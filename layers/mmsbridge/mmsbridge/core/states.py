"""Message state ranking (docs/provider-protocol.md §3.8) and the postback ORIGIN/CODE catalogue (§3.2), as
data.

The catalogue classifies a postback's `CODE` (or `STATUSCODE`) only. API `RESPONSE/ERRORCODE` values live in
a separate table (§4): the same string means different things in the two namespaces (§3.7), so the two must
never share a lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class MessageState(StrEnum):
    """State of one outbound message (key: `TRACKINGID`). Only ever moves up in rank."""

    SUBMITTED = "SUBMITTED"
    SENT = "SENT"
    FAILED = "FAILED"
    UNDELIVERED = "UNDELIVERED"
    DELIVERED = "DELIVERED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_RANK: Final[Mapping[MessageState, int]] = MappingProxyType(
    {
        MessageState.SUBMITTED: 0,
        MessageState.SENT: 1,
        MessageState.FAILED: 2,
        MessageState.UNDELIVERED: 3,
        MessageState.DELIVERED: 4,
    }
)
_TERMINAL: Final = frozenset({MessageState.FAILED, MessageState.UNDELIVERED, MessageState.DELIVERED})


def higher(current: MessageState | None, incoming: MessageState) -> MessageState:
    """§3.8 rule 1: the higher-ranked of the two, so arrival order and repeats cannot move a message back.

    On a tie the current state is kept. `current` is None for a message with no state yet.
    """
    if current is None or incoming.rank > current.rank:
        return incoming
    return current


def is_terminal_conflict(current: MessageState | None, incoming: MessageState) -> bool:
    """True when a second, *different* terminal state arrives (§3.8 rule 1: record it and flag it)."""
    return current is not None and current.terminal and incoming.terminal and current is not incoming


class TemplateState(StrEnum):
    """State of a stored MMS template (key: `MMSID`, §3.8 rule 6)."""

    ENCODING = "ENCODING"
    READY = "READY"
    BROKEN = "BROKEN"


class PostbackKind(StrEnum):
    """What a postback is for, which decides how it is applied."""

    DELIVERY = "DELIVERY"  # changes the message state (by TRACKINGID)
    DDM = "DDM"  # device-discovery message report: recorded in the message history, no state change
    MT_RECORD = "MT_RECORD"  # N013 / E999: recorded, no state change
    TEMPLATE = "TEMPLATE"  # template encoding result (by MMSID)
    INBOUND_SMS = "INBOUND_SMS"
    INBOUND_MMS = "INBOUND_MMS"
    SUBSCRIPTION = "SUBSCRIPTION"  # SUB: (MOBILE, CAMPAIGNID)
    EMAIL_SUBSCRIPTION = "EMAIL_SUBSCRIPTION"  # EMAIL_SUB: (EMAIL, CAMPAIGNID)
    PASS = "PASS"  # noqa: S105 (GENERATE_PASS, not a password)  # nosec B105
    UNRECOGNISED = "UNRECOGNISED"  # ORIGIN/CODE not in §3.2: kept with all fields, changes nothing


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One row of the §3.2 catalogue.

    `required` names the fields the postback is applied by (§3.1 "Required fields"); a postback lacking one
    of them cannot be applied and is quarantined. `failure` marks codes whose `STATUS` text carries a failure
    reason after the `/`. `by_status` marks the delivery reports (N102, N202) that carry success *or*
    failure: `state` is their success state, and a failure text in `STATUS` makes them UNDELIVERED (§3.2).
    """

    origin: str
    code: str
    kind: PostbackKind
    meaning: str
    required: tuple[str, ...] = ()
    state: MessageState | None = None
    template_state: TemplateState | None = None
    failure: bool = False
    subscribed: bool | None = None
    pass_ok: bool | None = None
    alert: bool = False
    by_status: bool = False


_TRACKED = ("TRACKINGID",)
_S = MessageState
_K = PostbackKind


def _delivery(origin: str, code: str, state: MessageState, meaning: str) -> CodeInfo:
    failure = state in (MessageState.FAILED, MessageState.UNDELIVERED)
    return CodeInfo(origin, code, _K.DELIVERY, meaning, _TRACKED, state=state, failure=failure)


def _report(origin: str, code: str, meaning: str) -> CodeInfo:
    """A delivery report: DELIVERED, or UNDELIVERED when its STATUS names a failure."""
    return CodeInfo(origin, code, _K.DELIVERY, meaning, _TRACKED, state=_S.DELIVERED, by_status=True)


def _template(code: str, template_state: TemplateState, meaning: str) -> CodeInfo:
    return CodeInfo("MMS_MT", code, _K.TEMPLATE, meaning, ("MMSID",), template_state=template_state)


_ROWS: Final[tuple[CodeInfo, ...]] = (
    # MMS_MT delivery codes: the message state machine, keyed by TRACKINGID.
    _delivery("MMS_MT", "N101", _S.SENT, "MMS processing started, sent to the carrier"),
    _report("MMS_MT", "N102", "carrier delivery report: delivered, or failed as STATUS says"),
    _delivery("MMS_MT", "E101", _S.FAILED, "MMS could not be sent"),
    _delivery("MMS_MT", "E102", _S.UNDELIVERED, "MMS delivery failed"),
    _report("MMS_MT", "N202", "SMS-link delivery report: delivered, or failed as STATUS says"),
    _delivery("MMS_MT", "E202", _S.UNDELIVERED, "SMS-link (fallback) delivery failed"),
    _delivery("MMS_MT", "N103", _S.UNDELIVERED, "expired (JSON product)"),
    # sendMMS content results that end the message (nothing was sent): FAILED, keyed by TRACKINGID.
    _delivery("MMS_MT", "E011", _S.FAILED, "content validation failed"),
    _delivery("MMS_MT", "E012", _S.FAILED, "sendMMS audio encoding failed; nothing sent"),
    _delivery("MMS_MT", "E013", _S.FAILED, "sendMMS video encoding failed; nothing sent"),
    # Device-discovery message reports: recorded in the history of the message they precede.
    CodeInfo("MMS_MT", "N501", _K.DDM, "device-discovery message sent", _TRACKED),
    CodeInfo("MMS_MT", "N502", _K.DDM, "device-discovery message delivered", _TRACKED),
    CodeInfo("MMS_MT", "E501", _K.DDM, "device-discovery message not sent", _TRACKED, failure=True),
    CodeInfo("MMS_MT", "E502", _K.DDM, "device-discovery message not delivered", _TRACKED, failure=True),
    # Records without a state change. N013 belongs to one message (N101 follows), so it needs its
    # TRACKINGID. E999's semantics are undocumented and it must reach an operator even when it cannot be
    # correlated, so it requires nothing.
    CodeInfo("MMS_MT", "N013", _K.MT_RECORD, "sendMMS content transcoded, sending triggered", _TRACKED),
    CodeInfo("MMS_MT", "E999", _K.MT_RECORD, "queue-processing error after sending", alert=True),
    # Template encoding results, keyed by MMSID.
    _template("N003", TemplateState.READY, "template stored and encoded; usable now"),
    _template("E002", TemplateState.BROKEN, "template audio encoding failed"),
    _template("E003", TemplateState.BROKEN, "template video encoding failed"),
    _template("E004", TemplateState.BROKEN, "template image encoding failed"),
    # SMS_MT delivery codes.
    _delivery("SMS_MT", "N201", _S.SENT, "SMS submitted to the carrier"),
    _delivery("SMS_MT", "E201", _S.FAILED, "SMS submission failed"),
    _report("SMS_MT", "N202", "delivery report: delivered, or failed as STATUS says"),
    _delivery("SMS_MT", "E202", _S.UNDELIVERED, "delivery report: not delivered"),
    # Inbound messages.
    CodeInfo("SMS_MO", "N211", _K.INBOUND_SMS, "inbound SMS", ("FROM", "TO")),
    CodeInfo("MMS_MO", "N401", _K.INBOUND_MMS, "inbound MMS", ("TRACKINGID", "FROM", "TO")),
    # Subscriptions.
    CodeInfo("SUB", "N301", _K.SUBSCRIPTION, "number subscribed", ("MOBILE", "CAMPAIGNID"), subscribed=True),
    CodeInfo(
        "SUB", "N302", _K.SUBSCRIPTION, "number unsubscribed", ("MOBILE", "CAMPAIGNID"), subscribed=False
    ),
    CodeInfo(
        "EMAIL_SUB",
        "N303",
        _K.EMAIL_SUBSCRIPTION,
        "e-mail subscribed",
        ("EMAIL", "CAMPAIGNID"),
        subscribed=True,
    ),
    CodeInfo(
        "EMAIL_SUB",
        "N304",
        _K.EMAIL_SUBSCRIPTION,
        "e-mail unsubscribed",
        ("EMAIL", "CAMPAIGNID"),
        subscribed=False,
    ),
    # Wallet passes: an N prefix does not mean success here.
    CodeInfo("GENERATE_PASS", "N801", _K.PASS, "pass generated", pass_ok=True),
    CodeInfo("GENERATE_PASS", "N802", _K.PASS, "pass generation failed", pass_ok=False, failure=True),
    CodeInfo("GENERATE_PASS", "N803", _K.PASS, "pass generation limit reached", pass_ok=False, failure=True),
    CodeInfo("GENERATE_PASS", "N811", _K.PASS, "no credits for pass generation", pass_ok=False, failure=True),
)

CATALOGUE: Final[Mapping[tuple[str, str], CodeInfo]] = MappingProxyType(
    {(r.origin, r.code): r for r in _ROWS}
)
"""(ORIGIN, CODE) → CodeInfo, both upper-case. A pair not listed is UNRECOGNISED, not an error."""

ORIGINS: Final = frozenset(r.origin for r in _ROWS)


def lookup(origin: str, code: str) -> CodeInfo | None:
    """The catalogue row for a postback's ORIGIN and CODE/STATUSCODE (case-insensitive), or None."""
    return CATALOGUE.get((origin.upper(), code.upper()))
