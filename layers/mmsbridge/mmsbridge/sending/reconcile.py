"""Outcome-unknown send requests and the messages they likely became, pure: which unlinked outbound message
is a request's, and whether it may be linked to it.

A send whose answer was lost after the provider accepted it (a dropped connection, a read timeout, a 5xx
after processing) ends OUTCOME_UNKNOWN, while the message it became reports under a TRACKINGID the sender
never learned: an outbound message with no REQUEST item in its MSG# partition. Such a message is a
*candidate* of an OUTCOME_UNKNOWN request when

  - its TO is the request's `to` and its FROM the request's `from` (their digits compared), and
  - its first delivery report's provider time falls in the request's *attempt window*: from
    `Policy.before` (1 minute) before the request's first claim (no call comes earlier; the provider's
    TIMESTAMP has whole seconds and its clock is not ours) to `Policy.after` (15 minutes) after the attempt
    that ended unknown. N101/N201 come as soon as the provider takes a send; the 15 minutes leave room for
    a backlog in its queue without reaching far into the next send to the same number.

The request is linked to its candidate only when that is the whole story:

  - exactly one candidate;
  - no other request to the same TO/FROM whose window overlaps this one: another OUTCOME_UNKNOWN request
    (its attempt window), or an accepted one (its outbound record; the window around its acceptance). Either
    could be the sender of the candidate;
  - the window closed `Policy.settle` (30 minutes) ago: the provider retries a postback it could not
    deliver for about 25 minutes, so a second candidate cannot still be on its way when the link is made.

Everything else is reported with its reason (`Plan.reason`) and never linked. `plan` decides; the reads and
the conditional write are reconcile_store.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from mmsbridge.core.times import iso

__all__ = [
    "Candidate",
    "Competitor",
    "OutboundMessage",
    "Plan",
    "Policy",
    "UnknownRequest",
    "Verdict",
    "Window",
    "outbound_message",
    "parse_time",
    "plan",
]

_MT_ORIGINS: Final = ("MMS_MT", "SMS_MT")
_REPORT_KIND: Final = "DELIVERY"


@dataclass(frozen=True)
class Policy:
    before: timedelta = timedelta(minutes=1)
    after: timedelta = timedelta(minutes=15)
    settle: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end

    def overlaps(self, other: Window) -> bool:
        return self.start <= other.end and other.start <= self.end


def parse_time(value: object) -> datetime | None:
    """A stored ISO time (`...Z` or with an offset), or None when it is not one."""
    if not isinstance(value, str) or not value or value == "~":
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _digits(number: object) -> str:
    return "".join(c for c in str(number or "") if c.isdigit())


def same_number(a: object, b: object) -> bool:
    return bool(_digits(a)) and _digits(a) == _digits(b)


# -- what the planner reads ------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnknownRequest:
    """An OUTCOME_UNKNOWN ledger as the planner needs it."""

    request_id: str
    to: str
    from_: str
    first_claim: datetime  # received_at: the first claim, before any call
    unknown_at: datetime  # when the attempt whose outcome is unknown ended (the ledger's updated_at)
    attempts: tuple[tuple[datetime, str], ...] = ()  # (time, outcome) of the attempt log

    @classmethod
    def from_ledger(cls, ledger: Mapping[str, Any]) -> UnknownRequest | None:
        """None when the ledger lacks what the window is made of (a request_id, to, from, its times)."""
        first, unknown = parse_time(ledger.get("received_at")), parse_time(ledger.get("updated_at"))
        request_id, to, from_ = ledger.get("request_id"), ledger.get("to"), ledger.get("from")
        if not (request_id and to and from_ and first and unknown):
            return None
        attempts = tuple(
            (moment, str(entry.get("outcome")))
            for entry in ledger.get("attempt_log") or []
            if (moment := parse_time(entry.get("at"))) is not None
        )
        return cls(str(request_id), str(to), str(from_), first, unknown, attempts)

    def window(self, policy: Policy) -> Window:
        return Window(self.first_claim - policy.before, self.unknown_at + policy.after)


@dataclass(frozen=True)
class OutboundMessage:
    """An outbound message (MSG#<trackingid>) as its reports and its REQUEST item describe it."""

    tracking_id: str
    to: str | None
    from_: str | None
    first_report_at: datetime | None  # the earliest MMS_MT/SMS_MT delivery report's provider time
    first_report_code: str | None
    codes: tuple[str, ...]  # its reports' codes, in provider-time order
    state: str | None = None
    state_code: str | None = None
    mms_id: str | None = None
    request_id: str | None = None  # the request its REQUEST item links it to; None: unlinked
    request_to: str | None = None
    request_from: str | None = None
    accepted_at: datetime | None = None  # the REQUEST item's

    @property
    def linked(self) -> bool:
        return self.request_id is not None


def outbound_message(view: Mapping[str, Any]) -> OutboundMessage:
    """From StateTable.message's view of a message: its reports (history) and its REQUEST item."""
    reports = sorted(
        (
            (moment, str(event.get("code")))
            for event in view.get("history") or []
            if event.get("origin") in _MT_ORIGINS
            and event.get("kind") == _REPORT_KIND
            and (moment := parse_time(event.get("timestamp_utc"))) is not None
        ),
        key=lambda pair: pair[0],
    )
    request = view.get("request") or {}
    return OutboundMessage(
        tracking_id=str(view["tracking_id"]),
        to=view.get("to") or request.get("to"),
        from_=view.get("from") or request.get("from"),
        first_report_at=reports[0][0] if reports else None,
        first_report_code=reports[0][1] if reports else None,
        codes=tuple(code for _, code in reports),
        state=view.get("state"),
        state_code=view.get("state_code"),
        mms_id=view.get("mms_id"),
        request_id=request.get("request_id") if request else None,
        request_to=request.get("to"),
        request_from=request.get("from"),
        accepted_at=parse_time(request.get("accepted_at")),
    )


# -- what the planner decides ----------------------------------------------------------------------------
class Verdict(StrEnum):
    LINK = "link"  # one candidate, nothing competing, the window has settled: link them
    LIKELY = "likely"  # one candidate and nothing competing so far; linked once the window has settled
    AMBIGUOUS = "ambiguous"  # more than one candidate, or another request competes: never linked
    NONE = "none"  # no candidate


@dataclass(frozen=True)
class Candidate:
    """The evidence that a message is the request's."""

    tracking_id: str
    to: str | None
    from_: str | None
    first_report_at: datetime
    first_report_code: str | None
    codes: tuple[str, ...]
    state: str | None
    state_code: str | None
    mms_id: str | None
    after_first_claim_s: float  # the first report's time after the request's first claim
    after_unknown_s: float  # ... after the attempt whose outcome is unknown ended (negative: before)

    def to_json(self) -> dict[str, Any]:
        return {
            "tracking_id": self.tracking_id,
            "to": self.to,
            "from": self.from_,
            "to_matches": True,
            "from_matches": True,
            "first_report_at": _iso(self.first_report_at),
            "first_report_code": self.first_report_code,
            "codes": list(self.codes),
            "state": self.state,
            "state_code": self.state_code,
            "after_first_claim_s": round(self.after_first_claim_s, 3),
            "after_unknown_s": round(self.after_unknown_s, 3),
        }


@dataclass(frozen=True)
class Competitor:
    """Another request to the same TO/FROM whose window overlaps the request's."""

    request_id: str
    status: str  # OUTCOME_UNKNOWN, or ACCEPTED (an outbound record)
    window: Window
    tracking_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "tracking_id": self.tracking_id,
            "window_start": _iso(self.window.start),
            "window_end": _iso(self.window.end),
        }


