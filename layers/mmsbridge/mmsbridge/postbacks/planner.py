"""From parsed postbacks to DynamoDB items, pure: the single-table model.

Every item is a pure function of the postback it records, under a key derived from the postback's semantic
key, so writing it again changes nothing, and a whole batch goes out as plain puts (BatchWriteItem, 25 at
a time): one call per batch, not one per record. State is order-independent by construction: each
state-changing event writes a *rank marker* (`RANK#<rank>#<code>`) next to the history, and a message's
current state is its highest-ranked marker, the first item of one reverse Query. A late, lower-ranked
event only adds its own marker and history item; a second, different final report is a second final
marker: the conflict is visible, nothing is overwritten. Facts (send time, SENTAS, carrier) are read from
the history, so a late event still fills in what was missing.

The keys and the indexes are described in mmsbridge.core.table_model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mmsbridge.core.states import MessageState, PostbackKind, TemplateState
from mmsbridge.core.table_model import (
    UNDATED,
    UNRECOGNISED_PARTITION,
    UNRECOGNISED_PREFIX,
    Plan,
    inbound_day,
    inbound_shard,
    inbound_to,
    open_shard,
    outbound_index,
    rank_sk,
)
from mmsbridge.core.times import iso

if TYPE_CHECKING:
    # For annotations only: the stale function imports this module and never parses a postback.
    from mmsbridge.postbacks.reader import Postback

TEMPLATE_RANK = {TemplateState.ENCODING: 0, TemplateState.READY: 1, TemplateState.BROKEN: 2}
# sendMMS content reports on the template (MMSID) as well as on the message (§3.2).
_CONTENT_CODES = {
    "N013": TemplateState.READY,
    "E011": TemplateState.BROKEN,
    "E012": TemplateState.BROKEN,
    "E013": TemplateState.BROKEN,
}
_MESSAGE_KINDS = (PostbackKind.DELIVERY, PostbackKind.DDM, PostbackKind.MT_RECORD)
_MT_KINDS = (*_MESSAGE_KINDS, PostbackKind.TEMPLATE)
_MT_ORIGINS = ("MMS_MT", "SMS_MT")
# DynamoDB's limits on an index's key attributes: an item over them would fail the whole batch's write, so a
# report with an absurd TO or TRACKINGID stays off the index (it is still stored under its MSG# key).
_INDEX_PK_BYTES, _INDEX_SK_BYTES = 2048, 1024


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted postback, parsed, with where its bytes are and when they arrived."""

    record_id: str
    postback: Postback
    raw_key: str
    sha256: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Rejected:
    """One accepted postback that cannot be applied: it is quarantined with its reason."""

    record_id: str
    sha256: str
    raw_key: str | None
    reason: str
    detail: str
    received_at: datetime


# Items that hold a number's or an address's standing consent: kept for good whatever the retention, so an
# opt-out is honoured however long ago it came (their history events expire like any other).
STANDING = frozenset({"suppression", "subscription", "email_subscription"})


def plan_batch(
    received: Iterable[Received], rejected: Iterable[Rejected] = (), *, retention_days: int = 0
) -> Plan:
    plan = Plan(puts={}, owners={}, quarantine=[])
    for item in received:
        for record in _items(item):
            key = (record["pk"], record["sk"])
            if retention_days > 0 and record.get("type") not in STANDING:
                record["expires_at"] = _expiry(item, retention_days)
            if record["pk"].startswith(UNRECOGNISED_PREFIX):
                record.update(unrecognised_index(record, item.postback))
            plan.puts.setdefault(key, record)  # one put serves every record of the batch that needs it
            plan.owners.setdefault(key, set()).add(item.record_id)
    for item in rejected:
        moment = iso(item.received_at)
        plan.quarantine.append(
            (
                {
                    "pk": f"QUARANTINE#{item.sha256}",
                    "sk": "Q",
                    "type": "quarantine",
                    "sha256": item.sha256,
                    "raw_key": item.raw_key,
                    "reason": item.reason,
                    "detail": item.detail,
                    "first_seen": moment,
                    "gsi1pk": "QUARANTINE",
                    "gsi1sk": f"{moment}#{item.sha256}",
                },
                item.record_id,
            )
        )
    return plan


def _expiry(received: Received, retention_days: int) -> int:
    moment = received.postback.timestamp_utc or received.received_at
    return int(moment.timestamp()) + retention_days * 86400


