"""DynamoDB access for reconciliation (reconcile.py decides): the OUTCOME_UNKNOWN worklist, the outbound
messages to a number around a request's window (gsi2 `OUT#<to>`), and the conditional link.

The link is one transaction, so it happens whole or not at all: the ledger goes from OUTCOME_UNKNOWN to
ACCEPTED (only if it is still the ledger that was read: status, `updated_at` and `version`), and the
message's outbound record is put (only if the message still has no REQUEST item), with the SUBMITTED marker
beside it as the sender writes them. Two runs at once, or a run and an operator's `resend`, cannot both act
on one request or one message: the second finds its condition false and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsbridge.aws.state_table import StateTable, to_dynamo
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import LEDGER_SK, SendStatus, ledger_key, outbound_items
from mmsbridge.sending.reconcile import (
    OutboundMessage,
    Plan,
    Policy,
    UnknownRequest,
    Verdict,
    outbound_message,
    plan,
)

__all__ = ["LinkOutcome", "Reconciler", "ReviewOutcome", "Reviewed", "RunResult"]

WORKLIST: Final = f"SEND#{SendStatus.OUTCOME_UNKNOWN.value}"
RECONCILED_OUTCOME: Final = "reconciled"
_LOG_MAX: Final = 20  # attempt log entries kept, as the sender keeps them (ledger_store.py)
_AFTER_ALL: Final = "~"  # sorts after `#`: `<iso>~` is after every `<iso>#<id>`
DEFAULT_POLICY: Final = Policy()
_MIN_TIME_LEFT_S: Final = 10.0  # stop planning with less time than this left in the invocation


class LinkOutcome(StrEnum):
    LINKED = "linked"
    REQUEST_CHANGED = "request_changed"  # the ledger is no longer the OUTCOME_UNKNOWN one that was read
    MESSAGE_LINKED = "message_linked"  # the message got a REQUEST item meanwhile


class ReviewOutcome(StrEnum):
    """What a run did with one OUTCOME_UNKNOWN request: a link's outcome, or why it made none."""

    LINKED = LinkOutcome.LINKED.value
    REQUEST_CHANGED = LinkOutcome.REQUEST_CHANGED.value
    MESSAGE_LINKED = LinkOutcome.MESSAGE_LINKED.value
    WOULD_LINK = "would_link"  # a dry run's link
    NOT_LINKED = "not_linked"  # the plan does not say link
    UNPLANNABLE = "unplannable"  # the ledger lacks what its window is made of


@dataclass
class Reviewed:
    """One OUTCOME_UNKNOWN request as a run found it, and what became of it."""

    ledger: dict[str, Any]
    plan: Plan | None  # None: the ledger lacks what its window is made of
    outcome: ReviewOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.ledger.get("request_id"),
            "to": self.ledger.get("to"),
            "from": self.ledger.get("from"),
            "outcome": self.outcome,
            **(
                self.plan.to_json()
                if self.plan is not None
                else {"verdict": None, "reason": "the ledger lacks its to, from or times"}
            ),
        }


@dataclass
class RunResult:
    at: datetime
    dry_run: bool
    reviewed: list[Reviewed] = field(default_factory=list)
    deferred: int = 0  # requests left for the next run (the invocation's time ran short)

    def count(self, outcome: ReviewOutcome | str) -> int:
        return sum(1 for r in self.reviewed if r.outcome == outcome)


