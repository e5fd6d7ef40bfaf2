"""The reconciliation planner (mmsbridge.sending.reconcile), pure: which unlinked outbound message is an
OUTCOME_UNKNOWN request's, and when it may be linked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mmsbridge.core.times import iso
from mmsbridge.sending.reconcile import (
    OutboundMessage,
    Policy,
    UnknownRequest,
    Verdict,
    outbound_message,
    plan,
)

CALL = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
POLICY = Policy()
SETTLED = CALL + timedelta(hours=2)  # the window (15 min) and the settling time (30 min) are long past
TO, FROM = "17743199144", "47215"


def request(
    request_id: str = "req-a", *, at: datetime = CALL, to: str = TO, from_: str = FROM
) -> UnknownRequest:
    """A request claimed at `at` whose one call ended unknown 1.5 s later."""
    return UnknownRequest(
        request_id, to, from_, first_claim=at, unknown_at=at + timedelta(seconds=1.5), attempts=()
    )


def message(
    tracking_id: str,
    *,
    after_s: float = 0.4,
    to: str = TO,
    from_: str = FROM,
    codes: tuple[str, ...] = ("N201", "N202"),
    request_id: str | None = None,
    accepted_after_s: float | None = None,
) -> OutboundMessage:
    """A message whose first report came `after_s` seconds after CALL."""
    return OutboundMessage(
        tracking_id=tracking_id,
        to=to,
        from_=from_,
        first_report_at=CALL + timedelta(seconds=after_s),
        first_report_code=codes[0],
        codes=codes,
        state="DELIVERED",
        state_code=codes[-1],
        request_id=request_id,
        request_to=to if request_id else None,
        request_from=from_ if request_id else None,
        accepted_at=CALL + timedelta(seconds=accepted_after_s) if accepted_after_s is not None else None,
    )


def test_one_candidate_and_nothing_competing_is_linked_with_its_evidence():
    decided = plan(request(), [message("T-1")], now=SETTLED)
    assert decided.verdict is Verdict.LINK
    assert decided.likely is not None
    assert decided.likely.tracking_id == "T-1"
    evidence = decided.to_json()["candidates"][0]
    assert evidence["tracking_id"] == "T-1"
    assert (evidence["to"], evidence["from"], evidence["to_matches"], evidence["from_matches"]) == (
        TO,
        FROM,
        True,
        True,
    )
    assert evidence["first_report_at"] == iso(CALL + timedelta(seconds=0.4))
    assert evidence["first_report_code"] == "N201"
    assert evidence["codes"] == ["N201", "N202"]
    assert evidence["after_first_claim_s"] == 0.4
    assert evidence["after_unknown_s"] == -1.1
    assert decided.window.start == CALL - POLICY.before
    assert decided.window.end == CALL + timedelta(seconds=1.5) + POLICY.after


def test_one_candidate_is_only_likely_until_the_window_has_settled():
    decided = plan(request(), [message("T-1")], now=CALL + timedelta(minutes=5))
    assert decided.verdict is Verdict.LIKELY
    assert decided.likely is not None
    assert decided.likely.tracking_id == "T-1"
    assert decided.settles_at == CALL + timedelta(seconds=1.5) + POLICY.after + POLICY.settle
    assert "linked after" in decided.reason
    later = plan(request(), [message("T-1")], now=decided.settles_at)
    assert later.verdict is Verdict.LINK


def test_two_candidates_are_never_linked_and_say_why():
    decided = plan(request(), [message("T-1"), message("T-2", after_s=40)], now=SETTLED)
    assert decided.verdict is Verdict.AMBIGUOUS
    assert decided.likely is None
    assert decided.reason == "2 candidate messages"
    assert [c.tracking_id for c in decided.candidates] == ["T-1", "T-2"]


def test_another_unknown_request_to_the_number_in_the_window_competes():
    other = request("req-b", at=CALL + timedelta(minutes=3))
    decided = plan(request(), [message("T-1")], [other], now=SETTLED)
    assert decided.verdict is Verdict.AMBIGUOUS
    assert decided.likely is None
    assert decided.reason == "another request to this number in the window: req-b (OUTCOME_UNKNOWN)"
    assert [c.request_id for c in decided.competitors] == ["req-b"]


def test_an_accepted_request_to_the_number_in_the_window_competes():
    accepted = message("T-9", after_s=120, request_id="req-c", accepted_after_s=119.5)
    decided = plan(request(), [message("T-1"), accepted], now=SETTLED)
    assert decided.verdict is Verdict.AMBIGUOUS
    assert decided.reason == "another request to this number in the window: req-c (ACCEPTED)"
    assert [c.tracking_id for c in decided.candidates] == ["T-1"]  # a linked message is no candidate


def test_requests_to_other_numbers_or_far_apart_in_time_do_not_compete():
    others = [
        request("req-other-number", to="13125550147"),
        request("req-other-sender", from_="47216"),
        request("req-next-day", at=CALL + timedelta(days=1)),
        request("req-a"),  # itself, as the worklist lists it
    ]
    far_accepted = message("T-8", after_s=-3600, request_id="req-d", accepted_after_s=-3600)
    decided = plan(request(), [message("T-1"), far_accepted], others, now=SETTLED)
    assert decided.verdict is Verdict.LINK
    assert decided.competitors == ()
    assert ("T-8", "linked to request req-d") in decided.passed


@pytest.mark.parametrize(
    ("after_s", "inside"),
    [
        (-61, False),  # more than a minute before the first claim
        (-59, True),  # the provider's whole-second TIMESTAMP, a clock a little ahead
        (1.5 + 15 * 60, True),  # the window's last moment
        (1.5 + 15 * 60 + 1, False),
        (3600, False),
    ],
)
def test_a_report_outside_the_attempt_window_is_no_candidate(after_s, inside):
    decided = plan(request(), [message("T-1", after_s=after_s)], now=SETTLED)
    if inside:
        assert decided.verdict is Verdict.LINK
        return
    assert decided.verdict is Verdict.NONE
    assert decided.candidates == ()
    ((tracking_id, why),) = decided.passed
    assert tracking_id == "T-1"
    assert "outside the attempt window" in why
    assert decided.reason == "no unlinked message to this number from this sender in the window"


def test_a_message_from_another_sender_is_no_candidate():
    decided = plan(request(), [message("T-1", from_="47216")], now=SETTLED)
    assert decided.verdict is Verdict.NONE
    assert decided.passed == (("T-1", f"FROM 47216 is not the request's {FROM}"),)


def test_a_message_to_another_number_is_no_candidate():
    decided = plan(request(), [message("T-1", to="13125550147")], now=SETTLED)
    assert decided.verdict is Verdict.NONE
    assert decided.passed == (("T-1", f"TO 13125550147 is not the request's {TO}"),)


def test_numbers_compare_by_their_digits():
    decided = plan(request(from_="47215"), [message("T-1", to=f"+{TO}", from_=" 47215")], now=SETTLED)
    assert decided.verdict is Verdict.LINK


def test_the_request_from_its_ledger_and_a_message_from_its_view():
    ledger = {
        "request_id": "req-a",
        "to": TO,
        "from": FROM,
        "received_at": "2026-03-02T10:00:00.000000Z",
        "updated_at": "2026-03-02T10:00:01.500000Z",
        "attempt_log": [{"at": "2026-03-02T10:00:01.500000Z", "outcome": "outcome_unknown"}],
    }
    parsed = UnknownRequest.from_ledger(ledger)
    assert parsed is not None
    assert (parsed.first_claim, parsed.unknown_at) == (CALL, CALL + timedelta(seconds=1.5))
    assert parsed.attempts == ((CALL + timedelta(seconds=1.5), "outcome_unknown"),)
    assert UnknownRequest.from_ledger({**ledger, "to": None}) is None

    view = {
        "tracking_id": "T-1",
        "to": TO,
        "from": FROM,
        "state": "DELIVERED",
        "state_code": "N202",
        "history": [
            {"origin": "SMS_MT", "kind": "DELIVERY", "code": "N202", "timestamp_utc": "2026-03-02T10:00:01Z"},
            {
                "origin": "SMS_MT",
                "kind": "DELIVERY",
                "code": "N201",
                "timestamp_utc": "2026-03-02T10:00:00.4Z",
            },
            {"origin": "MMS_MT", "kind": "DDM", "code": "N501", "timestamp_utc": "2026-03-02T09:00:00Z"},
        ],
    }
    found = outbound_message(view)
    assert (found.first_report_code, found.codes) == ("N201", ("N201", "N202"))
    assert found.first_report_at == CALL + timedelta(seconds=0.4)
    assert not found.linked
    linked = outbound_message({**view, "request": {"request_id": "req-z", "to": TO, "from": FROM}})
    assert linked.linked
    assert linked.request_id == "req-z"
