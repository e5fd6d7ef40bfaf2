"""From the state table's stream records to events, pure: which item kinds publish what, and when.

Every stream record yields at most one event:

  MSG#<trackingid> / RANK#<rank>#<code>      INSERT          Message State Changed, if the state changed
  TPL#<mmsid> / RANK#<rank>#<code>           INSERT          Template Status Changed (to READY or BROKEN),
                                                             if the state changed
  IN#<origin>#<id> / MSG                     INSERT          Inbound Message Received
  SUB#<mobile> / CAMPAIGN#<id>#AT#...        INSERT          Subscription Changed (scope campaign), if it
                                                             changed
  EMAILSUB#<email> / CAMPAIGN#<id>#AT#...    INSERT          Subscription Changed (scope email_campaign), if
                                                             it changed
  SUPPRESS#<mobile> / AT#...                 INSERT          Subscription Changed (scope suppression_list),
                                                             if it changed
  REQ#<id> or REJECTED#<sha256> / REQUEST    INSERT, MODIFY  Send Request Settled, when the status became a
                                                             final one

Anything else, every REMOVE (TTL expiry) and every MODIFY of a marker, an inbound message or a subscription
item (a re-put of an item that already existed: a provider retry, an `ops replay`, the stale check leaving
the open index) publishes nothing. A put that changes nothing writes no stream record at all.

**The current-state rule.** Markers (and subscription items) are plain puts in arrival order, and the state
is computed from all of them: the highest-ranked marker (the newest subscription item, by its time in the
sort key). An inserted item M is a change only if it became the state when it arrived: its rank (sort key)
is above that of every item of the same state that existed before it, and for a subscription its value
differs from the one it replaced. "Existed before" is decided per other item N, read from the table at
publish time (the read can include items written after M, since the stream lags):
  1. both carry an arrival stamp: N existed before M iff (N's stamp, N's sort key) < (M's, M's);
  2. otherwise, N did not exist before M if N's INSERT comes after M's in the same stream batch;
  3. otherwise N counts as existing before M.
The arrival stamp is an item's `received_at` when it has one; the sender's SUBMITTED marker arrived at its
`at` (the acceptance time) or, for a message linked by reconciliation, at the outbound record's
`reconciled_at`. The consumer writes no `received_at` (a provider's retry must leave its items as they are),
so for its items rules 2 and 3 decide. Rule 3 errs towards publishing nothing: a lagging publisher may skip
an intermediate state that was overtaken before publication, and name as `old_state` a lower one that
arrived later, but never publishes a late, lower-ranked state, and always publishes the newest
(docs/events.md, "Only changes publish").

**The event id** (`detail.event_id`, since PutEvents does not let a producer set the envelope's id) is a
SHA-256 of the detail type and what the event reports: the item's key, plus the new state (state events) or
the status and the time it was settled (send requests, whose one ledger item can settle more than once). It
is the same whenever the same stream record is processed again, so subscribers can deduplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from mmsbridge.core.states import MessageState, TemplateState
from mmsbridge.core.table_model import UNDATED

__all__ = [
    "FINAL_SEND_STATUSES",
    "MAX_ENTRY_BYTES",
    "SOURCE",
    "DetailType",
    "Event",
    "PartitionRead",
    "StreamChange",
    "arrival",
    "decide",
    "entry_size",
    "event_id",
    "partition_read",
    "put_events_entry",
]

SOURCE: Final = "mmsbridge"
MAX_ENTRY_BYTES: Final = 256 * 1024  # EventBridge's limit on one entry (and on one PutEvents request)
# The sender's final ledger statuses (mmsbridge.sending.ledger.FINAL; the tests check they agree).
FINAL_SEND_STATUSES: Final = frozenset({"ACCEPTED", "REJECTED", "SUPPRESSED", "FAILED", "OUTCOME_UNKNOWN"})
_PUBLISHED_TEMPLATE_STATES: Final = frozenset({TemplateState.READY.value, TemplateState.BROKEN.value})
_MESSAGE_STATES: Final = frozenset(state.value for state in MessageState)
_RANK_PREFIX: Final = "RANK#"
_LEDGER_SK: Final = "REQUEST"
_INSERT, _MODIFY = "INSERT", "MODIFY"


class DetailType(StrEnum):
    MESSAGE_STATE_CHANGED = "Message State Changed"
    INBOUND_MESSAGE_RECEIVED = "Inbound Message Received"
    SUBSCRIPTION_CHANGED = "Subscription Changed"
    SEND_REQUEST_SETTLED = "Send Request Settled"
    TEMPLATE_STATUS_CHANGED = "Template Status Changed"


@dataclass(frozen=True, slots=True)
class StreamChange:
    """One stream record, its images as plain items (`record_id`: the record's SequenceNumber)."""

    record_id: str
    event_name: str  # INSERT, MODIFY or REMOVE
    pk: str
    sk: str
    new: Mapping[str, Any] | None = None
    old: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.pk, self.sk)


