"""From parsed postbacks to DynamoDB writes, pure: the single-table model and its order-safe updates.

Every write is idempotent and order-independent by construction, so a batch can be applied as one
transaction and re-applied after any failure:

- history and inbound items have deterministic keys (from the postback's semantic key) and are put only
  if absent: a duplicate adds nothing;
- a state (message, template, subscription, suppression) moves only up its ranking, by a conditional
  update; when the condition fails (a late, lower-ranked event) the same update without the state part
  still fills in facts that are missing (`if_not_exists`), which are the same whatever the order;
- all events of one batch that touch the same item are merged into one write first (a transaction may
  not touch an item twice).

Keys (pk / sk):
  MSG#<trackingid>          STATE                    message state, facts, terminal codes, sender fields
  MSG#<trackingid>          EVT#<utc>#<code>#<key>   one history item per distinct event
  TPL#<mmsid>               STATE / EVT#...          template encoding state and history
  IN#<origin>#<id>          MSG                      inbound SMS / MMS (gsi1: TO#<to>, gsi2: FROM#<from>)
  SUB#<mobile>              CAMPAIGN#<id> / EVT#...  subscription state per campaign, and history
  EMAILSUB#<email>          CAMPAIGN#<id> / EVT#...  e-mail subscription state, and history
  SUPPRESS#<mobile>         STATE                    opted out (N302 or inbound STOP), unless a later N301
  PASS#<id>                 EVT#...                  wallet-pass events
  OTHER#<origin>#<id>       EVT#...                  unrecognised ORIGIN/CODE, kept with all fields
  QUARANTINE#<sha256>       Q                        a body that cannot be applied (gsi1: QUARANTINE)
Open (not yet final) messages are on gsi1 under OPEN#<shard>, sorted by first-seen time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mmsbridge.postback import Postback
from mmsbridge.states import MessageState, PostbackKind, TemplateState

STATE_SK = "STATE"
OPEN_SHARDS = 8
_UNDATED = "~"  # sorts after every ISO timestamp: undated events come last in a history
_TEMPLATE_RANK = {TemplateState.ENCODING: 0, TemplateState.READY: 1, TemplateState.BROKEN: 2}
# sendMMS content reports on the template (MMSID) as well as on the message (§3.2).
_CONTENT_CODES = {
    "N013": TemplateState.READY,
    "E011": TemplateState.BROKEN,
    "E012": TemplateState.BROKEN,
    "E013": TemplateState.BROKEN,
}
# Facts a message keeps from whichever event carries them first (provider field -> attribute).
_MESSAGE_FACTS = {
    "SENTAS": "sent_as",
    "SPID": "carrier",
    "HANDSET": "handset",
    "AGGREGATORID": "aggregator_id",
    "MMSID": "mms_id",
    "TO": "to",
    "FROM": "from",
}
_MESSAGE_KINDS = (PostbackKind.DELIVERY, PostbackKind.DDM, PostbackKind.MT_RECORD)
_MT_KINDS = (*_MESSAGE_KINDS, PostbackKind.TEMPLATE)
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_]")


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


@dataclass
class Write:
    """One item write. `fallback` replaces it when its condition fails; None means "already applied"."""

    key: dict[str, str]
    records: set[str]
    item: dict[str, Any] | None = None  # a Put
    update: str | None = None  # an Update
    condition: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    fallback: Write | None = None


class _Update:
    """Builds one UpdateExpression with placeholder names and values."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.adds: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        placeholder = "#" + _NAME_SAFE.sub("_", attribute)
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: Any) -> _Update:
        self.sets.append(f"{self.name(attribute)} = {self.value(value)}")
        return self

    def set_if_absent(self, attribute: str, value: Any) -> _Update:
        name = self.name(attribute)
        self.sets.append(f"{name} = if_not_exists({name}, {self.value(value)})")
        return self

    def remove(self, attribute: str) -> _Update:
        self.removes.append(self.name(attribute))
        return self

    def add(self, attribute: str, value: Any) -> _Update:
        self.adds.append(f"{self.name(attribute)} {self.value(value)}")
        return self

    def write(
        self,
        key: dict[str, str],
        records: set[str],
        condition: str | None = None,
        condition_values: Mapping[str, Any] | None = None,
    ) -> Write:
        clauses = []
        if self.sets:
            clauses.append("SET " + ", ".join(self.sets))
        if self.removes:
            clauses.append("REMOVE " + ", ".join(self.removes))
        if self.adds:
            clauses.append("ADD " + ", ".join(self.adds))
        return Write(
            key=key,
            records=records,
            update=" ".join(clauses),
            condition=condition,
            names=dict(self.names),
            values={**self.values, **(condition_values or {})},
        )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def message_key(tracking_id: str) -> dict[str, str]:
    return {"pk": f"MSG#{tracking_id}", "sk": STATE_SK}