def _moment(postback: Postback) -> str:
    """The event's own time, or UNDATED: never the receipt time, so a retry writes the same item."""
    if postback.timestamp_utc is not None and not postback.timestamp_derived:
        return iso(postback.timestamp_utc)
    return UNDATED


def _items(received: Received) -> list[dict[str, Any]]:
    postback = received.postback
    kind = postback.kind
    correlation = postback.correlation_id or postback.semantic_key
    items: list[dict[str, Any]] = []
    if kind in _MESSAGE_KINDS and postback.tracking_id:
        pk = f"MSG#{postback.tracking_id}"
        event = _event(pk, received)
        to = postback.fields.get("TO")
        if kind is PostbackKind.DELIVERY and postback.origin in _MT_ORIGINS and to:
            # Found by number and time (ops messages, reconciliation). A derived time (E101 has none) is the
            # first copy's receipt, the same for every copy, so the item stays a function of the postback.
            moment = iso(postback.timestamp_utc) if postback.timestamp_utc else UNDATED
            keys = outbound_index(to, moment, postback.tracking_id)
            if (
                len(keys["gsi2pk"].encode()) <= _INDEX_PK_BYTES
                and len(keys["gsi2sk"].encode()) <= _INDEX_SK_BYTES
            ):
                event.update(keys)
        items.append(event)
        if postback.state is not None:
            items.append(_message_marker(pk, postback.tracking_id, postback.state, received))
    elif kind in _MT_KINDS and not postback.mms_id:
        items.append(_event(f"OTHER#{postback.origin}#{correlation}", received))
    template_state = postback.template_state or _CONTENT_CODES.get(postback.code)
    if postback.origin == "MMS_MT" and postback.mms_id and template_state is not None:
        pk = f"TPL#{postback.mms_id}"
        items.append(_event(pk, received))
        items.append(
            _marker(
                pk,
                TEMPLATE_RANK[template_state],
                template_state.value,
                received,
                type="template",
                mms_id=postback.mms_id,
                audioname=postback.fields.get("AUDIONAME"),
                videoname=postback.fields.get("VIDEONAME"),
            )
        )
    get = postback.fields.get
    if kind in (PostbackKind.INBOUND_SMS, PostbackKind.INBOUND_MMS):
        items.append(_inbound(received))
        if postback.inbound_stop and get("FROM"):
            items.append(
                _suppression(get("FROM") or "", received, suppressed=True, source=f"{postback.origin} STOP")
            )
    elif kind is PostbackKind.SUBSCRIPTION:
        mobile, campaign = get("MOBILE") or "", get("CAMPAIGNID") or ""
        items.append(_event(f"SUB#{mobile}", received))
        items.append(
            _latest(
                f"SUB#{mobile}",
                f"CAMPAIGN#{campaign}#",
                received,
                type="subscription",
                mobile=mobile,
                campaign_id=campaign,
                subscribed=postback.subscribed,
                source=get("SOURCE"),
                shortcode=get("SHORTCODE"),
                campaign_title=get("CAMPAIGNTITLE"),
            )
        )
        if postback.subscribed is not None:
            items.append(
                _suppression(
                    mobile,
                    received,
                    suppressed=not postback.subscribed,
                    source=f"SUB {postback.code} campaign {campaign}",
                )
            )
    elif kind is PostbackKind.EMAIL_SUBSCRIPTION:
        email, campaign = get("EMAIL") or "", get("CAMPAIGNID") or ""
        items.append(_event(f"EMAILSUB#{email}", received))
        items.append(
            _latest(
                f"EMAILSUB#{email}",
                f"CAMPAIGN#{campaign}#",
                received,
                type="email_subscription",
                email=email,
                campaign_id=campaign,
                subscribed=postback.subscribed,
            )
        )
    elif kind is PostbackKind.PASS:
        items.append(_event(f"PASS#{correlation}", received))
    elif kind is PostbackKind.UNRECOGNISED:
        items.append(_event(f"OTHER#{postback.origin}#{correlation}", received))
    return items


def _event(pk: str, received: Received) -> dict[str, Any]:
    postback = received.postback
    return {
        "pk": pk,
        "sk": f"EVT#{_moment(postback)}#{postback.code}#{postback.semantic_key[:16]}",
        "type": "event",
        "origin": postback.origin,
        "code": postback.code,
        "kind": postback.kind.value,
        "dialect": postback.dialect,
        "state": postback.state.value if postback.state else None,
        "template_state": postback.template_state.value if postback.template_state else None,
        "failure_reason": postback.failure_reason,
        "via_link": postback.via_link,
        "alert": postback.alert,
        "fields": dict(postback.fields),
        "files": list(postback.files),
        "extras": dict(postback.extras),
        "timestamp_raw": postback.timestamp_raw,
        "timestamp_utc": iso(postback.timestamp_utc) if postback.timestamp_utc else None,
        "timestamp_derived": postback.timestamp_derived,
        "semantic_key": postback.semantic_key,
        "raw_key": received.raw_key,
        "sha256": received.sha256,
    }