@dataclass(frozen=True, slots=True)
class PartitionRead:
    """The items a decision needs: those under `pk` whose sort key starts with `sk_prefix` (None: any)."""

    pk: str
    sk_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    detail_type: DetailType
    detail: dict[str, Any] = field(hash=False)
    record_id: str

    @property
    def event_id(self) -> str:
        return str(self.detail["event_id"])


# -- what a record needs read -------------------------------------------------------------------------------
def _kind(change: StreamChange) -> str | None:
    """Which rule applies to a record's item, from its key and type (None: the item publishes nothing)."""
    item = change.new
    if item is None or change.event_name not in (_INSERT, _MODIFY):
        return None
    kind = item.get("type")
    if change.sk == _LEDGER_SK and kind == "send_request":
        return "send_request"
    if change.event_name != _INSERT:
        return None
    if kind == "message_state" and change.pk.startswith("MSG#") and change.sk.startswith(_RANK_PREFIX):
        return "message_state"
    if kind == "template" and change.pk.startswith("TPL#") and change.sk.startswith(_RANK_PREFIX):
        return "template"
    if kind == "inbound" and change.pk.startswith("IN#") and change.sk == "MSG":
        return "inbound"
    if kind in _SCOPES and change.pk.startswith(_SCOPES[kind][1]):
        return kind
    return None


# item type -> (event scope, partition prefix, sort-key prefix of one state, the opted-in value)
_SCOPES: Final[Mapping[str, tuple[str, str, Callable[[Mapping[str, Any]], str], str]]] = {
    "subscription": (
        "campaign",
        "SUB#",
        lambda item: f"CAMPAIGN#{item.get('campaign_id') or ''}#AT#",
        "subscribed",
    ),
    "email_subscription": (
        "email_campaign",
        "EMAILSUB#",
        lambda item: f"CAMPAIGN#{item.get('campaign_id') or ''}#AT#",
        "subscribed",
    ),
    "suppression": ("suppression_list", "SUPPRESS#", lambda item: "AT#", "suppressed"),
}


def partition_read(change: StreamChange) -> PartitionRead | None:
    """The read `decide` needs for this record, or None when it decides from the record alone."""
    kind = _kind(change)
    if kind == "message_state":
        return PartitionRead(change.pk)  # markers, the outbound record and the history: a few items
    if kind == "template":
        return PartitionRead(change.pk, _RANK_PREFIX)
    if kind in _SCOPES and change.new is not None:
        return PartitionRead(change.pk, _SCOPES[kind][2](change.new))
    return None


# -- deciding -----------------------------------------------------------------------------------------------
def decide(
    change: StreamChange,
    partition: Sequence[Mapping[str, Any]] | None = None,
    *,
    inserted_later: Collection[tuple[str, str]] = (),
) -> Event | None:
    """The event a stream record publishes, or None.

    `partition`: the items `partition_read(change)` names, as read at publish time. `inserted_later`: keys
    of items whose INSERT records come after this one in the same batch (they did not exist before it).
    """
    kind = _kind(change)
    item = change.new
    if kind is None or item is None:
        return None
    if kind == "send_request":
        return _send_request_settled(change, item)
    if kind == "inbound":
        return _inbound_received(change, item)
    items = list(partition or ())
    if kind == "message_state":
        return _message_state_changed(change, item, items, inserted_later)
    if kind == "template":
        return _template_status_changed(change, item, items, inserted_later)
    return _subscription_changed(change, kind, item, items, inserted_later)