@dataclass(frozen=True)
class Plan:
    request_id: str
    verdict: Verdict
    reason: str
    window: Window
    settles_at: datetime  # linking waits until then
    candidates: tuple[Candidate, ...] = ()
    competitors: tuple[Competitor, ...] = ()
    passed: tuple[tuple[str, str], ...] = ()  # (tracking id, why it is no candidate) of messages looked at

    @property
    def likely(self) -> Candidate | None:
        """The request's likely message: the one candidate, when nothing competes."""
        return self.candidates[0] if self.verdict in (Verdict.LINK, Verdict.LIKELY) else None

    def to_json(self) -> dict[str, Any]:
        likely = self.likely
        return {
            "request_id": self.request_id,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "likely_tracking_id": likely.tracking_id if likely else None,
            "window_start": _iso(self.window.start),
            "window_end": _iso(self.window.end),
            "settles_at": _iso(self.settles_at),
            "candidates": [candidate.to_json() for candidate in self.candidates],
            "competitors": [competitor.to_json() for competitor in self.competitors],
            "not_candidates": [{"tracking_id": tid, "why": why} for tid, why in self.passed],
        }


def plan(
    request: UnknownRequest,
    messages: Iterable[OutboundMessage],
    others: Iterable[UnknownRequest] = (),
    *,
    now: datetime,
    policy: Policy = Policy(),
) -> Plan:
    """Which of `messages` (outbound messages to the request's number around its window) is the request's,
    and whether it may be linked now. `others`: the other OUTCOME_UNKNOWN requests (any number)."""
    window = request.window(policy)
    settles_at = window.end + policy.settle
    candidates: list[Candidate] = []
    competitors: list[Competitor] = []
    passed: list[tuple[str, str]] = []
    for message in sorted(messages, key=lambda m: m.tracking_id):
        if message.linked:
            if message.request_id == request.request_id:
                continue
            competitor = _accepted_competitor(request, message, window, policy)
            if competitor is not None:
                competitors.append(competitor)
            else:
                passed.append((message.tracking_id, f"linked to request {message.request_id}"))
            continue
        why_not = _not_a_candidate(request, message, window)
        if why_not is not None:
            passed.append((message.tracking_id, why_not))
            continue
        assert message.first_report_at is not None
        candidates.append(
            Candidate(
                tracking_id=message.tracking_id,
                to=message.to,
                from_=message.from_,
                first_report_at=message.first_report_at,
                first_report_code=message.first_report_code,
                codes=message.codes,
                state=message.state,
                state_code=message.state_code,
                mms_id=message.mms_id,
                after_first_claim_s=(message.first_report_at - request.first_claim).total_seconds(),
                after_unknown_s=(message.first_report_at - request.unknown_at).total_seconds(),
            )
        )
    for other in others:
        if other.request_id == request.request_id:
            continue
        if same_number(other.to, request.to) and same_number(other.from_, request.from_):
            other_window = other.window(policy)
            if other_window.overlaps(window):
                competitors.append(Competitor(other.request_id, "OUTCOME_UNKNOWN", other_window))
    candidates.sort(key=lambda c: (c.first_report_at, c.tracking_id))
    competitors.sort(key=lambda c: (c.window.start, c.request_id))
    verdict, reason = _verdict(candidates, competitors, now=now, settles_at=settles_at)
    return Plan(
        request.request_id,
        verdict,
        reason,
        window,
        settles_at,
        tuple(candidates),
        tuple(competitors),
        tuple(passed),
    )