def open_shard(tracking_id: str) -> str:
    digest = hashlib.sha256(tracking_id.encode()).digest()
    return f"OPEN#{digest[0] % OPEN_SHARDS}"


def plan_batch(
    received: Iterable[Received], rejected: Iterable[Rejected] = (), *, retention_days: int = 0
) -> list[Write]:
    """Every write a batch needs, merged so that no two writes touch the same item."""
    planner = _Planner(retention_days)
    for item in received:
        planner.add(item)
    for item in rejected:
        planner.quarantine(item)
    return planner.writes()


class _Planner:
    def __init__(self, retention_days: int) -> None:
        self.retention_days = retention_days
        self.puts: dict[tuple[str, str], Write] = {}
        self.messages: dict[str, list[Received]] = {}
        self.templates: dict[str, list[tuple[Received, TemplateState]]] = {}
        self.latest: dict[tuple[str, str], list[tuple[str, dict[str, Any], Received]]] = {}

    def expires_at(self, received_at: datetime) -> int | None:
        if self.retention_days <= 0:
            return None
        return int(received_at.timestamp()) + self.retention_days * 86400

    # -- collecting ---------------------------------------------------------------------------------
    def add(self, received: Received) -> None:
        postback = received.postback
        kind = postback.kind
        correlation = postback.correlation_id or postback.semantic_key
        if kind in _MESSAGE_KINDS and postback.tracking_id:
            self.event(f"MSG#{postback.tracking_id}", received)
            if postback.state is not None:
                self.messages.setdefault(postback.tracking_id, []).append(received)
        content_state = postback.template_state or _CONTENT_CODES.get(postback.code)
        if postback.origin == "MMS_MT" and postback.mms_id and content_state is not None:
            self.event(f"TPL#{postback.mms_id}", received)
            self.templates.setdefault(postback.mms_id, []).append((received, content_state))
        elif kind in _MT_KINDS and not postback.tracking_id:
            self.event(f"OTHER#{postback.origin}#{correlation}", received)
        if kind in (PostbackKind.INBOUND_SMS, PostbackKind.INBOUND_MMS):
            self.inbound(received)
        elif kind is PostbackKind.SUBSCRIPTION:
            mobile, campaign = postback.fields.get("MOBILE") or "", postback.fields.get("CAMPAIGNID") or ""
            self.event(f"SUB#{mobile}", received)
            self.latest_wins(
                ("SUB#" + mobile, f"CAMPAIGN#{campaign}"),
                received,
                {
                    "type": "subscription",
                    "mobile": mobile,
                    "campaign_id": campaign,
                    "subscribed": postback.subscribed,
                    "code": postback.code,
                    "source": postback.fields.get("SOURCE"),
                    "shortcode": postback.fields.get("SHORTCODE"),
                    "campaign_title": postback.fields.get("CAMPAIGNTITLE"),
                },
            )
            self.suppression(
                mobile, received, suppressed=postback.subscribed is False, source=f"SUB {postback.code}"
            )
        elif kind is PostbackKind.EMAIL_SUBSCRIPTION:
            email, campaign = postback.fields.get("EMAIL") or "", postback.fields.get("CAMPAIGNID") or ""
            self.event(f"EMAILSUB#{email}", received)
            self.latest_wins(
                ("EMAILSUB#" + email, f"CAMPAIGN#{campaign}"),
                received,
                {
                    "type": "email_subscription",
                    "email": email,
                    "campaign_id": campaign,
                    "subscribed": postback.subscribed,
                    "code": postback.code,
                },
            )
        elif kind is PostbackKind.PASS:
            self.event(f"PASS#{correlation}", received)
        elif kind is PostbackKind.UNRECOGNISED:
            self.event(f"OTHER#{postback.origin}#{correlation}", received)

    def event(self, pk: str, received: Received) -> None:
        postback = received.postback
        dated = postback.timestamp_utc is not None and not postback.timestamp_derived
        moment = iso(postback.timestamp_utc) if dated else _UNDATED
        sk = f"EVT#{moment}#{postback.code}#{postback.semantic_key[:16]}"
        item = {
            "pk": pk,
            "sk": sk,
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
            "received_at": iso(received.received_at),
        }
        self.put_once(item, received)

    def put_once(self, item: dict[str, Any], received: Received | Rejected) -> None:
        expires = self.expires_at(received.received_at)
        if expires is not None:
            item["expires_at"] = expires
        key = (item["pk"], item["sk"])
        existing = self.puts.get(key)
        if existing is not None:  # the same event twice in one batch: one write serves both records
            existing.records.add(received.record_id)
            return
        self.puts[key] = Write(
            key={"pk": item["pk"], "sk": item["sk"]},
            records={received.record_id},
            item=item,
            condition="attribute_not_exists(pk)",
        )

    def inbound(self, received: Received) -> None:
        postback = received.postback
        get = postback.fields.get
        identifier = postback.correlation_id or postback.semantic_key[:32]
        moment = iso(postback.timestamp_utc or received.received_at)
        item = {
            "pk": f"IN#{postback.origin}#{identifier}",
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
            "received_time": moment,
            "timestamp_raw": postback.timestamp_raw,
            "stop": postback.inbound_stop,
            "fields": dict(postback.fields),
            "raw_key": received.raw_key,
            "sha256": received.sha256,
            "received_at": iso(received.received_at),
            "gsi1pk": f"TO#{get('TO') or ''}",
            "gsi1sk": f"{moment}#{identifier}",
            "gsi2pk": f"FROM#{get('FROM') or ''}",
            "gsi2sk": f"{moment}#{identifier}",
        }
        self.put_once(item, received)
        if postback.inbound_stop and get("FROM"):
            self.suppression(get("FROM") or "", received, suppressed=True, source=f"{postback.origin} STOP")

    def suppression(self, mobile: str, received: Received, *, suppressed: bool, source: str) -> None:
        self.latest_wins(
            (f"SUPPRESS#{mobile}", STATE_SK),
            received,
            {
                "type": "suppression",
                "mobile": mobile,
                "suppressed": suppressed,
                "source": source,
            },
        )

    def latest_wins(self, key: tuple[str, str], received: Received, attributes: dict[str, Any]) -> None:
        """State that the newest event decides (subscriptions); opt-out wins a tie (N302 > N301)."""
        postback = received.postback
        moment = iso(postback.timestamp_utc or received.received_at)
        self.latest.setdefault(key, []).append((f"{moment}#{postback.code}", attributes, received))

    def quarantine(self, rejected: Rejected) -> None:
        moment = iso(rejected.received_at)
        item = {
            "pk": f"QUARANTINE#{rejected.sha256}",
            "sk": "Q",
            "type": "quarantine",
            "sha256": rejected.sha256,
            "raw_key": rejected.raw_key,
            "reason": rejected.reason,
            "detail": rejected.detail,
            "first_seen": moment,
            "gsi1pk": "QUARANTINE",
            "gsi1sk": f"{moment}#{rejected.sha256}",
        }
        self.put_once(item, rejected)

    # -- merging ------------------------------------------------------------------------------------
    def writes(self) -> list[Write]:
        writes = list(self.puts.values())
        writes += [self.message_write(tid, group) for tid, group in self.messages.items()]
        writes += [self.template_write(mms_id, group) for mms_id, group in self.templates.items()]
        writes += [self.latest_write(key, group) for key, group in self.latest.items()]
        return writes

    def message_write(self, tracking_id: str, group: list[Received]) -> Write:
        ordered = sorted(group, key=_event_order)
        best = max(ordered, key=lambda r: (r.postback.state.rank, r.postback.code))  # type: ignore[union-attr]
        state = best.postback.state
        assert state is not None
        records = {r.record_id for r in group}
        first_seen = min(r.received_at for r in group)

        def facts() -> _Update:
            update = _Update()
            update.set_if_absent("type", "message").set_if_absent("tracking_id", tracking_id)
            update.set_if_absent("first_seen", iso(first_seen))
            expires = self.expires_at(first_seen)
            if expires is not None:
                update.set_if_absent("expires_at", expires)
            known: dict[str, Any] = {}
            for r in ordered:
                postback = r.postback
                for field_name, attribute in _MESSAGE_FACTS.items():
                    if postback.fields.get(field_name) and attribute not in known:
                        known[attribute] = postback.fields[field_name]
                if postback.state is MessageState.SENT and postback.timestamp_utc and "sent_at" not in known:
                    known["sent_at"] = iso(postback.timestamp_utc)
                if postback.state is not None and postback.state.terminal:
                    if postback.failure_reason and "failure_reason" not in known:
                        known["failure_reason"] = postback.failure_reason
                    if postback.via_link and "via_link" not in known:
                        known["via_link"] = True
            for attribute, value in known.items():
                update.set_if_absent(attribute, value)
            terminal_codes = {
                r.postback.code for r in group if r.postback.state and r.postback.state.terminal
            }
            if terminal_codes:
                update.add("terminal_codes", terminal_codes)
            return update

        with_state = facts()
        with_state.set("state", state.value).set("rank", state.rank).set("state_code", best.postback.code)
        with_state.set("state_at", iso(best.postback.timestamp_utc or best.received_at))
        with_state.set("state_raw_key", best.raw_key)
        if state.terminal:
            with_state.remove("gsi1pk").remove("gsi1sk")
        else:
            with_state.set_if_absent("gsi1pk", open_shard(tracking_id))
            with_state.set_if_absent("gsi1sk", f"{iso(first_seen)}#{tracking_id}")
        rank = with_state.value(state.rank)
        name = with_state.name("rank")
        write = with_state.write(
            message_key(tracking_id), records, condition=f"attribute_not_exists({name}) OR {name} < {rank}"
        )
        write.fallback = facts().write(message_key(tracking_id), records)
        return write

    def template_write(self, mms_id: str, group: list[tuple[Received, TemplateState]]) -> Write:
        received, state = max(group, key=lambda pair: (_TEMPLATE_RANK[pair[1]], pair[0].postback.code))
        records = {r.record_id for r, _ in group}
        key = {"pk": f"TPL#{mms_id}", "sk": STATE_SK}
        first_seen = min(r.received_at for r, _ in group)

        def base() -> _Update:
            update = _Update().set_if_absent("type", "template").set_if_absent("mms_id", mms_id)
            update.set_if_absent("first_seen", iso(first_seen))
            for r, _ in sorted(group, key=lambda pair: _event_order(pair[0])):
                for name in ("AUDIONAME", "VIDEONAME"):
                    if r.postback.fields.get(name):
                        update.set_if_absent(name.lower(), r.postback.fields[name])
            return update

        update = base().set("state", state.value).set("rank", _TEMPLATE_RANK[state])
        update.set("state_code", received.postback.code).set("state_raw_key", received.raw_key)
        rank, name = update.value(_TEMPLATE_RANK[state]), update.name("rank")
        write = update.write(key, records, condition=f"attribute_not_exists({name}) OR {name} < {rank}")
        write.fallback = base().write(key, records)
        return write

    def latest_write(self, key: tuple[str, str], group: list[tuple[str, dict[str, Any], Received]]) -> Write:
        as_of, attributes, received = max(group, key=lambda entry: entry[0])
        update = _Update()
        for attribute, value in attributes.items():
            update.set(attribute, value)
        update.set("as_of", as_of).set("raw_key", received.raw_key)
        expires = self.expires_at(received.received_at)
        if expires is not None and not key[0].startswith("SUPPRESS#"):  # an opt-out never expires
            update.set("expires_at", expires)
        name, value = update.name("as_of"), update.value(as_of)
        return update.write(
            {"pk": key[0], "sk": key[1]},
            {r.record_id for _, _, r in group},
            condition=f"attribute_not_exists({name}) OR {name} < {value}",
        )


def _event_order(received: Received) -> tuple[str, str, str]:
    postback = received.postback
    moment = iso(postback.timestamp_utc) if postback.timestamp_utc and not postback.timestamp_derived else "~"
    return (moment, postback.code, postback.semantic_key)