class Reconciler:
    def __init__(self, table: StateTable, policy: Policy = DEFAULT_POLICY) -> None:
        self._table = table
        self.policy = policy

    # -- reads ---------------------------------------------------------------------------------------------
    def worklist(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[dict[str, Any]]:
        """OUTCOME_UNKNOWN ledgers (gsi1 `SEND#OUTCOME_UNKNOWN`), oldest status first."""
        bounds = None
        if since is not None or until is not None:
            bounds = (iso(since) if since else "0", iso(until) if until else _AFTER_ALL)
        return list(self._table.query(WORKLIST, index="gsi1", sk_between=bounds))

    def messages(self, to: str, low: datetime, high: datetime) -> list[OutboundMessage]:
        """Outbound messages with an item on `OUT#<to>` between `low` and `high`, each read whole."""
        tracking_ids: dict[str, None] = {}
        for item in self._table.query(
            f"OUT#{to}", index="gsi2", sk_between=(iso(low), iso(high) + _AFTER_ALL)
        ):
            tracking_ids.setdefault(str(item["pk"]).removeprefix("MSG#"), None)
        views = (self._table.message(tracking_id) for tracking_id in tracking_ids)
        return [outbound_message(view) for view in views if view is not None]

    def plan(
        self,
        ledger: dict[str, Any],
        *,
        now: datetime,
        others: list[UnknownRequest] | None = None,
    ) -> Plan | None:
        """The plan for one OUTCOME_UNKNOWN ledger. `others`: the worklist, when the caller has read it."""
        request = UnknownRequest.from_ledger(ledger)
        if request is None:
            return None
        window = request.window(self.policy)
        # Wide enough for an accepted request whose window (around its acceptance) overlaps this one.
        messages = self.messages(
            request.to, window.start - self.policy.after, window.end + self.policy.before
        )
        if others is None:
            others = unknown_requests(self.worklist())
        return plan(request, messages, others, now=now, policy=self.policy)

    # -- the link -----------------------------------------------------------------------------------------
    def link(self, ledger: dict[str, Any], decided: Plan, *, now: datetime, by: str) -> LinkOutcome:
        """Settle the ledger ACCEPTED with its one candidate (a LINK plan), or change nothing."""
        candidate = decided.likely
        if decided.verdict is not Verdict.LINK or candidate is None:
            raise ValueError(f"not a plan to link: {decided.verdict} ({decided.reason})")
        stamp = iso(now)
        first_report = iso(candidate.first_report_at)
        detail = (
            f"linked to message {candidate.tracking_id}: first report {candidate.first_report_code} at "
            f"{first_report}, {candidate.after_first_claim_s:.1f} s after the first claim; same TO and FROM "
            f"({by})"
        )
        entries = [
            *ledger.get("attempt_log", []),
            {"at": stamp, "outcome": RECONCILED_OUTCOME, "detail": detail},
        ]
        if len(entries) > _LOG_MAX:
            entries = [entries[0], *entries[-(_LOG_MAX - 1) :]]
        settled = {
            **{
                name: value
                for name, value in ledger.items()
                if name not in ("gsi1pk", "gsi1sk", "lease_until")
            },
            "status": SendStatus.ACCEPTED.value,
            "tracking_id": candidate.tracking_id,
            "accepted_at": first_report,  # the earliest moment the provider is known to have had it
            "provider_to": candidate.to,
            "provider_from": candidate.from_,
            "reconciled": {
                "at": stamp,
                "by": by,
                "how": "the one unlinked message to the request's TO from its FROM whose first report fell "
                "in its attempt window, with no other request to that number in the window",
                "tracking_id": candidate.tracking_id,
                "first_report_at": first_report,
                "first_report_code": candidate.first_report_code,
                "codes": list(candidate.codes),
                "to": candidate.to,
                "from": candidate.from_,
                "window_start": iso(decided.window.start),
                "window_end": iso(decided.window.end),
                "previous_status": SendStatus.OUTCOME_UNKNOWN.value,
            },
            "updated_at": stamp,
            "attempt_log": entries,
            "version": int(ledger.get("version", 0)) + 1,
        }
        if candidate.mms_id:
            settled["provider_mms_id"] = candidate.mms_id
        outbound, marker = outbound_items(settled)
        outbound.update(reconciled_at=stamp, reconciled_by=by)
        expires = _expiry(self._table, candidate.tracking_id)
        if expires is not None:  # the link expires with the message's reports
            outbound["expires_at"] = marker["expires_at"] = expires
        condition, values = (
            "#status = :unknown AND updated_at = :updated",
            {
                ":unknown": SendStatus.OUTCOME_UNKNOWN.value,
                ":updated": ledger.get("updated_at"),
            },
        )
        if "version" in ledger:
            condition += " AND version = :version"
            values[":version"] = int(ledger["version"])
        else:
            condition += " AND attribute_not_exists(version)"
        try:
            self._table.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": to_dynamo(settled),
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": to_dynamo(values),
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": to_dynamo(outbound),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self._table.name, "Item": to_dynamo(marker)}},
                ]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons") or []]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return LinkOutcome.REQUEST_CHANGED
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                return LinkOutcome.MESSAGE_LINKED
            raise
        return LinkOutcome.LINKED

    # -- a run ---------------------------------------------------------------------------------------------
    def run(
        self,
        *,
        now: datetime,
        by: str,
        since: datetime | None = None,
        until: datetime | None = None,
        dry_run: bool = False,
        time_left: Callable[[], float] | None = None,
    ) -> RunResult:
        """Plan every OUTCOME_UNKNOWN request that got its status between `since` and `until`, and link each
        whose plan says so (unless `dry_run`). Competitors are looked for in the whole worklist."""
        result = RunResult(now, dry_run)
        worklist = self.worklist()
        others = unknown_requests(worklist)
        selected = self.worklist(since=since, until=until) if since or until else worklist
        for position, ledger in enumerate(selected):
            if time_left is not None and time_left() < _MIN_TIME_LEFT_S:
                result.deferred = len(selected) - position
                break
            decided = self.plan(ledger, now=now, others=others)
            if decided is None:
                result.reviewed.append(Reviewed(ledger, None, ReviewOutcome.UNPLANNABLE))
            elif decided.verdict is not Verdict.LINK:
                result.reviewed.append(Reviewed(ledger, decided, ReviewOutcome.NOT_LINKED))
            elif dry_run:
                result.reviewed.append(Reviewed(ledger, decided, ReviewOutcome.WOULD_LINK))
            else:
                outcome = self.link(ledger, decided, now=now, by=by)
                result.reviewed.append(Reviewed(ledger, decided, ReviewOutcome(outcome)))
        return result

    def ledger(self, request_id: str) -> dict[str, Any] | None:
        key = ledger_key(request_id)
        return self._table.get(key["pk"], LEDGER_SK)


def unknown_requests(ledgers: list[dict[str, Any]]) -> list[UnknownRequest]:
    return [request for ledger in ledgers if (request := UnknownRequest.from_ledger(ledger)) is not None]


def _expiry(table: StateTable, tracking_id: str) -> int | None:
    """The latest `expires_at` of the message's own items (its reports), None when they never expire."""
    found = [
        int(item["expires_at"])
        for item in table.query(f"MSG#{tracking_id}", sk_prefix="EVT#")
        if item.get("expires_at") is not None
    ]
    return max(found) if found else None