def _marker(pk: str, rank: int, state: str, received: Received, **extra: Any) -> dict[str, Any]:
    postback = received.postback
    return {
        "pk": pk,
        "sk": rank_sk(rank, postback.code),
        "rank": rank,
        "state": state,
        "code": postback.code,
        "at": _moment(postback),
        "failure_reason": postback.failure_reason,
        "raw_key": received.raw_key,
        **extra,
    }


def _message_marker(pk: str, tracking_id: str, state: MessageState, received: Received) -> dict[str, Any]:
    postback = received.postback
    marker = _marker(
        pk,
        state.rank,
        state.value,
        received,
        type="message_state",
        tracking_id=tracking_id,
        via_link=postback.via_link,
    )
    if not state.terminal:
        # On the open index until the stale check finds a final marker next to it.
        marker["gsi1pk"] = open_shard(tracking_id)
        marker["gsi1sk"] = f"{marker['at']}#{tracking_id}"
    return marker


def _inbound(received: Received) -> dict[str, Any]:
    """An inbound message, listed by receiving number (gsi1) and by UTC day (gsi3) on the shard of its pk,
    and by sender (gsi2) on one partition: one phone does not send hundreds of messages a second, while a
    shortcode or a day takes every sender's (table_model.INBOUND_SHARDS)."""
    postback = received.postback
    get = postback.fields.get
    identifier = postback.correlation_id or postback.semantic_key[:32]
    moment = _moment(postback)
    pk = f"IN#{postback.origin}#{identifier}"
    shard = inbound_shard(pk)
    return {
        "pk": pk,
        "sk": "MSG",
        "type": "inbound",
        "origin": postback.origin,
        "code": postback.code,
        "id": identifier,
        "from": get("FROM"),
        "to": get("TO"),
        "text": get("TEXT"),
        "keyword": get("KEYWORD"),
        "subject": get("SUBJECT"),
        "files": list(postback.files),
        "carrier": get("SPID"),
        "time": moment,
        "timestamp_raw": postback.timestamp_raw,
        "stop": postback.inbound_stop,
        "fields": dict(postback.fields),
        "raw_key": received.raw_key,
        "sha256": received.sha256,
        "gsi1pk": inbound_to(get("TO") or "", shard),
        "gsi1sk": f"{moment}#{identifier}",
        "gsi2pk": f"FROM#{get('FROM') or ''}",
        "gsi2sk": f"{moment}#{identifier}",
        "gsi3pk": inbound_day(moment, shard),
        "gsi3sk": f"{moment}#{identifier}",
    }


def _latest(pk: str, prefix: str, received: Received, **attributes: Any) -> dict[str, Any]:
    """One item per change, keyed by its time: the state is the newest (a reverse Query, first item).
    On the same instant the code breaks the tie (N302 after N301: an opt-out wins)."""
    postback = received.postback
    moment = _moment(postback)
    if moment == UNDATED:  # EMAIL_SUB carries no time: the arrival order is all there is
        moment = iso(received.received_at)
    return {
        "pk": pk,
        "sk": f"{prefix}AT#{moment}#{postback.code}",
        "at": moment,
        "code": postback.code,
        "raw_key": received.raw_key,
        **attributes,
    }


def _suppression(mobile: str, received: Received, *, suppressed: bool, source: str) -> dict[str, Any]:
    return _latest(
        f"SUPPRESS#{mobile}",
        "",
        received,
        type="suppression",
        mobile=mobile,
        suppressed=suppressed,
        source=source,
    )


# -- unrecognised events, listed -----------------------------------------------------------------------------
def unrecognised_index(event: dict[str, Any], postback: Postback) -> dict[str, str]:
    """gsi1 keys that list an unrecognised event (`ops unrecognised`) by its time: its own, or the first
    copy's receipt for an undated code the consumer dates; else UNDATED, after every time. Rare events, one
    partition; a function of the postback like the event itself."""
    moment = iso(postback.timestamp_utc) if postback.timestamp_utc else UNDATED
    return {"gsi1pk": UNRECOGNISED_PARTITION, "gsi1sk": f"{moment}#{event['pk']}"}