def arrival(item: Mapping[str, Any], outbound: Mapping[str, Any] | None = None) -> str | None:
    """When an item arrived in the table (an ISO time), or None when it does not say."""
    stamp = item.get("received_at")
    if isinstance(stamp, str) and stamp:
        return stamp
    if item.get("type") == "message_state" and item.get("code") == MessageState.SUBMITTED.value:
        reconciled = (outbound or {}).get("reconciled_at")
        if isinstance(reconciled, str) and reconciled:
            return reconciled
        at = item.get("at")
        if isinstance(at, str) and at and at != UNDATED:
            return at
    return None


def _existed_before(
    other: Mapping[str, Any],
    item: Mapping[str, Any],
    inserted_later: Collection[tuple[str, str]],
    outbound: Mapping[str, Any] | None = None,
) -> bool:
    mine, theirs = arrival(item, outbound), arrival(other, outbound)
    if mine is not None and theirs is not None:
        return (theirs, str(other["sk"])) < (mine, str(item["sk"]))
    return (other["pk"], other["sk"]) not in inserted_later


def _prior(
    item: Mapping[str, Any],
    others: Iterable[Mapping[str, Any]],
    inserted_later: Collection[tuple[str, str]],
    outbound: Mapping[str, Any] | None = None,
) -> list[Mapping[str, Any]]:
    key = (item["pk"], item["sk"])
    return [
        other
        for other in others
        if (other.get("pk"), other.get("sk")) != key
        and _existed_before(other, item, inserted_later, outbound)
    ]


def _rank(item: Mapping[str, Any]) -> int:
    return int(item.get("rank", -1))


def _state_before(
    item: Mapping[str, Any], prior: Sequence[Mapping[str, Any]]
) -> tuple[bool, Mapping[str, Any] | None]:
    """(whether the inserted marker raised the state, the marker that held it before)."""
    top = max(prior, key=lambda marker: (_rank(marker), str(marker["sk"])), default=None)
    return (top is None or _rank(item) > _rank(top)), top


def _message_state_changed(
    change: StreamChange,
    marker: Mapping[str, Any],
    partition: Sequence[Mapping[str, Any]],
    inserted_later: Collection[tuple[str, str]],
) -> Event | None:
    if marker.get("state") not in _MESSAGE_STATES:
        return None
    outbound = next((i for i in partition if i.get("sk") == _LEDGER_SK and i.get("type") == "outbound"), None)
    markers = [
        i
        for i in partition
        if str(i.get("sk", "")).startswith(_RANK_PREFIX) and i.get("type") == "message_state"
    ]
    prior = _prior(marker, markers, inserted_later, outbound)
    raised, top = _state_before(marker, prior)
    if not raised:
        return None
    new_state = str(marker["state"])
    report = _report(marker, partition)
    fields = (report or {}).get("fields") or {}
    details = fields.get("STATUSDETAILS")
    if details is None and new_state == MessageState.SUBMITTED.value and outbound is not None:
        details = outbound.get("status_details")
    earlier_finals = {
        str(m.get("state"))
        for m in prior
        if _rank(m) >= MessageState.FAILED.rank and m.get("state") != new_state
    }
    tracking_id = str(marker.get("tracking_id") or change.pk.removeprefix("MSG#"))
    detail = {
        "tracking_id": tracking_id,
        "request_id": _text((outbound or {}).get("request_id")),
        "to": _text((outbound or {}).get("to")) or _text(fields.get("TO")),
        "from": _text((outbound or {}).get("from")) or _text(fields.get("FROM")),
        "old_state": _text(top.get("state")) if top is not None else None,
        "new_state": new_state,
        "code": str(marker.get("code") or ""),
        "failure_reason": _text(marker.get("failure_reason")),
        "status_details": _text(details),
        "provider_time": _time(marker.get("at")),
        "via_link": bool(marker.get("via_link")),
        "conflict": MessageState(new_state).terminal and bool(earlier_finals),
    }
    return _event(DetailType.MESSAGE_STATE_CHANGED, change, detail, new_state)