def _not_a_candidate(request: UnknownRequest, message: OutboundMessage, window: Window) -> str | None:
    if message.first_report_at is None:
        return "no dated delivery report"
    if not same_number(message.to, request.to):
        return f"TO {message.to} is not the request's {request.to}"
    if not same_number(message.from_, request.from_):
        return f"FROM {message.from_} is not the request's {request.from_}"
    if not window.contains(message.first_report_at):
        return f"first report at {_iso(message.first_report_at)} is outside the attempt window"
    return None


def _accepted_competitor(
    request: UnknownRequest, message: OutboundMessage, window: Window, policy: Policy
) -> Competitor | None:
    """An accepted request (the message's REQUEST item) to the same TO/FROM whose window around its
    acceptance overlaps the request's: it could be the sender of any candidate."""
    to, from_ = message.request_to or message.to, message.request_from or message.from_
    if not (same_number(to, request.to) and same_number(from_, request.from_)):
        return None
    accepted = message.accepted_at or message.first_report_at
    if accepted is None:
        return None
    other_window = Window(accepted - policy.before, accepted + policy.after)
    if not other_window.overlaps(window):
        return None
    return Competitor(str(message.request_id), "ACCEPTED", other_window, message.tracking_id)


def _verdict(
    candidates: list[Candidate], competitors: list[Competitor], *, now: datetime, settles_at: datetime
) -> tuple[Verdict, str]:
    problems = []
    if len(candidates) > 1:
        problems.append(f"{len(candidates)} candidate messages")
    if competitors:
        named = ", ".join(f"{c.request_id} ({c.status})" for c in competitors)
        noun = "another request" if len(competitors) == 1 else f"{len(competitors)} other requests"
        problems.append(f"{noun} to this number in the window: {named}")
    if problems:
        return Verdict.AMBIGUOUS, "; ".join(problems)
    settled = now >= settles_at
    if not candidates:
        so_far = "" if settled else f" so far (the window settles at {_iso(settles_at)})"
        return Verdict.NONE, f"no unlinked message to this number from this sender in the window{so_far}"
    if not settled:
        return (
            Verdict.LIKELY,
            f"one candidate message so far; linked after {_iso(settles_at)} if nothing else turns up",
        )
    return Verdict.LINK, "one candidate message, and no other request to this number in the window"


def _iso(moment: datetime) -> str:
    return iso(moment)
