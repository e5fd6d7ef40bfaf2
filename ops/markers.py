"""Remove message state markers that no stored event stands behind any more.

A message's state is its highest-ranked `RANK#<rank>#<code>` marker, and the consumer only ever adds
markers: that is what keeps state order-independent. When the parser's reading of a code changes (an N102
whose STATUS says `Message Sent/Expired` is UNDELIVERED, where it was once taken as DELIVERED), replaying
the archived postback rewrites the event's item with today's state and adds the right marker, but the old
marker stays and, ranking higher, still decides the state. This module finds those markers.

A marker is backed when some event of its message carries its code and its state. Markers whose code no
event carries (the sender's `RANK#0#SUBMITTED`) are left alone: they were never written from a postback.

Repair, in order: `ops replay` the affected postbacks, let the consumer apply them (the postback queue
empties), then `ops prune-markers`. Running it before the replay finds nothing, since the events still
carry their old state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mmsbridge.aws.state_table import StateTable, to_dynamo
from mmsbridge.core.states import MessageState

_MESSAGE = "MSG#"


def unbacked(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The state markers among one message's items that none of its events stands behind."""
    items = list(items)
    events = [i for i in items if i["sk"].startswith("EVT#") and i.get("code")]
    codes = {e["code"] for e in events}
    backed = {(e["code"], e["state"]) for e in events if e.get("state")}
    return [
        marker
        for marker in items
        if marker.get("type") == "message_state"
        and marker.get("code") in codes
        and (marker["code"], marker.get("state")) not in backed
    ]


@dataclass
class PruneResult:
    dry_run: bool
    messages: int = 0  # messages examined
    removed: list[dict[str, Any]] = field(default_factory=list)  # tracking id, marker, new state

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "messages": self.messages,
            "markers": len(self.removed),
            "removed": self.removed,
        }


def prune(table: StateTable, tracking_ids: Iterable[str] | None, *, dry_run: bool) -> PruneResult:
    """Delete every unbacked marker of the given messages (every message with a postback's marker when
    `tracking_ids` is None) and say what each message's state is afterwards."""
    result = PruneResult(dry_run=dry_run)
    ids = list(dict.fromkeys(tracking_ids)) if tracking_ids is not None else _messages_with_markers(table)
    for tracking_id in ids:
        result.messages += 1
        items = list(table.query(f"{_MESSAGE}{tracking_id}"))
        stale = unbacked(items)
        if not stale:
            continue
        keys = {(m["pk"], m["sk"]) for m in stale}
        remaining = [i for i in items if i.get("type") == "message_state" and (i["pk"], i["sk"]) not in keys]
        state = max((MessageState(m["state"]) for m in remaining), key=lambda s: s.rank, default=None)
        for marker in stale:
            result.removed.append(
                {
                    "tracking_id": tracking_id,
                    "marker": marker["sk"],
                    "marker_state": marker.get("state"),
                    "state_after": state.value if state else None,
                }
            )
            if not dry_run:
                table.client.delete_item(
                    TableName=table.name, Key=to_dynamo({"pk": marker["pk"], "sk": marker["sk"]})
                )
    return result


def _messages_with_markers(table: StateTable) -> Iterator[str]:
    """Tracking ids of every message that has a marker above SUBMITTED (one full scan, keys only)."""
    params: dict[str, Any] = {
        "TableName": table.name,
        "FilterExpression": "#type = :type AND #rank >= :sent",
        "ProjectionExpression": "pk",
        "ExpressionAttributeNames": {"#type": "type", "#rank": "rank"},
        "ExpressionAttributeValues": to_dynamo({":type": "message_state", ":sent": 1}),
    }
    seen: set[str] = set()
    while True:
        page = table.client.scan(**params)
        for item in page.get("Items", []):
            pk = item["pk"]["S"]
            if pk.startswith(_MESSAGE) and pk not in seen:
                seen.add(pk)
                yield pk[len(_MESSAGE) :]
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