def _report(marker: Mapping[str, Any], partition: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The history item of the postback that wrote the marker (same archived bytes, same code)."""
    raw_key = marker.get("raw_key")
    if not raw_key:
        return None
    return next(
        (
            i
            for i in partition
            if str(i.get("sk", "")).startswith("EVT#")
            and i.get("raw_key") == raw_key
            and i.get("code") == marker.get("code")
        ),
        None,
    )


def _template_status_changed(
    change: StreamChange,
    marker: Mapping[str, Any],
    partition: Sequence[Mapping[str, Any]],
    inserted_later: Collection[tuple[str, str]],
) -> Event | None:
    new_state = marker.get("state")
    if new_state not in _PUBLISHED_TEMPLATE_STATES:
        return None
    markers = [i for i in partition if str(i.get("sk", "")).startswith(_RANK_PREFIX)]
    raised, top = _state_before(marker, _prior(marker, markers, inserted_later))
    if not raised:
        return None
    detail = {
        "mms_id": str(marker.get("mms_id") or change.pk.removeprefix("TPL#")),
        "old_state": _text(top.get("state")) if top is not None else None,
        "new_state": str(new_state),
        "code": str(marker.get("code") or ""),
        "failure_reason": _text(marker.get("failure_reason")),
        "provider_time": _time(marker.get("at")),
        "audio_name": _text(marker.get("audioname")),
        "video_name": _text(marker.get("videoname")),
    }
    return _event(DetailType.TEMPLATE_STATUS_CHANGED, change, detail, str(new_state))


def _inbound_received(change: StreamChange, item: Mapping[str, Any]) -> Event:
    origin = str(item.get("origin") or "")
    detail = {
        "id": str(item.get("id") or ""),
        "kind": "MMS" if origin == "MMS_MO" else "SMS",
        "origin": origin,
        "code": str(item.get("code") or ""),
        "from": _text(item.get("from")),
        "to": _text(item.get("to")),
        "text": _text(item.get("text")),
        "keyword": _text(item.get("keyword")),
        "subject": _text(item.get("subject")),
        "files": [str(url) for url in item.get("files") or ()],
        "carrier": _text(item.get("carrier")),
        "provider_time": _time(item.get("time")),
        "stop": bool(item.get("stop")),
    }
    return _event(DetailType.INBOUND_MESSAGE_RECEIVED, change, detail)


def _subscription_changed(
    change: StreamChange,
    kind: str,
    item: Mapping[str, Any],
    partition: Sequence[Mapping[str, Any]],
    inserted_later: Collection[tuple[str, str]],
) -> Event | None:
    scope, _, state_prefix, value_name = _SCOPES[kind]
    prefix = state_prefix(item)
    if not change.sk.startswith(prefix):
        return None
    opted_in = _opted_in(item, value_name)
    if opted_in is None:
        return None
    others = [i for i in partition if str(i.get("sk", "")).startswith(prefix)]
    prior = _prior(item, others, inserted_later)
    top = max(prior, key=lambda other: str(other["sk"]), default=None)
    if top is not None and (str(top["sk"]) > change.sk or _opted_in(top, value_name) == opted_in):
        return None  # a late, older report, or no change
    detail = {
        "scope": scope,
        "mobile": _text(item.get("mobile")),
        "email": _text(item.get("email")),
        "campaign_id": _text(item.get("campaign_id")) if scope != "suppression_list" else None,
        "opted_in": opted_in,
        "was_opted_in": _opted_in(top, value_name) if top is not None else None,
        "code": str(item.get("code") or ""),
        "source": _text(item.get("source")),
        "shortcode": _text(item.get("shortcode")),
        "campaign_title": _text(item.get("campaign_title")),
        "time": _time(item.get("at")),
    }
    return _event(DetailType.SUBSCRIPTION_CHANGED, change, detail)


def _opted_in(item: Mapping[str, Any], value_name: str) -> bool | None:
    value = item.get(value_name)
    if not isinstance(value, bool):
        return None
    return (not value) if value_name == "suppressed" else value


def _send_request_settled(change: StreamChange, ledger: Mapping[str, Any]) -> Event | None:
    status = ledger.get("status")
    if status not in FINAL_SEND_STATUSES:
        return None
    previous = change.old.get("status") if change.old is not None else None
    if previous == status:
        return None  # rewritten without settling again
    reconciled = ledger.get("reconciled")
    detail = {
        "request_id": _text(ledger.get("request_id")),
        "status": str(status),
        "previous_status": _text(previous),
        "action": _text(ledger.get("action")),
        "to": _text(ledger.get("to")),
        "from": _text(ledger.get("from")),
        "campaign_ref": _text(ledger.get("campaign_ref")),
        "tracking_id": _text(ledger.get("tracking_id")),
        "reasons": [
            {"field": str(reason.get("field", "")), "reason": str(reason.get("reason", ""))}
            for reason in ledger.get("reasons") or ()
            if isinstance(reason, Mapping)
        ],
        "error_code": _text(ledger.get("error_code")),
        "error_class": _text(ledger.get("error_class")),
        "error_info": _text(ledger.get("error_info")),
        "outcome_unknown_reason": _text(ledger.get("outcome_unknown_reason")),
        "reconciled": isinstance(reconciled, Mapping),
        "received_at": _text(ledger.get("received_at")),
        "accepted_at": _text(ledger.get("accepted_at")),
        "settled_at": _text(ledger.get("updated_at")),
        "payload_sha256": _text(ledger.get("payload_sha256")),
    }
    return _event(
        DetailType.SEND_REQUEST_SETTLED, change, detail, str(status), str(ledger.get("updated_at") or "")
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _time(value: object) -> str | None:
    """An item's time, None when it has none (UNDATED)."""
    return value if isinstance(value, str) and value and value != UNDATED else None


# -- ids and entries ----------------------------------------------------------------------------------------
def event_id(detail_type: str, *reported: str) -> str:
    """A SHA-256 (hex) of the detail type and what the event reports: equal inputs, equal ids."""
    canonical = json.dumps([detail_type, *reported], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _event(detail_type: DetailType, change: StreamChange, detail: dict[str, Any], *reported: str) -> Event:
    stable = event_id(detail_type.value, change.pk, change.sk, *reported)
    return Event(detail_type, _fit({"event_id": stable, **detail}, detail_type), change.record_id)


def _detail_json(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it (Source, DetailType, Detail and Resources in UTF-8, 14 bytes
    for a Time)."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name) or "").encode("utf-8", "surrogatepass"))
    return size + sum(len(str(r).encode("utf-8", "surrogatepass")) for r in entry.get("Resources") or ())


def _fit(detail: dict[str, Any], detail_type: DetailType) -> dict[str, Any]:
    """The detail, with its longest texts halved until the entry fits EventBridge's limit (`truncated`)."""
    budget = MAX_ENTRY_BYTES - len(SOURCE) - len(detail_type.value.encode()) - 64
    while len(_detail_json(detail).encode("utf-8", "surrogatepass")) > budget:
        name, index, text = max(_texts(detail), key=lambda found: len(found[2]), default=("", None, ""))
        if not text:
            break  # nothing left to shorten: the publisher reports the entry as too large
        shortened = text[: len(text) // 2]
        if index is None:
            detail[name] = shortened
        else:
            detail[name][index] = shortened
        detail["truncated"] = True
    return detail


def _texts(detail: Mapping[str, Any]) -> Iterable[tuple[str, int | None, str]]:
    for name, value in detail.items():
        if name == "event_id":
            continue
        if isinstance(value, str):
            yield name, None, value
        elif isinstance(value, list):
            yield from ((name, i, v) for i, v in enumerate(value) if isinstance(v, str))


def put_events_entry(event: Event, bus_name: str) -> dict[str, Any]:
    """The PutEvents entry for an event on `bus_name` (a name or an ARN)."""
    return {
        "Source": SOURCE,
        "DetailType": event.detail_type.value,
        "Detail": _detail_json(event.detail),
        "EventBusName": bus_name,
    }
