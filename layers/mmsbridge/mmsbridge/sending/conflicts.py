"""Conflicting duplicates: a request_id that arrives again with a different body.

The request_id is the producer's idempotency key, so a second body under it is never sent: the ledger keeps
the first request (whatever its status), and the second is recorded beside it, in the ledger's partition:

  REQ#<request_id>     CONFLICTS      count, first/last seen, the last body's SHA-256, and the first
                                      KEEP sightings (SHA-256, time, SQS message id, the body's action/to/
                                      from as given, the refusal when it was invalid too)
                                      (gsi1: SEND#CONFLICTING_DUPLICATE, `<last seen>#<request_id>`)

A separate item, not fields of the ledger: the ledger is written whole, conditional on its version, by the
attempt that holds it, so an update in between would either be overwritten by that attempt's next write or
make it fail. This item is written only here, with UpdateItem (a count and a bounded list), so it needs no
read and races with nothing. The same body again (the same bytes, or the same JSON with other whitespace or
key order) is an ordinary duplicate, not a conflict.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from botocore.exceptions import ClientError

from mmsbridge.aws.state_table import StateTable, from_dynamo, to_dynamo
from mmsbridge.core.times import iso
from mmsbridge.sending.ledger import ledger_key, sha256_hex

__all__ = ["CONFLICTS_SK", "KEEP", "LISTING_PK", "conflicts_key", "record_conflict", "same_body"]

CONFLICTS_SK: Final = "CONFLICTS"
LISTING_PK: Final = "SEND#CONFLICTING_DUPLICATE"
KEEP: Final = 10  # sightings kept in full; `count` keeps the total
_SUMMARY_MAX: Final = 64  # characters kept of each of action, to and from as the body gave them
_REFUSAL_MAX: Final = 300


def conflicts_key(request_id: str) -> dict[str, str]:
    return {"pk": ledger_key(request_id)["pk"], "sk": CONFLICTS_SK}


def same_body(ledger: dict[str, Any], body: str) -> bool:
    """Whether `body` is the request the ledger holds: the same bytes, or the same JSON document (a producer
    that serialises again may change whitespace or key order). A ledger without a body is not evidence of a
    conflict."""
    stored = ledger.get("body")
    digest = ledger.get("payload_sha256")
    if digest is None and not isinstance(stored, str):
        return True
    if digest == sha256_hex(body) or stored == body:
        return True
    if not isinstance(stored, str):
        return False
    canonical = [_canonical(text) for text in (stored, body)]
    return canonical[0] is not None and canonical[0] == canonical[1]


def _canonical(text: str) -> str | None:
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def _summary(body: str) -> dict[str, str]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(payload, dict):
        return {}
    return {
        name: str(payload[name])[:_SUMMARY_MAX]
        for name in ("action", "to", "from")
        if isinstance(payload.get(name), str | int) and not isinstance(payload.get(name), bool)
    }


def record_conflict(
    table: StateTable,
    request_id: str,
    body: str,
    now: datetime,
    *,
    message_id: str | None = None,
    refused: str | None = None,
) -> int:
    """Count one conflicting body for `request_id`, and keep its sighting if fewer than KEEP are kept.
    Returns the count so far. One UpdateItem; a second only once KEEP sightings are kept."""
    stamp = iso(now)
    digest = sha256_hex(body)
    entry: dict[str, Any] = {"sha256": digest, "at": stamp, "message_id": message_id, **_summary(body)}
    if refused:
        entry["refused"] = refused[:_REFUSAL_MAX]
    entry = {name: value for name, value in entry.items() if value is not None}
    sets = [
        "request_id = :id",
        "#type = :type",
        "first_seen_at = if_not_exists(first_seen_at, :now)",
        "last_seen_at = :now",
        "last_sha256 = :sha",
        "gsi1pk = :listing",
        "gsi1sk = :listed",
    ]
    values: dict[str, Any] = {
        ":id": request_id,
        ":type": "send_conflicts",
        ":now": stamp,
        ":sha": digest,
        ":listing": LISTING_PK,
        ":listed": f"{stamp}#{request_id}",
        ":one": 1,
    }
    params: dict[str, Any] = {
        "TableName": table.name,
        "Key": to_dynamo(conflicts_key(request_id)),
        "ReturnValues": "ALL_NEW",
    }
    names = {"#type": "type", "#count": "count"}
    kept = {
        **params,
        "UpdateExpression": "SET "
        + ", ".join([*sets, "#seen = list_append(if_not_exists(#seen, :empty), :entry)"])
        + " ADD #count :one",
        "ConditionExpression": "attribute_not_exists(#seen) OR size(#seen) < :keep",
        "ExpressionAttributeNames": {**names, "#seen": "seen"},
        "ExpressionAttributeValues": to_dynamo({**values, ":empty": [], ":entry": [entry], ":keep": KEEP}),
    }
    try:
        item = table.client.update_item(**kept)["Attributes"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        counted = {
            **params,
            "UpdateExpression": "SET " + ", ".join(sets) + " ADD #count :one",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_dynamo(values),
        }
        item = table.client.update_item(**counted)["Attributes"]
    return int(from_dynamo(item)["count"])
